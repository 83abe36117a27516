import RCHCore
import RCHStore

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// gc of the worker caches (``WorkerCaches``): a cache directory unused (its `<dir>.lock` mtime) for longer
/// than `[cache] max_age` (14d) goes; then, while all caches exceed `[cache] max_size` (20%), the least
/// recently used go. A cache in use is never touched: removal takes its lock without waiting (a busy one is
/// skipped), renames the directory to `caches/.rch-removing-*` (gone at once for every reader) and deletes it;
/// the lock file stays (a job waiting on it recreates the directory after it gets the lock).
public struct CacheRetention: Sendable {
    public var caches: WorkerCaches
    public var maxAgeSeconds: Int64 = 14 * 86_400
    public var maxBytes: UInt64?
    public var dryRun = false

    public init(caches: WorkerCaches) { self.caches = caches }

    public struct Entry: Sendable {
        /// Relative to `caches/`: `<namespace>/derived_data/shared/<toolchain_key>` …
        public var name: String
        public var lastUseNanos: Int64
        public var bytes: UInt64
    }

    public struct Report: Sendable {
        public var removed: [(name: String, reason: String)] = []
        public var bytesFreed: UInt64 = 0
        public var skipped: [String] = []

        public var json: JSONValue {
            .obj([
                "caches_removed": .array(
                    removed.map { .obj(["cache": .string($0.name), "reason": .string($0.reason)]) }),
                "cache_bytes_freed": .int(Int64(bytesFreed)), "caches_skipped": .array(skipped.map { .string($0) }),
            ])
        }
    }

    /// Every cache directory (what `stats` reports).
    public func survey() -> [Entry] {
        var out: [Entry] = []
        for ns in (try? Directory.list(caches.root)) ?? [] where !ns.hasPrefix(".") {
            for kind in ["derived_data/shared", "derived_data/per_job", "spm"] {
                let parent = caches.root + "/" + ns + "/" + kind
                for name in (try? Directory.list(parent)) ?? [] where !name.hasSuffix(".lock") {
                    var st = stat()
                    let used = stat(parent + "/" + name + ".lock", &st) == 0 ? StoreScan.mtimeNanos(st) : 0
                    out.append(
                        Entry(
                            name: ns + "/" + kind + "/" + name, lastUseNanos: used,
                            bytes: DiskUsage.of(parent + "/" + name)))
                }
            }
        }
        return out
    }

    public func run(now: Int64 = Timestamp.nowNanos()) -> Report {
        var report = Report()
        if !dryRun {  // what an interrupted removal left
            for name in (try? Directory.list(caches.root)) ?? [] where name.hasPrefix(".rch-removing-") {
                removeTree(caches.root + "/" + name)
            }
        }
        var all = survey().sorted { $0.lastUseNanos < $1.lastUseNanos }
        var total = all.reduce(UInt64(0)) { $0 + $1.bytes }
        let cutoff = now - maxAgeSeconds * 1_000_000_000
        var victims: [(Entry, String)] = []
        all.removeAll { e in
            guard e.lastUseNanos < cutoff else { return false }
            victims.append((e, "unused for more than \(maxAgeSeconds) s ([cache] max_age)"))
            total -= e.bytes
            return true
        }
        if let maxBytes {
            while total > maxBytes, let e = all.first {
                all.removeFirst()
                victims.append((e, "caches over \(maxBytes) bytes ([cache] max_size), least recently used"))
                total -= e.bytes
            }
        }
        for (e, reason) in victims {
            if dryRun || remove(e) {
                report.removed.append((e.name, reason))
                report.bytesFreed += e.bytes
            } else {
                report.skipped.append("\(e.name): in use")
            }
        }
        return report
    }

    /// Removes one cache directory if its lock is free; false when a job holds it.
    func remove(_ e: Entry) -> Bool {
        let dir = caches.root + "/" + e.name
        let fd = open(dir + ".lock", O_RDWR | O_CLOEXEC)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        guard flock(fd, LOCK_EX | LOCK_NB) == 0 else { return false }
        let doomed = caches.root + "/.rch-removing-" + String(UInt64.random(in: 0...UInt64.max), radix: 36)
        guard rename(dir, doomed) == 0 else { return false }
        removeTree(doomed)
        return true
    }
}
