import Crypto

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// A SHA-256 digest.
///
/// Invariant: the textual form is exactly 64 lowercase hexadecimal characters. Every digest that
/// enters from outside (CLI, RPC, file names) goes through ``init(hex:)``, which accepts nothing else,
/// so a digest can always be used as a path component.
public struct SHA256Digest: Hashable, Sendable, Comparable, CustomStringConvertible {
    /// The 32 raw bytes.
    public let bytes: [UInt8]

    public init(bytes: [UInt8]) {
        precondition(bytes.count == 32, "SHA-256 digests are 32 bytes")
        self.bytes = bytes
    }

    /// Parses 64 lowercase hex characters; returns nil for anything else (uppercase included).
    public init?(hex: some StringProtocol) {
        let parsed: [UInt8]?? = hex.utf8.withContiguousStorageIfAvailable { Self.parse($0) }
        guard let bytes = parsed ?? Array(hex.utf8).withUnsafeBufferPointer({ Self.parse($0) }) else { return nil }
        self.bytes = bytes
    }

    /// ``init(hex:)`` for a `String` (not generic: called by the thousand when entries are read).
    public init?(hex: String) {
        var s = hex
        guard let bytes = s.withUTF8({ Self.parse($0) }) else { return nil }
        self.bytes = bytes
    }

    /// ``init(hex:)`` from the UTF-8 bytes of the 64 digits.
    public init?(hexUTF8: ArraySlice<UInt8>) {
        guard let bytes = hexUTF8.withUnsafeBufferPointer({ Self.parse($0) }) else { return nil }
        self.bytes = bytes
    }

    private static func parse(_ utf8: UnsafeBufferPointer<UInt8>) -> [UInt8]? {
        guard utf8.count == 64 else { return nil }
        var ok = true
        let out = [UInt8](unsafeUninitializedCapacity: 32) { buf, n in
            for k in 0..<32 {
                let hi = nibble(utf8[2 * k])
                let lo = nibble(utf8[2 * k + 1])
                ok = ok && hi < 16 && lo < 16
                buf[k] = hi << 4 | (lo & 15)
            }
            n = 32
        }
        return ok ? out : nil
    }

    /// The value of a lowercase hex digit, or 255.
    @inline(__always) public static func nibble(_ c: UInt8) -> UInt8 {
        switch c {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): c - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): c - UInt8(ascii: "a") + 10
        default: 255
        }
    }

    /// Lowercase hex.
    public var hex: String {
        String(unsafeUninitializedCapacity: 64) { buf in
            bytes.withUnsafeBufferPointer { b in
                for i in 0..<32 {
                    buf[2 * i] = Self.hexDigit(b[i] >> 4)
                    buf[2 * i + 1] = Self.hexDigit(b[i] & 15)
                }
            }
            return 64
        }
    }

    @inline(__always) public static func hexDigit(_ v: UInt8) -> UInt8 { v < 10 ? 48 + v : 87 + v }

    /// Appends the 64 lowercase hex digits of ``hex`` to `out` (no `String` made: writers of thousands of
    /// digests use it).
    public func appendHex(to out: inout [UInt8]) {
        let start = out.count
        out.append(contentsOf: repeatElement(0, count: 64))
        out.withUnsafeMutableBufferPointer { o in
            bytes.withUnsafeBufferPointer { b in
                for i in 0..<32 {
                    o[start + 2 * i] = Self.hexDigit(b[i] >> 4)
                    o[start + 2 * i + 1] = Self.hexDigit(b[i] & 15)
                }
            }
        }
    }

    public var description: String { hex }

    public static func < (a: SHA256Digest, b: SHA256Digest) -> Bool {
        a.bytes.lexicographicallyPrecedes(b.bytes)
    }

    /// SHA-256 of the given bytes.
    public static func of(_ data: some Sequence<UInt8>) -> SHA256Digest {
        var h = StreamingSHA256()
        h.update(Array(data))
        return h.finalize()
    }

    /// SHA-256 of the empty input.
    public static let empty = SHA256Digest.of([])
}

/// Incremental SHA-256 (swift-crypto) with a value-typed API.
public struct StreamingSHA256 {
    private var hasher = SHA256()
    public private(set) var byteCount: UInt64 = 0

    public init() {}

    public mutating func update(_ buffer: UnsafeRawBufferPointer) {
        hasher.update(bufferPointer: buffer)
        byteCount += UInt64(buffer.count)
    }

    public mutating func update(_ bytes: [UInt8]) {
        bytes.withUnsafeBytes { update($0) }
    }

    public func finalize() -> SHA256Digest {
        SHA256Digest(bytes: Array(hasher.finalize()))
    }
}

extension Array where Element == UInt8 {
    /// Byte-wise order (memcmp, shorter prefix first): the only order used for paths and sort keys.
    @inlinable
    public func bytesPrecede(_ other: [UInt8]) -> Bool {
        withUnsafeBufferPointer { a in
            other.withUnsafeBufferPointer { b in
                let n = Swift.min(a.count, b.count)
                let c = n == 0 ? 0 : memcmp(a.baseAddress!, b.baseAddress!, n)
                return c != 0 ? c < 0 : a.count < b.count
            }
        }
    }
}
