#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation
import RCHBundle
import RCHCore

/// A digest held inline (no heap allocation): gc and fsck keep millions of them.
struct DigestKey: Hashable, Comparable {
    var a: UInt64, b: UInt64, c: UInt64, d: UInt64

    static func < (x: DigestKey, y: DigestKey) -> Bool { (x.a, x.b, x.c, x.d) < (y.a, y.b, y.c, y.d) }

    /// Words are big-endian, so key order is the digest's byte order (and blob shards sort in order).
    init(_ digest: SHA256Digest) {
        var words = [UInt64](repeating: 0, count: 4)
        digest.bytes.withUnsafeBytes { raw in for i in 0..<4 { words[i] = UInt64(bigEndian: raw.loadUnaligned(fromByteOffset: i * 8, as: UInt64.self)) } }
        (a, b, c, d) = (words[0], words[1], words[2], words[3])
    }

    /// Parses 64 lowercase hex characters without allocating; nil for anything else.
    init?(hex: some StringProtocol) {
        var words: (UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0)
        var ok = true
        var count = 0
        for c in hex.utf8 {
            let v: UInt64
            switch c {
            case 48...57: v = UInt64(c - 48)
            case 97...102: v = UInt64(c - 87)
            default: ok = false; v = 0
            }
            if !ok || count >= 64 { return nil }
            switch count / 16 {
            case 0: words.0 = words.0 << 4 | v
            case 1: words.1 = words.1 << 4 | v
            case 2: words.2 = words.2 << 4 | v
            default: words.3 = words.3 << 4 | v
            }
            count += 1
        }
        guard count == 64 else { return nil }
        (a, b, c, d) = words
    }

    var digest: SHA256Digest {
        var bytes = [UInt8](repeating: 0, count: 32)
        bytes.withUnsafeMutableBytes { raw in for (i, w) in [a, b, c, d].enumerated() { raw.storeBytes(of: w.bigEndian, toByteOffset: i * 8, as: UInt64.self) } }
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
            for (k, v) in parts[i] { keys.append(k); infos.append(v) }
            parts[i] = []
        }
    }

    var count: Int { keys.count }

    func index(_ k: DigestKey) -> Int? {
        var lo = 0, hi = keys.count
        while lo < hi {
            let mid = (lo + hi) / 2
            if keys[mid] < k { lo = mid + 1 } else { hi = mid }
        }
        return lo < keys.count && keys[lo] == k ? lo : nil
    }

    func contains(_ k: DigestKey) -> Bool { index(k) != nil }
}

/// Runs `body(i)` for i in 0..<count on `threads` threads and collects the per-index results in order.
func parallelMap<T>(_ count: Int, threads: Int = min(4, max(1, Int(sysconf(Int32(_SC_NPROCESSORS_ONLN))))), _ body: @escaping @Sendable (Int) -> T) -> [T] {
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
            for name in (try? FileManagerLite.list(dir)) ?? [] where name.hasSuffix(".json") && !name.hasPrefix(".") { out.append((dir + "/" + name, ns)) }
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
        for shard in (try? FileManagerLite.list(store.sourcesDirectory)) ?? [] { dirs.append((store.sourcesDirectory + "/" + shard, nil)) }
        for ns in (try? FileManagerLite.list(store.resultsDirectory)) ?? [] where !ns.hasPrefix(".") {
            if let namespace, ns != namespace { continue }
            for shard in (try? FileManagerLite.list(store.resultsDirectory + "/" + ns)) ?? [] { dirs.append((store.resultsDirectory + "/" + ns + "/" + shard, ns)) }
        }
        return dirs
    }

    func entries(namespace: String? = nil) -> [ScannedEntry] {
        // One work item per shard directory, scanned in parallel.
        let dirs = shardDirectories(namespace: namespace)
        let scanner = self
        let work = dirs
        return parallelMap(work.count) { i -> [ScannedEntry] in
            let (dir, ns) = work[i]
            var out: [ScannedEntry] = []
            for name in (try? FileManagerLite.list(dir)) ?? [] where name.hasSuffix(".json") && !name.hasPrefix(".") {
                guard let d = SHA256Digest(hex: String(name.dropLast(5))) else { continue }
                out.append(ns.map { scanner.scanResult(dir + "/" + name, $0, d) } ?? scanner.scanSource(dir + "/" + name, d))
            }
            return out
        }.flatMap { $0 }
    }

    private func stat(_ path: String) -> (Int64, UInt64) {
        var st = Glibc_stat()
        guard lstat(path, &st) == 0 else { return (0, 0) }
        return (Self.mtimeNanos(st), UInt64(st.st_size))
    }

    func scanSource(_ path: String, _ sha: SHA256Digest) -> ScannedEntry {
        let (mt, size) = stat(path)
        var e = ScannedEntry(kind: .source(sha), path: path, lastUse: mt, fileBytes: size, blobs: [], logicalBytes: 0)
        guard let bytes = try? DurableFile.read(path), let v = try? JSONParser().parse(bytes), let items = v["entries"]?.arrayValue,
              v["source_sha256"]?.stringValue == sha.hex else {
            e.broken = "does not parse as the source manifest of \(sha.hex)"
            return e
        }
        var seen = Set<DigestKey>()
        for item in items where item["type"]?.stringValue == "file" {
            guard let k = item["sha256"]?.stringValue.flatMap({ DigestKey(hex: $0) }) else { e.broken = "malformed entry"; return e }
            if seen.insert(k).inserted { e.blobs.append(k) }
            e.logicalBytes += UInt64(item["size"]?.intValue ?? 0)
        }
        return e
    }

    func scanResult(_ path: String, _ ns: String, _ key: SHA256Digest) -> ScannedEntry {
        let (mt, size) = stat(path)
        var e = ScannedEntry(kind: .result(namespace: ns, jobKey: key), path: path, lastUse: mt, fileBytes: size, blobs: [], logicalBytes: 0)
        guard let bytes = try? DurableFile.read(path), let v = try? JSONParser().parse(bytes), let items = v["entries"]?.arrayValue,
              v["job_key"]?.stringValue == key.hex else {
            e.broken = "does not parse as the result entry of \(key.hex)"
            return e
        }
        var seen = Set<DigestKey>()
        for item in items {
            guard let k = item["sha256"]?.stringValue.flatMap({ DigestKey(hex: $0) }) else { continue }
            if seen.insert(k).inserted { e.blobs.append(k) }
            e.logicalBytes += UInt64(item["size"]?.intValue ?? 0)
        }
        return e
    }

    /// Every blob with its real disk usage (st_blocks × 512) and mtime; shards scanned in parallel.
    func blobs() -> BlobTable {
        let root = store.blobs.root
        let shards = ((try? FileManagerLite.list(root)) ?? []).filter { $0.utf8.count == 2 }.sorted()
        var parts = parallelMap(shards.count) { i -> [(DigestKey, BlobInfo)] in
            let dir = root + "/" + shards[i]
            guard let d = opendir(dir) else { return [] }
            defer { closedir(d) }
            let fd = dirfd(d)
            var out: [(DigestKey, BlobInfo)] = []
            while let ent = readdir(d) {
                let bytes = Directory.nameBytes(ent)
                guard bytes.count == 64, let key = DigestKey(hex: String(decoding: bytes, as: UTF8.self)) else { continue }
                var st = Glibc_stat()
                guard fstatat(fd, Directory.namePointer(ent), &st, AT_SYMLINK_NOFOLLOW) == 0 else { continue }
                out.append((key, BlobInfo(diskBytes: UInt64(st.st_blocks) * 512, mtime: Self.mtimeNanos(st))))
            }
            out.sort { $0.0 < $1.0 }
            return out
        }
        return BlobTable(sortedParts: &parts)
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
                if name.hasPrefix(".tmp-") || name.hasPrefix(".staging-") || name.hasPrefix(".part-") {
                    out.append((p, Self.mtimeNanos(st), isDir))
                } else if isDir && depth < maxDepth {
                    visit(p, depth: depth + 1, maxDepth: maxDepth)
                }
            }
        }
        // Blob shards hold only published blobs (temp files live in staging directories): not descended.
        for (top, depth) in [("bundles", 0), ("incoming", 0), ("sources", 1), ("results", 2), ("leases", 0), ("jobs", 0), ("cache", 1), ("blobs/sha256", 0)] {
            visit(store.root + "/" + top, depth: 0, maxDepth: depth)
        }
        for name in (try? FileManagerLite.list(store.root)) ?? [] where name.hasPrefix(".tmp-") {
            var st = Glibc_stat()
            if lstat(store.root + "/" + name, &st) == 0 { out.append((store.root + "/" + name, Self.mtimeNanos(st), false)) }
        }
        return out
    }
}

typealias Glibc_stat = stat
