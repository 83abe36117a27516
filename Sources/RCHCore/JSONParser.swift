/// Why a JSON text was refused.
public struct JSONParseError: Error, Equatable, CustomStringConvertible, Sendable {
    public enum Reason: String, Sendable {
        case invalidUTF8 = "invalid UTF-8"
        case unexpectedEnd = "unexpected end of input"
        case unexpectedCharacter = "unexpected character"
        case duplicateKey = "duplicate key"
        case loneSurrogate = "lone surrogate escape"
        case invalidEscape = "invalid escape"
        case controlCharacter = "unescaped control character in string"
        case invalidNumber = "invalid number"
        case numberOutOfRange = "number out of range (not a finite double)"
        case trailingGarbage = "trailing data after the value"
        case tooDeep = "nesting too deep"
        case tooLarge = "document too large"
    }

    public let reason: Reason
    /// Byte offset where the problem was found.
    public let offset: Int
    public let detail: String?

    public var description: String {
        "invalid JSON at byte \(offset): \(reason.rawValue)" + (detail.map { " (\($0))" } ?? "")
    }
}

/// A strict RFC 8259 parser for documents that will be canonicalised (RFC 8785) or hashed.
///
/// Invariants: the input must be valid UTF-8; exactly one value, surrounded only by JSON whitespace;
/// no duplicate member names (compared by exact code points, not canonical equivalence); no lone
/// surrogate escapes; no NaN/Infinity or numbers that overflow a double; nesting at most
/// `maxDepth`; at most `maxBytes` of input. Numbers become `.int` when written as integers that fit in
/// ±2^53, otherwise `.double` (RFC 8785 treats all numbers as IEEE-754 doubles).
public struct JSONParser {
    public var maxDepth = 128
    public var maxBytes = 64 << 20

    public init() {}

    public func parse(_ text: String) throws(JSONParseError) -> JSONValue {
        try parse(Array(text.utf8))
    }

    public func parse(_ bytes: [UInt8]) throws(JSONParseError) -> JSONValue {
        guard bytes.count <= maxBytes else {
            throw JSONParseError(reason: .tooLarge, offset: maxBytes, detail: "limit \(maxBytes) bytes")
        }
        let invalid = Self.firstInvalidUTF8(bytes)
        guard invalid == bytes.count else { throw JSONParseError(reason: .invalidUTF8, offset: invalid, detail: nil) }
        var p = Cursor(bytes: bytes, maxDepth: maxDepth)
        p.skipWhitespace()
        let v = try p.value(depth: 0)
        p.skipWhitespace()
        guard p.i == bytes.count else { throw JSONParseError(reason: .trailingGarbage, offset: p.i, detail: nil) }
        return v
    }

    /// Offset of the first byte that is not part of a well-formed UTF-8 sequence.
    static func firstInvalidUTF8(_ bytes: [UInt8]) -> Int {
        bytes.withUnsafeBufferPointer { firstInvalidUTF8($0) }
    }

    static func firstInvalidUTF8(_ b: UnsafeBufferPointer<UInt8>) -> Int {
        var i = 0
        while i < b.count {
            // ASCII fast path, eight bytes at a time.
            while b.count - i >= 8,
                UnsafeRawPointer(b.baseAddress! + i).loadUnaligned(as: UInt64.self) & 0x8080_8080_8080_8080 == 0
            { i += 8 }
            guard i < b.count else { break }
            let c = b[i]
            if c < 0x80 {
                i += 1
                continue
            }
            var lo: UInt8 = 0x80
            var hi: UInt8 = 0xBF
            let n: Int
            switch c {
            case 0xC2...0xDF: n = 1
            case 0xE0:
                n = 2
                lo = 0xA0
            case 0xE1...0xEC, 0xEE, 0xEF: n = 2
            case 0xED:
                n = 2
                hi = 0x9F
            case 0xF0:
                n = 3
                lo = 0x90
            case 0xF1...0xF3: n = 3
            case 0xF4:
                n = 3
                hi = 0x8F
            default: return i
            }
            for k in 1...n {
                guard i + k < b.count else { return i }
                let x = b[i + k]
                if k == 1 ? !(lo...hi).contains(x) : !(0x80...0xBF).contains(x) { return i }
            }
            i += n + 1
        }
        return b.count
    }

    struct Cursor {
        let bytes: [UInt8]
        let maxDepth: Int
        var i = 0

        func fail(_ r: JSONParseError.Reason, _ detail: String? = nil) -> JSONParseError {
            JSONParseError(reason: r, offset: i, detail: detail)
        }

        mutating func skipWhitespace() {
            while i < bytes.count, bytes[i] == 0x20 || bytes[i] == 0x0A || bytes[i] == 0x0D || bytes[i] == 0x09 {
                i += 1
            }
        }

        mutating func value(depth: Int) throws(JSONParseError) -> JSONValue {
            guard i < bytes.count else { throw fail(.unexpectedEnd) }
            switch bytes[i] {
            case UInt8(ascii: "{"): return try object(depth: depth + 1)
            case UInt8(ascii: "["): return try array(depth: depth + 1)
            case UInt8(ascii: "\""): return .string(try string())
            case UInt8(ascii: "t"):
                try literal("true")
                return .bool(true)
            case UInt8(ascii: "f"):
                try literal("false")
                return .bool(false)
            case UInt8(ascii: "n"):
                try literal("null")
                return .null
            case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return try number()
            default: throw fail(.unexpectedCharacter, Self.show(bytes[i]))
            }
        }

        static func show(_ b: UInt8) -> String {
            b >= 0x20 && b < 0x7F ? "'\(Character(UnicodeScalar(b)))'" : "0x" + String(b, radix: 16)
        }

        mutating func literal(_ word: StaticString) throws(JSONParseError) {
            let w = UnsafeBufferPointer(start: word.utf8Start, count: word.utf8CodeUnitCount)
            guard bytes.count - i >= w.count, bytes[i..<(i + w.count)].elementsEqual(w) else {
                throw fail(.unexpectedCharacter)
            }
            i += w.count
        }

        mutating func object(depth: Int) throws(JSONParseError) -> JSONValue {
            guard depth <= maxDepth else { throw fail(.tooDeep, "limit \(maxDepth)") }
            i += 1
            var members: [(String, JSONValue)] = []
            var seen = Set<[UInt8]>()  // used only once an object has many members (small ones scan linearly)
            skipWhitespace()
            if i < bytes.count && bytes[i] == UInt8(ascii: "}") {
                i += 1
                return .object(JSONObject(members))
            }
            while true {
                skipWhitespace()
                guard i < bytes.count else { throw fail(.unexpectedEnd) }
                guard bytes[i] == UInt8(ascii: "\"") else { throw fail(.unexpectedCharacter, "expected a member name") }
                let keyStart = i
                let key = try string()
                // Exact code points: NFC and NFD names differ.
                let duplicate: Bool
                if members.count < 16 {
                    duplicate = members.contains { $0.0.utf8.elementsEqual(key.utf8) }
                } else {
                    if seen.isEmpty { for m in members { seen.insert(Array(m.0.utf8)) } }
                    duplicate = !seen.insert(Array(key.utf8)).inserted
                }
                guard !duplicate else { throw JSONParseError(reason: .duplicateKey, offset: keyStart, detail: key) }
                skipWhitespace()
                guard i < bytes.count, bytes[i] == UInt8(ascii: ":") else {
                    throw fail(i < bytes.count ? .unexpectedCharacter : .unexpectedEnd, "expected ':'")
                }
                i += 1
                skipWhitespace()
                members.append((key, try value(depth: depth)))
                skipWhitespace()
                guard i < bytes.count else { throw fail(.unexpectedEnd) }
                if bytes[i] == UInt8(ascii: ",") {
                    i += 1
                    continue
                }
                if bytes[i] == UInt8(ascii: "}") {
                    i += 1
                    break
                }
                throw fail(.unexpectedCharacter, "expected ',' or '}'")
            }
            var o = JSONObject()
            o.reserve(members.count)
            for (k, v) in members { o.appendUnique(k, v) }
            return .object(o)
        }

        mutating func array(depth: Int) throws(JSONParseError) -> JSONValue {
            guard depth <= maxDepth else { throw fail(.tooDeep, "limit \(maxDepth)") }
            i += 1
            var out: [JSONValue] = []
            skipWhitespace()
            if i < bytes.count && bytes[i] == UInt8(ascii: "]") {
                i += 1
                return .array(out)
            }
            while true {
                skipWhitespace()
                out.append(try value(depth: depth))
                skipWhitespace()
                guard i < bytes.count else { throw fail(.unexpectedEnd) }
                if bytes[i] == UInt8(ascii: ",") {
                    i += 1
                    continue
                }
                if bytes[i] == UInt8(ascii: "]") {
                    i += 1
                    break
                }
                throw fail(.unexpectedCharacter, "expected ',' or ']'")
            }
            return .array(out)
        }

        mutating func hex4() throws(JSONParseError) -> UInt32 {
            guard bytes.count - i >= 4 else { throw fail(.unexpectedEnd) }
            var v: UInt32 = 0
            for _ in 0..<4 {
                let c = bytes[i]
                let d: UInt32
                switch c {
                case UInt8(ascii: "0")...UInt8(ascii: "9"): d = UInt32(c - 48)
                case UInt8(ascii: "a")...UInt8(ascii: "f"): d = UInt32(c - 87)
                case UInt8(ascii: "A")...UInt8(ascii: "F"): d = UInt32(c - 55)
                default: throw fail(.invalidEscape, "bad hex digit")
                }
                v = v << 4 | d
                i += 1
            }
            return v
        }

        mutating func string() throws(JSONParseError) -> String {
            i += 1
            let start = i
            // Fast path: no escapes.
            while i < bytes.count {
                let c = bytes[i]
                if c == UInt8(ascii: "\"") {
                    i += 1
                    return String(decoding: bytes[start..<(i - 1)], as: UTF8.self)
                }
                if c == UInt8(ascii: "\\") { break }
                if c < 0x20 { throw fail(.controlCharacter) }
                i += 1
            }
            var out = Array(bytes[start..<i])
            while true {
                guard i < bytes.count else { throw fail(.unexpectedEnd, "unterminated string") }
                let c = bytes[i]
                if c == UInt8(ascii: "\"") {
                    i += 1
                    return String(decoding: out, as: UTF8.self)
                }
                if c < 0x20 { throw fail(.controlCharacter) }
                if c != UInt8(ascii: "\\") {
                    out.append(c)
                    i += 1
                    continue
                }
                i += 1
                guard i < bytes.count else { throw fail(.unexpectedEnd) }
                let e = bytes[i]
                i += 1
                switch e {
                case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): out.append(e)
                case UInt8(ascii: "b"): out.append(0x08)
                case UInt8(ascii: "f"): out.append(0x0C)
                case UInt8(ascii: "n"): out.append(0x0A)
                case UInt8(ascii: "r"): out.append(0x0D)
                case UInt8(ascii: "t"): out.append(0x09)
                case UInt8(ascii: "u"):
                    var scalar = try hex4()
                    if (0xD800...0xDBFF).contains(scalar) {
                        guard bytes.count - i >= 6, bytes[i] == UInt8(ascii: "\\"), bytes[i + 1] == UInt8(ascii: "u")
                        else { throw fail(.loneSurrogate) }
                        i += 2
                        let low = try hex4()
                        guard (0xDC00...0xDFFF).contains(low) else { throw fail(.loneSurrogate) }
                        scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                    } else if (0xDC00...0xDFFF).contains(scalar) {
                        throw fail(.loneSurrogate)
                    }
                    out.append(contentsOf: String(Character(UnicodeScalar(scalar)!)).utf8)
                default: throw fail(.invalidEscape, "\\" + String(UnicodeScalar(e)))
                }
            }
        }

        mutating func number() throws(JSONParseError) -> JSONValue {
            let start = i
            if bytes[i] == UInt8(ascii: "-") { i += 1 }
            guard i < bytes.count, bytes[i] >= 48 && bytes[i] <= 57 else { throw fail(.invalidNumber) }
            if bytes[i] == 48 {
                i += 1
                if i < bytes.count, bytes[i] >= 48 && bytes[i] <= 57 { throw fail(.invalidNumber, "leading zero") }
            } else {
                while i < bytes.count, bytes[i] >= 48 && bytes[i] <= 57 { i += 1 }
            }
            var integral = true
            if i < bytes.count, bytes[i] == UInt8(ascii: ".") {
                integral = false
                i += 1
                guard i < bytes.count, bytes[i] >= 48 && bytes[i] <= 57 else {
                    throw fail(.invalidNumber, "digit expected after '.'")
                }
                while i < bytes.count, bytes[i] >= 48 && bytes[i] <= 57 { i += 1 }
            }
            if i < bytes.count, bytes[i] == UInt8(ascii: "e") || bytes[i] == UInt8(ascii: "E") {
                integral = false
                i += 1
                if i < bytes.count, bytes[i] == UInt8(ascii: "+") || bytes[i] == UInt8(ascii: "-") { i += 1 }
                guard i < bytes.count, bytes[i] >= 48 && bytes[i] <= 57 else {
                    throw fail(.invalidNumber, "digit expected in exponent")
                }
                while i < bytes.count, bytes[i] >= 48 && bytes[i] <= 57 { i += 1 }
            }
            let text = String(decoding: bytes[start..<i], as: UTF8.self)
            if integral, i - start <= 17, let v = Int64(text), v.magnitude <= 9_007_199_254_740_992 { return .int(v) }
            guard let d = Double(text), d.isFinite else {
                throw JSONParseError(reason: .numberOutOfRange, offset: start, detail: text)
            }
            return .double(d)
        }
    }
}

extension JSONValue {
    /// Parses with the default limits of ``JSONParser``.
    public static func parse(_ bytes: [UInt8]) throws(JSONParseError) -> JSONValue { try JSONParser().parse(bytes) }
}
