import RCHBundle
import RCHCore

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// The hash state of a stored source's canonical tar after each of its entries, kept beside the entry
/// (`sources/<xx>/<sha>.ckpt`) so that a source uploaded as a delta against it (`upload_tree`) is verified by
/// hashing only from its first changed entry on.
///
/// Format (private, strict): `RCHCKPT1`, the entry count (u64 big-endian), then per entry the 40-byte midstate
/// (``SHA256Midstate/encoded``) with strictly increasing byte counts. Written after the entry is published, not
/// durably (it is a cache: lost or refused, the next delta is hashed whole); removed with the entry by gc.
/// Trust: a state read from here only ever starts a hash whose result is compared with the digest the host
/// named; a mismatch after a resumed hash is re-checked by a whole one before anything is refused.
public struct SourceCheckpoints {
    static let magic = Array("RCHCKPT1".utf8)
    public let store: LocalStore

    public init(store: LocalStore) { self.store = store }

    public func path(_ sha: SHA256Digest) -> String {
        store.sourcesDirectory + "/" + String(sha.hex.prefix(2)) + "/" + sha.hex + ".ckpt"
    }

    /// The states of `sha`, if kept and exactly `entries` of them.
    public func read(_ sha: SHA256Digest, entries: Int) -> [SHA256Midstate]? {
        guard let bytes = try? DurableFile.read(path(sha)) else { return nil }
        return Self.decode(bytes, entries: entries)
    }

    public func write(_ sha: SHA256Digest, _ checkpoints: [SHA256Midstate]) {
        guard !checkpoints.isEmpty else { return }
        _ = try? DurableFile.write(Self.encode(checkpoints), to: path(sha), replace: true, durable: false)
    }

    static func encode(_ checkpoints: [SHA256Midstate]) -> [UInt8] {
        var w = ByteWriter()
        w.bytes(magic)
        w.u64(UInt64(checkpoints.count))
        for c in checkpoints { w.bytes(c.encoded) }
        return w.out
    }

    static func decode(_ bytes: [UInt8], entries: Int) -> [SHA256Midstate]? {
        guard bytes.count == 16 + entries * SHA256Midstate.encodedSize else { return nil }
        var r = ByteReader(bytes)
        guard let m = r.take(8), Array(m) == magic, r.u64() == UInt64(entries) else { return nil }
        var out: [SHA256Midstate] = []
        out.reserveCapacity(entries)
        for _ in 0..<entries {
            guard let b = r.take(SHA256Midstate.encodedSize), let c = SHA256Midstate(encoded: b),
                c.byteCount > (out.last?.byteCount ?? 0)
            else { return nil }
            out.append(c)
        }
        return r.atEnd ? out : nil
    }
}
