import Foundation
import RCHBundle
import RCHCore

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// A digest held inline (no heap allocation): gc and fsck keep millions of them.
struct DigestKey: Hashable, Comparable {
    var a: UInt64, b: UInt64, c: UInt64, d: UInt64

    static func < (x: DigestKey, y: DigestKey) -> Bool { (x.a, x.b, x.c, x.d) < (y.a, y.b, y.c, y.d) }

    /// Words are big-endian, so key order is the digest's byte order (and blob shards sort in order).
    init(_ digest: SHA256Digest) {
        var words = [UInt64](repeating: 0, count: 4)
        digest.bytes.withUnsafeBytes { raw in
            for i in 0..<4 { words[i] = UInt64(bigEndian: raw.loadUnaligned(fromByteOffset: i * 8, as: UInt64.self)) }
        }
        (a, b, c, d) = (words[0], words[1], words[2], words[3])
    }

    /// Parses 64 lowercase hex characters without allocating; nil for anything else.
    init?(hex: some StringProtocol) {
        let parsed: DigestKey?? = hex.utf8.withContiguousStorageIfAvailable { DigestKey(hexBytes: $0) }
        guard let k = parsed ?? Array(hex.utf8).withUnsafeBufferPointer({ DigestKey(hexBytes: $0) }) else { return nil }
        self = k
    }

    init?(hexBytes h: UnsafeBufferPointer<UInt8>) {
        guard h.count == 64 else { return nil }
        var bad: UInt8 = 0
        (a, b, c, d) = (Self.word(h, 0, &bad), Self.word(h, 16, &bad), Self.word(h, 32, &bad), Self.word(h, 48, &bad))
        guard bad == 0 else { return nil }
    }

    /// 16 hex digits from `offset`; any non-lowercase-hex byte sets high bits in `bad`.
    @inline(__always) private static func word(_ h: UnsafeBufferPointer<UInt8>, _ offset: Int, _ bad: inout UInt8)
        -> UInt64
    {
        var v: UInt64 = 0
        for k in offset..<(offset + 16) {
            let digit = SHA256Digest.nibble(h[k])
            bad |= digit & 0xF0
            v = v << 4 | UInt64(digit & 15)
        }
        return v
    }

    var digest: SHA256Digest {
        var bytes = [UInt8](repeating: 0, count: 32)
        bytes.withUnsafeMutableBytes { raw in
            for (i, w) in [a, b, c, d].enumerated() {
                raw.storeBytes(of: w.bigEndian, toByteOffset: i * 8, as: UInt64.self)
            }
        }
        return SHA256Digest(bytes: bytes)
    }
}

/// One source or result entry as gc, fsck and stats see it.
struct ScannedEntry {
    enum Kind: Equatable { case source(SHA256Digest), result(namespace: String, jobKey: SHA256Digest) }
    var kind: Kind
    var path: String
    /// Last use (the entry file's mtime), nanoseconds since 1970.
    var lastUse: Int64
    var fileBytes: UInt64
    /// Referenced blobs (unique) and the logical bytes they stand for.
    var blobs: [DigestKey]
    var logicalBytes: UInt64
    /// Set when the entry could not be parsed (fsck reports it; gc treats it as removable).
    var broken: String?
    var inode: UInt64 = 0

    var leaseSubject: LeaseSubject {
        switch kind {
        case .source(let s): .source(s)
        case .result(let ns, let k): .result(namespace: ns, jobKey: k)
        }
    }
    var label: String {
        switch kind {
        case .source(let s): "source \(s.hex)"
        case .result(let ns, let k): "result \(ns)/\(k.hex)"
        }
    }
}

struct BlobInfo {
    var diskBytes: UInt64
    var mtime: Int64
    var refs: Int32 = 0
}

/// Every blob of a store, compactly: parallel arrays sorted by key (56 bytes a blob, no hashing tables —
/// a million blobs fit in ~56 MiB).
struct BlobTable {
    private(set) var keys: [DigestKey] = []
    var infos: [BlobInfo] = []

    /// Builds from per-shard parts already sorted and given in shard order (so the whole is sorted),
    /// releasing each part as it is copied.
    init(sortedParts parts: inout [[(DigestKey, BlobInfo)]]) {
        let n = parts.reduce(0) { $0 + $1.count }
        keys.reserveCapacity(n)
        infos.reserveCapacity(n)
        for i in parts.indices {
            for (k, v) in parts[i] {
                keys.append(k)
                infos.append(v)
            }
            parts[i] = []
        }
    }

    var count: Int { keys.count }

    func index(_ k: DigestKey) -> Int? {
        var lo = 0
        var hi = keys.count
        while lo < hi {
            let mid = (lo + hi) / 2
            if keys[mid] < k { lo = mid + 1 } else { hi = mid }
        }
        return lo < keys.count && keys[lo] == k ? lo : nil
    }

    func contains(_ k: DigestKey) -> Bool { index(k) != nil }
}

/// Runs `body(i)` for i in 0..<count on `threads` threads (default: twice the cores, at most 8 — the
/// callers spend most of their time in the kernel on path lookups and directory reads, where extra threads
/// overlap what blocks) and collects the results in order.
func parallelMap<T>(
    _ count: Int, threads: Int = min(8, max(1, 2 * Int(sysconf(Int32(_SC_NPROCESSORS_ONLN))))),
    _ body: @escaping @Sendable (Int) -> T
) -> [T] {
    let results = Box([T?](repeating: nil, count: count))
    let next = Box(0)
    let lock = NSLock()
    let group = DispatchGroup()
    for _ in 0..<max(1, min(threads, count)) {
        group.enter()
        Thread.detachNewThread {
            defer { group.leave() }
            while true {
                lock.lock()
                let i = next.value
                next.value += 1
                lock.unlock()
                if i >= count { return }
                let r = body(i)
                lock.lock()
                results.value[i] = r
                lock.unlock()
            }
        }
    }
    group.wait()
    return results.value.map { $0! }
}

/// Reads the store's entries and blob directory without modifying anything (no last-use updates).
public struct StoreScan: Sendable {
    let store: LocalStore

    public static func mtimeNanos(_ st: stat) -> Int64 { FileIdentity(st).mtimeNanos }

    /// Every source and result entry (optionally only results of `namespace`; sources are always listed).
    /// Entry files currently present, without reading them: (path, namespace for results).
    func entryPaths() -> [(path: String, namespace: String?)] {
        var out: [(String, String?)] = []
        for (dir, ns) in shardDirectories(namespace: nil) {
            for name in (try? FileManagerLite.list(dir)) ?? [] where name.hasSuffix(".json") && !name.hasPrefix(".") {
                out.append((dir + "/" + name, ns))
            }
        }
        return out
    }

    /// Reads one entry file.
    func entry(at path: String, namespace: String?) -> ScannedEntry? {
        let name = path.split(separator: "/").last.map(String.init) ?? ""
        guard let d = SHA256Digest(hex: String(name.dropLast(5))) else { return nil }
        return namespace.map { scanResult(path, $0, d) } ?? scanSource(path, d)
    }

    func shardDirectories(namespace: String?) -> [(dir: String, namespace: String?)] {
        var dirs: [(dir: String, namespace: String?)] = []
        for shard in (try? FileManagerLite.list(store.sourcesDirectory)) ?? [] {
            dirs.append((store.sourcesDirectory + "/" + shard, nil))
        }
        for ns in (try? FileManagerLite.list(store.resultsDirectory)) ?? [] where !ns.hasPrefix(".") {
            if let namespace, ns != namespace { continue }
            for shard in (try? FileManagerLite.list(store.resultsDirectory + "/" + ns)) ?? [] {
                dirs.append((store.resultsDirectory + "/" + ns + "/" + shard, ns))
            }
        }
        return dirs
    }

    /// `withBlobs: false` (stats) leaves `blobs` empty: only counts, bytes and last uses are needed.
    func entries(namespace: String? = nil, withBlobs: Bool = true) -> [ScannedEntry] {
        // One work item per shard directory, scanned in parallel.
        let dirs = shardDirectories(namespace: namespace)
        let scanner = self
        let work = dirs
        return parallelMap(work.count) { i -> [ScannedEntry] in
            let (dir, ns) = work[i]
            var out: [ScannedEntry] = []
            // Entry files are opened relative to their shard (a two-component lookup each).
            let fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
            defer { if fd >= 0 { close(fd) } }
            for name in (try? FileManagerLite.list(dir)) ?? [] where name.hasSuffix(".json") && !name.hasPrefix(".") {
                guard let d = SHA256Digest(hex: name.dropLast(5)) else { continue }
                let file = fd >= 0 ? (fd, name) : (AT_FDCWD, dir + "/" + name)
                out.append(
                    ns.map { scanner.scanResult(dir + "/" + name, $0, d, withBlobs: withBlobs, file: file) }
                        ?? scanner.scanSource(dir + "/" + name, d, withBlobs: withBlobs, file: file))
            }
            return out
        }.flatMap { $0 }
    }

    /// An entry file's bytes with its mtime and size from the same open file (one path lookup).
    private func read(_ file: (dirFD: Int32, name: String)) -> (
        bytes: [UInt8]?, mtime: Int64, size: UInt64, inode: UInt64
    ) {
        guard let r = try? DurableFile.readWithStatus(file.name, relativeTo: file.dirFD) else { return (nil, 0, 0, 0) }
        return (r.bytes, Self.mtimeNanos(r.status), UInt64(r.status.st_size), UInt64(r.status.st_ino))
    }

    func scanSource(
        _ path: String, _ sha: SHA256Digest, withBlobs: Bool = true,
        file: (dirFD: Int32, name: String)? = nil
    ) -> ScannedEntry {
        let (data, mt, size, inode) = read(file ?? (AT_FDCWD, path))
        var e = ScannedEntry(
            kind: .source(sha), path: path, lastUse: mt, fileBytes: size, blobs: [], logicalBytes: 0, inode: inode)
        guard let bytes = data, let v = try? JSONParser().parse(bytes), let items = v["entries"]?.arrayValue,
            v["source_sha256"]?.stringValue == sha.hex
        else {
            e.broken = "does not parse as the source manifest of \(sha.hex)"
            return e
        }
        var seen = Set<DigestKey>()
        for item in items where item["type"]?.stringValue == "file" {
            guard let k = item["sha256"]?.stringValue.flatMap({ DigestKey(hex: $0) }) else {
                e.broken = "malformed entry"
                return e
            }
            if withBlobs && seen.insert(k).inserted { e.blobs.append(k) }
            e.logicalBytes += UInt64(item["size"]?.intValue ?? 0)
        }
        return e
    }

    func scanResult(
        _ path: String, _ ns: String, _ key: SHA256Digest, withBlobs: Bool = true,
        file: (dirFD: Int32, name: String)? = nil
    ) -> ScannedEntry {
        let (data, mt, size, inode) = read(file ?? (AT_FDCWD, path))
        var e = ScannedEntry(
            kind: .result(namespace: ns, jobKey: key), path: path, lastUse: mt, fileBytes: size, blobs: [],
            logicalBytes: 0, inode: inode)
        guard let bytes = data, let v = try? JSONParser().parse(bytes), let items = v["entries"]?.arrayValue,
            v["job_key"]?.stringValue == key.hex
        else {
            e.broken = "does not parse as the result entry of \(key.hex)"
            return e
        }
        var seen = Set<DigestKey>()
        for item in items {
            guard let k = item["sha256"]?.stringValue.flatMap({ DigestKey(hex: $0) }) else { continue }
            if withBlobs && seen.insert(k).inserted { e.blobs.append(k) }
            e.logicalBytes += UInt64(item["size"]?.intValue ?? 0)
        }
        return e
    }

    /// Every blob with its real disk usage (st_blocks × 512) and mtime; shards scanned in parallel.
    func blobs() -> BlobTable {
        let root = store.blobs.root
        let shards = blobShardNames()
        var parts = parallelMap(shards.count) { i -> [(DigestKey, BlobInfo)] in
            var out: [(DigestKey, BlobInfo)] = []
            _ = Self.listBlobShard(root + "/" + shards[i]) { key, st in
                out.append((key, BlobInfo(diskBytes: UInt64(st.st_blocks) * 512, mtime: Self.mtimeNanos(st))))
            }
            out.sort { $0.0 < $1.0 }
            return out
        }
        return BlobTable(sortedParts: &parts)
    }

    /// The blob shard directory names (two hex digits), sorted.
    func blobShardNames() -> [String] {
        ((try? FileManagerLite.list(store.blobs.root)) ?? []).filter { $0.utf8.count == 2 }.sorted()
    }

    /// Calls `visit` with the key and `lstat` of every blob-named file in the shard directory `dir`; returns
    /// the directory's own `stat` from when the listing started and from when it ended (nil: not listable).
    static func listBlobShard(_ dir: String, _ visit: (DigestKey, Glibc_stat) -> Void) -> (
        before: Glibc_stat, after: Glibc_stat
    )? {
        guard let d = opendir(dir) else { return nil }
        defer { closedir(d) }
        let fd = dirfd(d)
        var before = Glibc_stat()
        var after = Glibc_stat()
        var st = Glibc_stat()
        guard fstat(fd, &before) == 0 else { return nil }
        while let ent = readdir(d) {
            let bytes = Directory.nameBytes(ent)
            guard bytes.count == 64, let key = DigestKey(hexBytes: bytes.assumingMemoryBound(to: UInt8.self)),
                fstatat(fd, Directory.namePointer(ent), &st, AT_SYMLINK_NOFOLLOW) == 0
            else { continue }
            visit(key, st)
        }
        guard fstat(fd, &after) == 0 else { return nil }
        return (before, after)
    }

    /// Store files that are crash residue: `.tmp-*` files and `.staging-*` directories, with their mtimes.
    func residue() -> [(path: String, mtime: Int64, isDirectory: Bool)] {
        var out: [(String, Int64, Bool)] = []
        func visit(_ dir: String, depth: Int, maxDepth: Int) {
            for name in (try? FileManagerLite.list(dir)) ?? [] {
                let p = dir + "/" + name
                var st = Glibc_stat()
                guard lstat(p, &st) == 0 else { continue }
                let isDir = (st.st_mode & S_IFMT) == S_IFDIR
                if name.hasPrefix(".tmp-") || name.hasPrefix(".staging-") || name.hasPrefix(".part-")
                    || name.hasPrefix(".rch-staging-") || name.hasPrefix(".rch-extract-")
                    || name.hasPrefix(".rch-removing-")
                {
                    out.append((p, Self.mtimeNanos(st), isDir))
                } else if isDir && depth < maxDepth {
                    visit(p, depth: depth + 1, maxDepth: maxDepth)
                }
            }
        }
        // Blob shards hold only published blobs (temp files live in staging directories): not descended.
        // `work/<job_id>/` holds the staging directories of materialisations (`.rch-staging-*`).
        for (top, depth) in [
            ("bundles", 0), ("incoming", 0), ("sources", 1), ("results", 2), ("leases", 0), ("jobs", 0), ("cache", 1),
            ("blobs/sha256", 0), ("work", 1),
        ] {
            visit(store.root + "/" + top, depth: 0, maxDepth: depth)
        }
        for name in (try? FileManagerLite.list(store.root)) ?? [] where name.hasPrefix(".tmp-") {
            var st = Glibc_stat()
            if lstat(store.root + "/" + name, &st) == 0 {
                out.append((store.root + "/" + name, Self.mtimeNanos(st), false))
            }
        }
        return out
    }
}

typealias Glibc_stat = stat
