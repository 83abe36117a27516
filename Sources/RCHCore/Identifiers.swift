#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Identifiers that may become path components.
///
/// Invariant: every `run_id`, `job_id` and `request_id` matches `^[A-Za-z0-9][A-Za-z0-9_-]{9,63}$` and
/// every `cache.namespace` matches `^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$` (which also excludes `.`, `..`,
/// `/`, `\` and whitespace). They are checked where they enter (CLI, RPC, files), never later.
public enum Identifier {
    public enum Kind: String, Sendable {
        case runID = "run_id", jobID = "job_id", requestID = "request_id", namespace = "cache.namespace"
    }

    /// Whether `s` is a valid identifier of `kind`.
    public static func isValid(_ s: String, _ kind: Kind) -> Bool {
        let b = Array(s.utf8)
        func alnum(_ c: UInt8) -> Bool { (48...57).contains(c) || (65...90).contains(c) || (97...122).contains(c) }
        guard let first = b.first, alnum(first) else { return false }
        switch kind {
        case .namespace:
            return b.count <= 64 && b.dropFirst().allSatisfy { alnum($0) || $0 == 46 || $0 == 95 || $0 == 45 }
                && !s.contains("..")
        default:
            return (10...64).contains(b.count) && b.dropFirst().allSatisfy { alnum($0) || $0 == 95 || $0 == 45 }
        }
    }

    /// Validates `s`, throwing a message that names the field and the rule.
    public static func validate(_ s: String, _ kind: Kind) throws(IdentifierError) -> String {
        guard isValid(s, kind) else { throw IdentifierError(kind: kind, value: s) }
        return s
    }

    /// A new sortable, unique id: 26 characters of Crockford base32 — 48 bits of milliseconds since
    /// the epoch, then 80 random bits (ULID layout). Ids made later sort later (to the millisecond).
    public static func generate(nowMillis: UInt64? = nil) -> String {
        let alphabet = Array("0123456789ABCDEFGHJKMNPQRSTVWXYZ".utf8)
        let ms = nowMillis ?? UInt64(Timestamp.nowNanos() / 1_000_000)
        var rng = SystemRandomNumberGenerator()
        let hi = UInt64.random(in: 0...UInt64.max, using: &rng)
        let lo = UInt16.random(in: 0...UInt16.max, using: &rng)
        // 128 bits: ms (48) | random (80), written as 26 base32 digits (the top 2 bits are zero).
        let top = (ms << 16) | UInt64(lo)  // 64 bits
        let bottom = hi
        var out = [UInt8](repeating: 0, count: 26)
        var value = (top, bottom)
        for k in stride(from: 25, through: 0, by: -1) {
            let digit = Int(value.1 & 31)
            out[k] = alphabet[digit]
            value.1 = (value.1 >> 5) | ((value.0 & 31) << 59)
            value.0 >>= 5
        }
        return String(decoding: out, as: UTF8.self)
    }
}

public struct IdentifierError: Error, Equatable, CustomStringConvertible, Sendable {
    public let kind: Identifier.Kind
    public let value: String
    public init(kind: Identifier.Kind, value: String) {
        self.kind = kind
        self.value = value
    }
    public var description: String {
        let rule =
            kind == .namespace ? "^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$ (and no '..')" : "^[A-Za-z0-9][A-Za-z0-9_-]{9,63}$"
        return "\(kind.rawValue) '\(value)' is invalid: it must match \(rule)"
    }
}
