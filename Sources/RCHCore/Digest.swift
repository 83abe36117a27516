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
        let utf8 = Array(hex.utf8)
        guard utf8.count == 64 else { return nil }
        var out = [UInt8](repeating: 0, count: 32)
        for i in 0..<32 {
            guard let hi = Self.nibble(utf8[2 * i]), let lo = Self.nibble(utf8[2 * i + 1]) else { return nil }
            out[i] = hi << 4 | lo
        }
        self.bytes = out
    }

    private static func nibble(_ c: UInt8) -> UInt8? {
        switch c {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): c - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): c - UInt8(ascii: "a") + 10
        default: nil
        }
    }

    /// Lowercase hex.
    public var hex: String {
        let digits = Array("0123456789abcdef".utf8)
        var out = [UInt8]()
        out.reserveCapacity(64)
        for b in bytes {
            out.append(digits[Int(b >> 4)])
            out.append(digits[Int(b & 0xF)])
        }
        return String(decoding: out, as: UTF8.self)
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
