#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import RCHBundle
import RCHCore

/// A digest held inline (no heap allocation): gc and fsck keep millions of them.
struct DigestKey: Hashable {
    var a: UInt64, b: UInt64, c: UInt64, d: UInt64

    init(_ digest: SHA256Digest) {
        var words = [UInt64](repeating: 0, count: 4)
        digest.bytes.withUnsafeBytes { raw in for i in 0..<4 { words[i] = raw.loadUnaligned(fromByteOffset: i * 8, as: UInt64.self) } }
        (a, b, c, d) = (words[0], words[1], words[2], words[3])
    }

    var digest: SHA256Digest {
        var bytes = [UInt8](repeating: 0, count: 32)
        bytes.withUnsafeMutableBytes { raw in for (i, w) in [a, b, c, d].enumerated() { raw.storeBytes(of: w, toByteOffset: i * 8, as: UInt64.self) } }
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

/// Reads the store's entries and blob directory without modifying anything (no last-use updates).
struct StoreScan {
    let store: LocalStore

    static func mtimeNanos(_ st: stat) -> Int64 { FileIdentity(st).mtimeNanos }

    /// Every source and result entry (optionally only results of `namespace`; sources are always listed).
    func entries(namespace: String? = nil) -> [ScannedEntry] {
        var out: [ScannedEntry] = []
        for shard in (try? FileManagerLite.list(store.sourcesDirectory)) ?? [] {
            let dir = store.sourcesDirectory + "/" + shard
            for name in (try? FileManagerLite.list(dir)) ?? [] where name.hasSuffix(".json") && !name.hasPrefix(".") {
                guard let sha = SHA256Digest(hex: String(name.dropLast(5))) else { continue }
                out.append(scanSource(dir + "/" + name, sha))
            }
        }
        for ns in (try? FileManagerLite.list(store.resultsDirectory)) ?? [] where !ns.hasPrefix(".") {
            if let namespace, ns != namespace { continue }
            for shard in (try? FileManagerLite.list(store.resultsDirectory + "/" + ns)) ?? [] {
                let dir = store.resultsDirectory + "/" + ns + "/" + shard
                for name in (try? FileManagerLite.list(dir)) ?? [] where name.hasSuffix(".json") && !name.hasPrefix(".") {
                    guard let key = SHA256Digest(hex: String(name.dropLast(5))) else { continue }
                    out.append(scanResult(dir + "/" + name, ns, key))
                }
            }
        }
        return out
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
            guard let d = item["sha256"]?.stringValue.flatMap({ SHA256Digest(hex: $0) }) else { e.broken = "malformed entry"; return e }
            if seen.insert(DigestKey(d)).inserted { e.blobs.append(DigestKey(d)) }
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
            guard let d = item["sha256"]?.stringValue.flatMap({ SHA256Digest(hex: $0) }) else { continue }
            if seen.insert(DigestKey(d)).inserted { e.blobs.append(DigestKey(d)) }
            e.logicalBytes += UInt64(item["size"]?.intValue ?? 0)
        }
        return e
    }

    /// Every blob with its real disk usage (st_blocks × 512) and mtime.
    func blobs() -> [DigestKey: BlobInfo] {
        var out: [DigestKey: BlobInfo] = [:]
        let root = store.blobs.root
        for shard in (try? FileManagerLite.list(root)) ?? [] where shard.utf8.count == 2 {
            let dir = root + "/" + shard
            guard let d = opendir(dir) else { continue }
            let fd = dirfd(d)
            while let ent = readdir(d) {
                let name = withUnsafeBytes(of: ent.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
                guard name.utf8.count == 64, let digest = SHA256Digest(hex: name) else { continue }
                var st = Glibc_stat()
                guard fstatat(fd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 else { continue }
                out[DigestKey(digest)] = BlobInfo(diskBytes: UInt64(st.st_blocks) * 512, mtime: Self.mtimeNanos(st))
            }
            closedir(d)
        }
        return out
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
        for (top, depth) in [("bundles", 0), ("sources", 1), ("results", 2), ("leases", 0), ("jobs", 0), ("cache", 1), ("blobs/sha256", 0)] {
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
