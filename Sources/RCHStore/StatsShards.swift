import RCHBundle
import RCHCore

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

enum ShardKind: Equatable, Sendable {
    case blobs, sources, results(String)
}

/// One shard directory's contribution to `stats`.
struct ShardPart {
    var path: String
    var kind: ShardKind
    var totals = ShardSummaries.Totals()
    /// Entry shards: the oldest and newest last use among their entries.
    var oldest = Int64.max, newest = Int64.min
    /// What to remember for the next run (nil: the shard changed too recently, or could not be read).
    var record: ShardSummaries.Record?
    var rescanned = false

    mutating func use(_ lastUse: Int64) {
        oldest = min(oldest, lastUse)
        newest = max(newest, lastUse)
    }
}

extension ShardSummaries.Totals {
    mutating func add(_ o: Self) {
        count += o.count
        bytes += o.bytes
        broken += o.broken
    }
}

extension StoreStats {
    func part(_ path: String, _ kind: ShardKind, cached: ShardSummaries.Record?, scan: StoreScan, startedAt: Int64)
        -> ShardPart
    {
        kind == .blobs
            ? blobShard(path, cached: cached, startedAt: startedAt)
            : entryShard(path, kind, cached: cached, scan: scan, startedAt: startedAt)
    }

    /// Blob count and disk usage of one shard: remembered totals if the directory is unchanged, else a listing.
    private func blobShard(_ path: String, cached: ShardSummaries.Record?, startedAt: Int64) -> ShardPart {
        var part = ShardPart(path: path, kind: .blobs)
        let dir = store.root + "/" + path
        var st = stat()
        guard stat(dir, &st) == 0 else { return part }
        if let cached, cached.key.sameDirectory(.init(directory: st)) {
            part.totals = cached.totals
            part.record = cached
            return part
        }
        part.rescanned = true
        var totals = ShardSummaries.Totals()
        guard
            let (before, after) = StoreScan.listBlobShard(
                dir,
                { _, st in
                    totals.count += 1
                    totals.bytes += UInt64(st.st_blocks) * 512
                })
        else { return part }
        part.totals = totals
        part.record = remember(before, after, totals, startedAt: startedAt)
        return part
    }

    /// Entries of one shard. With a remembered record for the same directory state, every entry is
    /// `fstatat`ed (last use; the fingerprint of inodes and sizes) and the remembered logical bytes are used
    /// if the fingerprint matches; otherwise every entry is read (one open and `fstat` each).
    private func entryShard(
        _ path: String, _ kind: ShardKind, cached: ShardSummaries.Record?, scan: StoreScan, startedAt: Int64
    ) -> ShardPart {
        var part = ShardPart(path: path, kind: kind)
        let dir = store.root + "/" + path
        guard let d = opendir(dir) else { return part }
        defer { closedir(d) }
        let fd = dirfd(d)
        var before = stat()
        var st = stat()
        guard fstat(fd, &before) == 0 else { return part }
        if let cached, cached.key.sameDirectory(.init(directory: before)) {
            var fingerprint: UInt64 = 0
            var count: UInt64 = 0
            while let ent = readdir(d) {
                guard Self.entryKey(ent) != nil, fstatat(fd, Directory.namePointer(ent), &st, AT_SYMLINK_NOFOLLOW) == 0
                else { continue }
                let id = FileIdentity(st)
                count += 1
                ShardSummaries.Key.fold(&fingerprint, inode: id.inode, size: id.size)
                part.use(id.mtimeNanos)
            }
            if cached.key.fingerprint == fingerprint && cached.totals.count == count {
                part.totals = cached.totals
                part.record = cached
                return part
            }
            rewinddir(d)
            part.oldest = .max
            part.newest = .min
        }
        part.rescanned = true
        var fingerprint: UInt64 = 0
        while let ent = readdir(d) {
            guard let k = Self.entryKey(ent) else { continue }
            let name = String(decoding: Directory.nameBytes(ent), as: UTF8.self)
            let file = (dirFD: fd, name: name)
            var e =
                switch kind {
                case .results(let ns): scan.scanResult(dir + "/" + name, ns, k.digest, withBlobs: false, file: file)
                default: scan.scanSource(dir + "/" + name, k.digest, withBlobs: false, file: file)
                }
            if e.inode == 0 {  // not opened: gone since listed (skipped), or unreadable (counted, as broken)
                guard fstatat(fd, Directory.namePointer(ent), &st, AT_SYMLINK_NOFOLLOW) == 0 else { continue }
                let id = FileIdentity(st)
                (e.inode, e.fileBytes, e.lastUse) = (id.inode, id.size, id.mtimeNanos)
            }
            part.totals.count += 1
            part.totals.bytes += e.logicalBytes
            if e.broken != nil { part.totals.broken += 1 }
            ShardSummaries.Key.fold(&fingerprint, inode: e.inode, size: e.fileBytes)
            part.use(e.lastUse)
        }
        var after = stat()
        guard fstat(fd, &after) == 0 else { return part }
        part.record = remember(before, after, part.totals, fingerprint: fingerprint, startedAt: startedAt)
        return part
    }

    /// A record for a shard scanned between `before` and `after`, if its directory did not change meanwhile
    /// and had been quiet for longer than the racy window when the run started.
    private func remember(
        _ before: stat, _ after: stat, _ totals: ShardSummaries.Totals, fingerprint: UInt64 = 0, startedAt: Int64
    ) -> ShardSummaries.Record? {
        var key = ShardSummaries.Key(directory: before)
        guard key.sameDirectory(.init(directory: after)),
            ShardSummaries.isQuiet(key, startedAtNanos: startedAt, racyWindowNanos: racyWindowNanos)
        else { return nil }
        key.fingerprint = fingerprint
        return .init(key: key, totals: totals)
    }

    /// The digest of an entry file name (`<64 hex>.json`); nil for anything else (temp files, strays).
    private static func entryKey(_ ent: UnsafeMutablePointer<dirent>) -> DigestKey? {
        let b = Directory.nameBytes(ent)
        guard b.count == 69, b[64] == UInt8(ascii: "."), b[65] == UInt8(ascii: "j"), b[66] == UInt8(ascii: "s"),
            b[67] == UInt8(ascii: "o"), b[68] == UInt8(ascii: "n")
        else { return nil }
        return DigestKey(hexBytes: UnsafeBufferPointer(rebasing: b.assumingMemoryBound(to: UInt8.self)[0..<64]))
    }
}
