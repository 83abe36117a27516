import RCHBundle
import RCHCore

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Per-shard totals that `stats` reuses while a shard directory is unchanged (`cache/shard-summaries.bin`).
///
/// Invariants:
/// - The set of names in a shard changes only by creating, removing or renaming names in its directory,
///   which updates the directory's mtime and ctime (ctime cannot be set from user space). So a summary
///   keyed by the directory's (device, inode, mtime, ctime) describes the shard while that key is unchanged.
///   Blob files are immutable once published and entries are replaced by rename, so sizes and contents do
///   not change under an unchanged name; an in-place corruption is `fsck`'s to find (until the shard changes,
///   `stats` may report the bytes from before it).
/// - Entry shards are still listed and their files `fstatat`ed on every run (last use is each entry's mtime,
///   which a touch changes without changing the directory); their key also folds in every entry's inode
///   and size, so an in-place edit that changes a size is noticed too.
/// - Racy shards are not recorded: the directory key must be equal before and after the scan, and its mtime
///   and ctime must be older than the run's start by more than `racyWindowNanos` (timestamp granularity) —
///   otherwise a change just after the scan could leave the timestamps as they were.
/// - Private binary format, versioned by its magic and sealed by a trailing SHA-256; a file that does not
///   parse is ignored. Replaced atomically (temp file + rename) but not fsynced: losing it costs one full scan.
struct ShardSummaries {
    struct Key: Equatable {
        var device: UInt64
        var inode: UInt64
        var mtimeNanos: Int64
        var ctimeNanos: Int64
        /// Entry shards: the fold of every entry's inode and size (`fold`); 0 for blob shards.
        var fingerprint: UInt64 = 0

        init(device: UInt64, inode: UInt64, mtimeNanos: Int64, ctimeNanos: Int64, fingerprint: UInt64 = 0) {
            (self.device, self.inode, self.mtimeNanos, self.ctimeNanos, self.fingerprint) = (
                device, inode, mtimeNanos, ctimeNanos, fingerprint
            )
        }

        init(directory st: stat) {
            let id = FileIdentity(st)
            self.init(device: id.device, inode: id.inode, mtimeNanos: id.mtimeNanos, ctimeNanos: id.ctimeNanos)
        }

        /// Same directory state (the fingerprint is compared separately, once the entries were listed).
        func sameDirectory(_ o: Key) -> Bool {
            (device, inode, mtimeNanos, ctimeNanos) == (o.device, o.inode, o.mtimeNanos, o.ctimeNanos)
        }

        /// Order-independent fold of one entry file into `fingerprint` (splitmix64 of inode and size).
        static func fold(_ fingerprint: inout UInt64, inode: UInt64, size: UInt64) {
            var z = inode &* 0x9E37_79B9_7F4A_7C15 ^ size
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            fingerprint &+= z ^ (z >> 31)
        }
    }

    /// Blob shards: `bytes` is real disk usage. Entry shards: `bytes` is the logical bytes the entries
    /// reference, `broken` the entries that do not parse.
    struct Totals: Equatable {
        var count: UInt64 = 0
        var bytes: UInt64 = 0
        var broken: UInt64 = 0
    }

    struct Record: Equatable {
        var key: Key
        var totals: Totals
    }

    static let magic = Array("RCHSUM01".utf8)
    static let racyWindowNanos: Int64 = 2_000_000_000

    /// Keyed by the shard directory's path relative to the store root.
    var records: [String: Record] = [:]

    static func path(_ store: LocalStore) -> String { store.cacheDirectory + "/shard-summaries.bin" }

    /// Whether a directory in state `key` may be recorded by a scan that started at `startedAtNanos`.
    static func isQuiet(_ key: Key, startedAtNanos: Int64, racyWindowNanos: Int64 = racyWindowNanos) -> Bool {
        let limit = startedAtNanos - racyWindowNanos
        return key.mtimeNanos < limit && key.ctimeNanos < limit
    }

    static func load(_ store: LocalStore) -> ShardSummaries {
        guard let bytes = try? DurableFile.read(path(store), limit: 16 << 20), let s = ShardSummaries(decoding: bytes)
        else { return ShardSummaries() }
        return s
    }

    /// Best effort: a store on a read-only mount simply keeps scanning in full.
    func save(_ store: LocalStore) {
        try? Syscalls.makeDirectories(store.cacheDirectory)
        _ = try? DurableFile.write(encoded(), to: Self.path(store), durable: false)
    }

    init() {}

    func encoded() -> [UInt8] {
        var w = ByteWriter()
        w.bytes(Self.magic)
        w.u64(UInt64(records.count))
        for (path, r) in records.sorted(by: { $0.key < $1.key }) {
            w.string(path)
            for v in [
                r.key.device, r.key.inode, UInt64(bitPattern: r.key.mtimeNanos), UInt64(bitPattern: r.key.ctimeNanos),
                r.key.fingerprint, r.totals.count, r.totals.bytes, r.totals.broken,
            ] { w.u64(v) }
        }
        w.bytes(SHA256Digest.of(w.out).bytes)
        return w.out
    }

    init?(decoding data: [UInt8]) {
        guard data.count >= 32, SHA256Digest.of(data[..<(data.count - 32)]).bytes == Array(data[(data.count - 32)...])
        else { return nil }
        var r = ByteReader(Array(data[..<(data.count - 32)]))
        guard let m = r.take(8), Array(m) == Self.magic, let n = r.u64(), n < 10_000_000 else { return nil }
        for _ in 0..<n {
            guard let p = r.string(), let dev = r.u64(), let ino = r.u64(), let mt = r.u64(), let ct = r.u64(),
                let fp = r.u64(), let count = r.u64(), let bytes = r.u64(), let broken = r.u64()
            else { return nil }
            records[p] = Record(
                key: Key(
                    device: dev, inode: ino, mtimeNanos: Int64(bitPattern: mt), ctimeNanos: Int64(bitPattern: ct),
                    fingerprint: fp),
                totals: Totals(count: count, bytes: bytes, broken: broken))
        }
        guard r.atEnd else { return nil }
    }
}
