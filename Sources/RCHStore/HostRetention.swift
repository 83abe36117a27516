import Foundation
import RCHCore

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Host-side retention: run directories under the artifact root (`~/.local/share/rch/artifacts/xcode/<run_id>/`)
/// and bundles in the host store.
///
/// A run or bundle is evicted only if it is neither among the newest `keepRuns` nor younger than
/// `keepDays`; with `maxSize`, the oldest finished runs are then evicted until the runs fit (the newest
/// run always stays). A run is never evicted while its `.run.lock` is held (a host is executing it) or
/// while its `run_state.json` is not terminal (an interrupted run can still be resumed; remove it by
/// hand). Eviction holds the run's lock while deleting, and one gc at a time runs per artifact root
/// (`<artifact root>/.gc.lock`). Every eviction is appended to `<artifact root>/gc.log`.
public struct HostRetention: Sendable {
    public var artifactRoot: String
    public var store: LocalStore?
    public var keepRuns = 100
    public var keepDays = 30
    /// Largest total size of the run directories (nil: no cap).
    public var maxSize: UInt64?
    public var dryRun = false

    /// Age after which a temp file in the host's `bundles/` is crash residue.
    static let residueAgeNanos: Int64 = 3_600 * 1_000_000_000

    public init(artifactRoot: String, store: LocalStore?) {
        self.artifactRoot = artifactRoot
        self.store = store
    }

    /// `~/.local/share/rch/artifacts/xcode` (or under `$XDG_DATA_HOME`).
    public static var defaultArtifactRoot: String {
        UserDirectories.dataHome(ProcessInfo.processInfo.environment) + "/rch/artifacts/xcode"
    }

    public struct Report: Sendable {
        public var removed: [String] = []
        public var kept: Int = 0
        public var running: [String] = []
        public var bytesFreed: UInt64 = 0
        public var json: JSONValue {
            .obj([
                "removed": .array(removed.map { .string($0) }), "kept": .int(Int64(kept)),
                "running": .array(running.map { .string($0) }), "bytes_freed": .int(Int64(bytesFreed)),
            ])
        }
    }

    public func run(now: Int64 = Timestamp.nowNanos()) throws -> Report {
        // A dry run changes nothing (not even a lock file): it only reads.
        if dryRun { return try collect(now: now) }
        try Syscalls.makeDirectories(artifactRoot)
        let gcLock = open(artifactRoot + "/.gc.lock", O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard gcLock >= 0 else { throw StoreError.invalid("cannot open \(artifactRoot)/.gc.lock") }
        defer { close(gcLock) }
        guard flock(gcLock, LOCK_EX | LOCK_NB) == 0 else {
            throw StoreError.retry("another rch-xcode gc is running on \(artifactRoot)")
        }
        return try collect(now: now)
    }

    func collect(now: Int64) throws -> Report {
        var report = Report()
        let cutoff = now - Int64(keepDays) * 86_400 * 1_000_000_000
        // Runs.
        var runs: [(name: String, mtime: Int64)] = []
        for name in (try? FileManagerLite.list(artifactRoot)) ?? [] where Identifier.isValid(name, .runID) {
            var st = stat()
            guard lstat(artifactRoot + "/" + name, &st) == 0, (st.st_mode & S_IFMT) == S_IFDIR else { continue }
            runs.append((name, StoreScan.mtimeNanos(st)))
        }
        runs.sort { $0.mtime > $1.mtime }
        var kept: [(name: String, size: UInt64, evictable: Bool)] = []
        for (i, r) in runs.enumerated() {
            let dir = artifactRoot + "/" + r.name
            if isRunning(dir) {
                report.running.append(r.name)
                report.kept += 1
                kept.append((r.name, Self.size(dir), false))
                continue
            }
            if i < keepRuns || r.mtime >= cutoff {
                report.kept += 1
                kept.append((r.name, Self.size(dir), i > 0))
                continue
            }
            evict(r.name, into: &report)
        }
        // The size cap: the oldest finished runs go first (never the newest, never a running one).
        if let maxSize {
            var total = kept.reduce(0) { $0 + $1.size }
            for k in kept.reversed() where total > maxSize && k.evictable {
                if evict(k.name, into: &report) {
                    total -= k.size
                    report.kept -= 1
                }
            }
        }
        // Host bundles (the manifest, the commit marker, goes first).
        if let store {
            var bundles: [(sha: String, mtime: Int64)] = []
            for name in (try? FileManagerLite.list(store.bundlesDirectory)) ?? [] where name.hasSuffix(".manifest.json")
            {
                let sha = String(name.dropLast(".manifest.json".count))
                var st = stat()
                guard SHA256Digest(hex: sha) != nil, lstat(store.bundlesDirectory + "/" + name, &st) == 0 else {
                    continue
                }
                bundles.append((sha, StoreScan.mtimeNanos(st)))
            }
            bundles.sort { $0.mtime > $1.mtime }
            for (i, b) in bundles.enumerated() where i >= keepRuns && b.mtime < cutoff {
                let base = store.bundlesDirectory + "/" + b.sha
                report.bytesFreed += Self.size(base + ".tar.zst")
                if !dryRun {
                    unlink(base + ".manifest.json")
                    unlink(base + ".tar.zst")
                }
                report.removed.append("bundle " + b.sha)
            }
            // Temp residue (a bundle or a push's scratch file whose process died): removed once an hour old,
            // so a push still sending one is never touched.
            for name in (try? FileManagerLite.list(store.bundlesDirectory)) ?? [] where name.hasPrefix(TempFile.prefix)
            {
                let path = store.bundlesDirectory + "/" + name
                var st = stat()
                guard lstat(path, &st) == 0, StoreScan.mtimeNanos(st) < now - Self.residueAgeNanos else { continue }
                report.bytesFreed += Self.size(path)
                if !dryRun { unlink(path) }
                report.removed.append("temp bundle " + name)
            }
        }
        if !dryRun && !report.removed.isEmpty {
            try? Syscalls.makeDirectories(artifactRoot)
            let line = report.removed.map {
                "\(Timestamp.now()) evicted \($0) (keep-runs \(keepRuns), keep-days \(keepDays))\n"
            }.joined()
            if let h = FileHandle(forWritingAtPath: artifactRoot + "/gc.log")
                ?? {
                    _ = FileManager.default.createFile(atPath: artifactRoot + "/gc.log", contents: nil)
                    return FileHandle(forWritingAtPath: artifactRoot + "/gc.log")
                }()
            {
                h.seekToEndOfFile()
                h.write(Data(line.utf8))
                try? h.close()
            }
        }
        return report
    }

    /// Removes one run directory while holding its lock; false if a host took it meanwhile.
    @discardableResult
    func evict(_ name: String, into report: inout Report) -> Bool {
        let dir = artifactRoot + "/" + name
        // Held while deleting, so a host cannot start resuming the run meanwhile (a dry run creates nothing:
        // without a lock file no host holds the run).
        let lock = open(dir + "/.run.lock", dryRun ? O_RDWR | O_CLOEXEC : O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        defer { if lock >= 0 { close(lock) } }
        guard lock < 0 || flock(lock, LOCK_EX | LOCK_NB) == 0, !isUnfinished(dir) else {
            report.running.append(name)
            return false
        }
        report.bytesFreed += Self.size(dir)
        if !dryRun { removeTree(dir) }
        report.removed.append("run " + name)
        return true
    }

    /// Held lock (a host executes the run) or a state that is not terminal (resumable).
    func isRunning(_ dir: String) -> Bool {
        let lock = open(dir + "/.run.lock", O_RDWR | O_CLOEXEC)
        if lock >= 0 {
            defer { close(lock) }
            if flock(lock, LOCK_EX | LOCK_NB) != 0 { return true }  // held by the running host process
            flock(lock, LOCK_UN)
        }
        return isUnfinished(dir)
    }

    func isUnfinished(_ dir: String) -> Bool {
        guard let bytes = try? DurableFile.read(dir + "/run_state.json"), let v = try? JSONParser().parse(bytes),
            let state = v["state"]?.stringValue?.uppercased()
        else { return false }
        return state == "RUNNING" || state == "QUEUED"
    }

    static func size(_ path: String) -> UInt64 { DiskUsage.of(path) }
}

/// Disk usage of a file or directory tree (`st_blocks` × 512, symlinks not followed), like `du -s`.
public enum DiskUsage {
    public static func of(_ path: String) -> UInt64 {
        var st = stat()
        guard lstat(path, &st) == 0 else { return 0 }
        if (st.st_mode & S_IFMT) != S_IFDIR { return UInt64(st.st_blocks) * 512 }
        return ((try? FileManagerLite.list(path)) ?? []).reduce(UInt64(st.st_blocks) * 512) { $0 + of(path + "/" + $1) }
    }
}
