import RCHCore

/// The fast, strict reader of a result entry file (`results/…/<key>.json`), which is read on every hit.
///
/// Our writer writes an entry as its JCS bytes and a newline. The `entries` array — thousands of members,
/// most of the file — is read by a scanner that accepts exactly what ``ArtifactManifest/entriesCanonicalBytes(_:)``
/// writes (member order, no whitespace, JCS string escapes, integer sizes without leading zeros), so its raw
/// bytes *are* its canonical form: `artifact_root_sha256` is checked by hashing them, with no second
/// serialisation. The other members (a few hundred bytes) go through ``JSONParser`` and
/// ``ResultEntry/init(json:entries:entriesRoot:)`` as before. Anything else — whitespace, another member
/// order, a non-canonical escape — is refused: an entry our writer would not produce is corrupt.
enum CanonicalEntries {
    struct Malformed: Error, CustomStringConvertible {
        var offset: Int
        var description: String { "not a result entry as written by this store (at byte \(offset))" }
    }

    /// Parses `bytes` (an entry file) into a ``ResultEntry``.
    static func readEntry(_ bytes: [UInt8]) throws -> ResultEntry {
        guard bytes.last == 10 else { throw StoreError.corrupt("result entry: \(Malformed(offset: bytes.count))") }
        let body = bytes.dropLast()
        let range: Range<Int>
        let entries: [ArtifactManifest.Entry]
        do {
            range = try locateEntries(body)
            entries = try scan(body[range])
        } catch let m as Malformed {
            throw StoreError.corrupt("result entry: \(m)")
        }
        let root = SHA256Digest.of(body[range])
        var rest = Array(body[..<range.lowerBound])
        rest.append(contentsOf: [UInt8(ascii: "["), UInt8(ascii: "]")])
        rest.append(contentsOf: body[range.upperBound...])
        let v: JSONValue
        do { v = try JSONParser().parse(rest) } catch {
            throw StoreError.corrupt("result entry: \(error)")
        }
        return try ResultEntry(json: v, entries: entries, entriesRoot: root)
    }

    /// The byte range of the top-level `entries` member's value (an array), found by walking the members
    /// of the top-level object without building them.
    static func locateEntries(_ b: ArraySlice<UInt8>) throws -> Range<Int> {
        var i = b.startIndex
        func expect(_ c: UInt8) throws {
            guard i < b.endIndex, b[i] == c else { throw Malformed(offset: i) }
            i += 1
        }
        func skipString() throws {
            try expect(UInt8(ascii: "\""))
            while i < b.endIndex {
                switch b[i] {
                case UInt8(ascii: "\""):
                    i += 1
                    return
                case UInt8(ascii: "\\"): i += 2
                default: i += 1
                }
            }
            throw Malformed(offset: i)
        }
        // Leaves `i` just after a string or container, or at the `,`/`}` that ends a scalar.
        func skipValue() throws {
            var depth = 0
            while i < b.endIndex {
                switch b[i] {
                case UInt8(ascii: "\""):
                    try skipString()
                    if depth == 0 { return }
                case UInt8(ascii: "{"), UInt8(ascii: "["):
                    depth += 1
                    i += 1
                case UInt8(ascii: "}"), UInt8(ascii: "]"):
                    if depth == 0 { return }
                    depth -= 1
                    i += 1
                    if depth == 0 { return }
                case UInt8(ascii: ","):
                    if depth == 0 { return }
                    i += 1
                default: i += 1
                }
            }
            throw Malformed(offset: i)
        }
        try expect(UInt8(ascii: "{"))
        let key = Array(#""entries":"#.utf8)
        while i < b.endIndex {
            let isEntries = b[i...].starts(with: key)
            try skipString()
            try expect(UInt8(ascii: ":"))
            let start = i
            try skipValue()
            if isEntries {
                guard b[start] == UInt8(ascii: "[") else { throw Malformed(offset: start) }
                return start..<i
            }
            guard i < b.endIndex, b[i] == UInt8(ascii: ",") else { break }
            i += 1
        }
        throw Malformed(offset: i)
    }

    /// Parses the canonical `entries` array (see the type's rules).
    static func scan(_ b: ArraySlice<UInt8>) throws -> [ArtifactManifest.Entry] {
        var s = Scanner(b: b, i: b.startIndex)
        var out: [ArtifactManifest.Entry] = []
        try s.expect("[")
        if s.peek(UInt8(ascii: "]")) {
            s.i += 1
        } else {
            repeat {
                try s.expect(#"{"path":"#)
                let path = try s.string()
                let sha: SHA256Digest?
                if s.b[s.i...].starts(with: Scanner.nullDigest) {
                    s.i += Scanner.nullDigest.count
                    sha = nil
                } else {
                    try s.expect(#","sha256":""#)
                    sha = try s.digest()
                    try s.expect("\"")
                }
                try s.expect(#","size":"#)
                let size = try s.integer()
                try s.expect(#","type":""#)
                let isDirectory: Bool
                if s.b[s.i...].starts(with: Scanner.directory) {
                    s.i += Scanner.directory.count
                    isDirectory = true
                } else {
                    try s.expect(#"file"}"#)
                    isDirectory = false
                }
                out.append(.init(path: path, isDirectory: isDirectory, size: size, sha256: sha))
                if s.peek(UInt8(ascii: "]")) {
                    s.i += 1
                    break
                }
                try s.expect(",")
            } while true
        }
        guard s.i == b.endIndex else { throw Malformed(offset: s.i) }
        return out
    }

    private struct Scanner {
        static let nullDigest = Array(#","sha256":null"#.utf8)
        static let directory = Array(#"directory"}"#.utf8)
        let b: ArraySlice<UInt8>
        var i: Int

        func peek(_ c: UInt8) -> Bool { i < b.endIndex && b[i] == c }

        mutating func expect(_ literal: StaticString) throws {
            let n = literal.utf8CodeUnitCount
            let ok = literal.withUTF8Buffer { lit in b[i...].starts(with: lit) }
            guard ok else { throw Malformed(offset: i) }
            i += n
        }

        /// A JCS string: raw bytes ≥ 0x20 but `"` and `\`; escapes exactly as JCS writes them; valid UTF-8.
        mutating func string() throws -> String {
            guard peek(UInt8(ascii: "\"")) else { throw Malformed(offset: i) }
            i += 1
            let start = i
            var ascii = true
            var escaped = false
            while i < b.endIndex, b[i] != UInt8(ascii: "\"") {
                let c = b[i]
                if c < 0x20 { throw Malformed(offset: i) }
                if c >= 0x80 { ascii = false }
                if c == UInt8(ascii: "\\") {
                    escaped = true
                    i += 1
                    guard i < b.endIndex else { throw Malformed(offset: i) }
                    switch b[i] {
                    case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "b"), UInt8(ascii: "t"),
                        UInt8(ascii: "n"), UInt8(ascii: "f"), UInt8(ascii: "r"):
                        break
                    case UInt8(ascii: "u"):
                        // JCS escapes only the other control characters, as \u00xx in lowercase.
                        guard i + 4 < b.endIndex, b[i + 1] == 48, b[i + 2] == 48, b[i + 3] == 48 || b[i + 3] == 49,
                            let low = Optional(SHA256Digest.nibble(b[i + 4])), low < 16,
                            ![0x08, 0x09, 0x0A, 0x0C, 0x0D].contains((b[i + 3] - 48) << 4 | low)
                        else { throw Malformed(offset: i) }
                        i += 4
                    default: throw Malformed(offset: i)
                    }
                }
                i += 1
            }
            guard i < b.endIndex else { throw Malformed(offset: i) }
            let raw = b[start..<i]
            i += 1
            if escaped {
                // Rare (paths with quotes, backslashes or control characters): the general parser decodes it.
                var quoted: [UInt8] = [UInt8(ascii: "\"")]
                quoted.append(contentsOf: raw)
                quoted.append(UInt8(ascii: "\""))
                guard let s = (try? JSONParser().parse(quoted))?.stringValue else { throw Malformed(offset: start) }
                return s
            }
            if ascii { return String(decoding: raw, as: UTF8.self) }
            guard let s = String(validating: raw, as: UTF8.self) else { throw Malformed(offset: start) }
            return s
        }

        mutating func digest() throws -> SHA256Digest {
            guard i + 64 <= b.endIndex, let d = SHA256Digest(hexUTF8: b[i..<(i + 64)]) else {
                throw Malformed(offset: i)
            }
            i += 64
            return d
        }

        /// A non-negative integer as JCS writes it (no sign, no leading zero, exact: at most 2^53).
        mutating func integer() throws -> UInt64 {
            let start = i
            var v: UInt64 = 0
            while i < b.endIndex, b[i] >= 48, b[i] <= 57 {
                v = v &* 10 &+ UInt64(b[i] - 48)
                i += 1
                guard i - start <= 16 else { throw Malformed(offset: start) }
            }
            guard i > start, b[start] != 48 || i - start == 1, v <= 1 << 53 else { throw Malformed(offset: start) }
            return v
        }
    }
}
