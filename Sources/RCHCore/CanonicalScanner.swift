/// Scans JSON exactly as this project's JCS writers write it (RFC 8785: no whitespace, members in order,
/// the JCS string escapes, integers without sign or leading zeros), for the strict readers of records read
/// by the thousand (result entries, source manifests): anything else is `malformed(offset)`, never
/// "fixed up". The general ``JSONParser`` decodes only the rare escaped string.
public struct CanonicalScanner {
    public let b: ArraySlice<UInt8>
    public var i: Int
    let malformed: (Int) -> any Error

    public init(_ b: ArraySlice<UInt8>, malformed: @escaping (Int) -> any Error) {
        self.b = b
        i = b.startIndex
        self.malformed = malformed
    }

    /// True (and consumed) if `literal` comes next.
    public mutating func skip(_ literal: [UInt8]) -> Bool {
        guard b[i...].starts(with: literal) else { return false }
        i += literal.count
        return true
    }

    public func peek(_ c: UInt8) -> Bool { i < b.endIndex && b[i] == c }

    public mutating func expect(_ literal: StaticString) throws {
        let n = literal.utf8CodeUnitCount
        let ok = literal.withUTF8Buffer { lit in b[i...].starts(with: lit) }
        guard ok else { throw malformed(i) }
        i += n
    }

    /// A JCS string: raw bytes ≥ 0x20 but `"` and `\`; escapes exactly as JCS writes them; valid UTF-8.
    public mutating func string() throws -> String {
        guard peek(UInt8(ascii: "\"")) else { throw malformed(i) }
        i += 1
        let start = i
        var ascii = true
        var escaped = false
        while i < b.endIndex, b[i] != UInt8(ascii: "\"") {
            let c = b[i]
            if c < 0x20 { throw malformed(i) }
            if c >= 0x80 { ascii = false }
            if c == UInt8(ascii: "\\") {
                escaped = true
                i += 1
                guard i < b.endIndex else { throw malformed(i) }
                switch b[i] {
                case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "b"), UInt8(ascii: "t"),
                    UInt8(ascii: "n"), UInt8(ascii: "f"), UInt8(ascii: "r"):
                    break
                case UInt8(ascii: "u"):
                    // JCS escapes only the other control characters, as \u00xx in lowercase.
                    guard i + 4 < b.endIndex, b[i + 1] == 48, b[i + 2] == 48, b[i + 3] == 48 || b[i + 3] == 49,
                        let low = Optional(SHA256Digest.nibble(b[i + 4])), low < 16,
                        ![0x08, 0x09, 0x0A, 0x0C, 0x0D].contains((b[i + 3] - 48) << 4 | low)
                    else { throw malformed(i) }
                    i += 4
                default: throw malformed(i)
                }
            }
            i += 1
        }
        guard i < b.endIndex else { throw malformed(i) }
        let raw = b[start..<i]
        i += 1
        if escaped {
            // Rare (paths with quotes, backslashes or control characters): the general parser decodes it.
            var quoted: [UInt8] = [UInt8(ascii: "\"")]
            quoted.append(contentsOf: raw)
            quoted.append(UInt8(ascii: "\""))
            guard let s = (try? JSONParser().parse(quoted))?.stringValue else { throw malformed(start) }
            return s
        }
        if ascii { return String(decoding: raw, as: UTF8.self) }
        guard let s = String(validating: raw, as: UTF8.self) else { throw malformed(start) }
        return s
    }

    public mutating func digest() throws -> SHA256Digest {
        guard i + 64 <= b.endIndex, let d = SHA256Digest(hexUTF8: b[i..<(i + 64)]) else {
            throw malformed(i)
        }
        i += 64
        return d
    }

    /// A non-negative integer as JCS writes it (no sign, no leading zero, exact: at most 2^53).
    public mutating func integer() throws -> UInt64 {
        let start = i
        var v: UInt64 = 0
        while i < b.endIndex, b[i] >= 48, b[i] <= 57 {
            v = v &* 10 &+ UInt64(b[i] - 48)
            i += 1
            guard i - start <= 16 else { throw malformed(start) }
        }
        guard i > start, b[start] != 48 || i - start == 1, v <= 1 << 53 else { throw malformed(start) }
        return v
    }
}
