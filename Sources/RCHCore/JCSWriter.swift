/// RFC 8785 (JCS) serialisation.
///
/// Invariants: object members are sorted by their keys' UTF-16 code units; strings escape only `"`,
/// `\` and U+0000–U+001F (as `\b \t \n \f \r` or `\u00xx` with lowercase hex) and are otherwise
/// emitted as UTF-8; numbers use ECMAScript `Number.prototype.toString` (shortest round-trip digits);
/// -0 is written as `0`; NaN and infinities cannot be serialised.
extension JSONValue {
    /// The canonical (JCS) bytes of this value.
    public var canonicalBytes: [UInt8] {
        var out = [UInt8]()
        out.reserveCapacity(256)
        JCS.write(self, into: &out)
        return out
    }

    /// The canonical (JCS) text of this value.
    public var canonicalString: String { String(decoding: canonicalBytes, as: UTF8.self) }
}

/// The JCS (RFC 8785) writer; `writeString` is public for writers of hot, fixed-shape documents that emit
/// the same bytes as ``JSONValue/canonicalBytes`` without building a value first.
public enum JCS {
    static func write(_ v: JSONValue, into out: inout [UInt8]) {
        switch v {
        case .null: out.append(contentsOf: "null".utf8)
        case .bool(let b): out.append(contentsOf: (b ? "true" : "false").utf8)
        case .int(let i):
            if i.magnitude <= 9_007_199_254_740_992 {
                out.append(contentsOf: String(i).utf8)
            } else {
                out.append(contentsOf: formatNumber(Double(i)).utf8)
            }
        case .double(let d): out.append(contentsOf: formatNumber(d).utf8)
        case .string(let s): writeString(s, into: &out)
        case .array(let a):
            out.append(UInt8(ascii: "["))
            for (i, e) in a.enumerated() {
                if i > 0 { out.append(UInt8(ascii: ",")) }
                write(e, into: &out)
            }
            out.append(UInt8(ascii: "]"))
        case .object(let o):
            out.append(UInt8(ascii: "{"))
            let sorted = o.members.sorted { $0.key.utf16.lexicographicallyPrecedes($1.key.utf16) }
            for (i, m) in sorted.enumerated() {
                if i > 0 { out.append(UInt8(ascii: ",")) }
                writeString(m.key, into: &out)
                out.append(UInt8(ascii: ":"))
                write(m.value, into: &out)
            }
            out.append(UInt8(ascii: "}"))
        }
    }

    public static func writeString(_ s: String, into out: inout [UInt8]) {
        out.append(UInt8(ascii: "\""))
        var s = s
        let done: Bool = s.withUTF8 { buf in
            // Fast path: nothing to escape (the common case) — copy the bytes as they are.
            guard !buf.contains(where: { $0 < 0x20 || $0 == 0x22 || $0 == 0x5C }) else { return false }
            out.append(contentsOf: buf)
            return true
        }
        if done {
            out.append(UInt8(ascii: "\""))
            return
        }
        let hex = Array("0123456789abcdef".utf8)
        for b in s.utf8 {
            switch b {
            case UInt8(ascii: "\""): out.append(contentsOf: [92, 34])
            case UInt8(ascii: "\\"): out.append(contentsOf: [92, 92])
            case 0x08: out.append(contentsOf: [92, UInt8(ascii: "b")])
            case 0x09: out.append(contentsOf: [92, UInt8(ascii: "t")])
            case 0x0A: out.append(contentsOf: [92, UInt8(ascii: "n")])
            case 0x0C: out.append(contentsOf: [92, UInt8(ascii: "f")])
            case 0x0D: out.append(contentsOf: [92, UInt8(ascii: "r")])
            case 0..<0x20:
                out.append(contentsOf: [92, UInt8(ascii: "u"), 48, 48, hex[Int(b >> 4)], hex[Int(b & 0xF)]])
            default: out.append(b)
            }
        }
        out.append(UInt8(ascii: "\""))
    }

    /// ECMAScript Number::toString(10) for a finite double.
    static func formatNumber(_ d: Double) -> String {
        precondition(d.isFinite, "JCS cannot serialise NaN or Infinity")
        if d == 0 { return "0" }
        // Swift's description yields the shortest round-trip digits; extract them and the exponent.
        let (digits, pointPos) = shortestDigits(d.magnitude)
        let k = digits.count
        let n = pointPos
        var s = d < 0 ? "-" : ""
        if k <= n && n <= 21 {
            s += digits + String(repeating: "0", count: n - k)
        } else if 0 < n && n <= 21 {
            s += String(digits.prefix(n)) + "." + String(digits.dropFirst(n))
        } else if -6 < n && n <= 0 {
            s += "0." + String(repeating: "0", count: -n) + digits
        } else {
            let e = n - 1
            let mant = k == 1 ? digits : String(digits.prefix(1)) + "." + String(digits.dropFirst(1))
            s += mant + "e" + (e >= 0 ? "+" : "-") + String(abs(e))
        }
        return s
    }

    /// Returns (significant digits without leading/trailing zeros, n) with value = 0.digits × 10^n.
    static func shortestDigits(_ v: Double) -> (String, Int) {
        let desc = v.description  // e.g. "123.45", "1e-07", "5e-324", "1.2345e+21", "100.0"
        var mantissa = desc
        var exp = 0
        if let eIdx = desc.firstIndex(where: { $0 == "e" || $0 == "E" }) {
            mantissa = String(desc[..<eIdx])
            exp = Int(desc[desc.index(after: eIdx)...])!
        }
        var intPart = mantissa
        var fracPart = ""
        if let dot = mantissa.firstIndex(of: ".") {
            intPart = String(mantissa[..<dot])
            fracPart = String(mantissa[mantissa.index(after: dot)...])
        }
        var all = intPart + fracPart
        var point = intPart.count + exp
        while all.hasPrefix("0") && all.count > 1 {
            all.removeFirst()
            point -= 1
        }
        while all.hasSuffix("0") && all.count > 1 { all.removeLast() }
        return (all, point)
    }
}

/// Pieces of the JCS writer for hand-rolled streaming serialisers of large, fixed-shape documents.
public enum JSONStream {
    /// Appends `s` as a JCS string literal.
    public static func string(_ s: String, into out: inout [UInt8]) { JCS.writeString(s, into: &out) }
}
