#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation
import RCHCore

/// Host-side retention: run directories under the artifact root (`~/.local/share/rch/artifacts/xcode/<run_id>/`)
/// and bundles in the host store.
///
/// A run or bundle is evicted only if it is neither among the newest `keepRuns` nor younger than
/// `keepDays`. A run is *running* — and never evicted — while its `.run.lock` is flock-held by the host
/// process, or while its `run_state.json` says `QUEUED`/`RUNNING` and was written within the last 24 hours
/// (a crashed host's stale run becomes collectable after that). Every eviction is appended to
/// `<artifact root>/gc.log`.
public struct HostRetention: Sendable {
    public var artifactRoot: String
    public var store: LocalStore?
    public var keepRuns = 100
    public var keepDays = 30
    public var dryRun = false

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
            .obj(["removed": .array(removed.map { .string($0) }), "kept": .int(Int64(kept)),
                  "running": .array(running.map { .string($0) }), "bytes_freed": .int(Int64(bytesFreed))])
        }
    }

    public func run(now: Int64 = Timestamp.nowNanos()) throws -> Report {
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
        for (i, r) in runs.enumerated() {
            let dir = artifactRoot + "/" + r.name
            if isRunning(dir, now: now) { report.running.append(r.name); report.kept += 1; continue }
            if i < keepRuns || r.mtime >= cutoff { report.kept += 1; continue }
            report.bytesFreed += Self.size(dir)
            if !dryRun { removeTree(dir) }
            report.removed.append("run " + r.name)
        }
        // Host bundles (the manifest, the commit marker, goes first).
        if let store {
            var bundles: [(sha: String, mtime: Int64)] = []
            for name in (try? FileManagerLite.list(store.bundlesDirectory)) ?? [] where name.hasSuffix(".manifest.json") {
                let sha = String(name.dropLast(".manifest.json".count))
                var st = stat()
                guard SHA256Digest(hex: sha) != nil, lstat(store.bundlesDirectory + "/" + name, &st) == 0 else { continue }
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
        }
        if !dryRun && !report.removed.isEmpty {
            try? Syscalls.makeDirectories(artifactRoot)
            let line = report.removed.map { "\(Timestamp.now()) evicted \($0) (keep-runs \(keepRuns), keep-days \(keepDays))\n" }.joined()
            if let h = FileHandle(forWritingAtPath: artifactRoot + "/gc.log") ?? {
                _ = FileManager.default.createFile(atPath: artifactRoot + "/gc.log", contents: nil)
                return FileHandle(forWritingAtPath: artifactRoot + "/gc.log")
            }() {
                h.seekToEndOfFile()
                h.write(Data(line.utf8))
                try? h.close()
            }
        }
        return report
    }

    func isRunning(_ dir: String, now: Int64) -> Bool {
        let lock = open(dir + "/.run.lock", O_RDWR | O_CLOEXEC)
        if lock >= 0 {
            defer { close(lock) }
            if flock(lock, LOCK_EX | LOCK_NB) != 0 { return true }  // held by the running host process
            flock(lock, LOCK_UN)
        }
        guard let bytes = try? DurableFile.read(dir + "/run_state.json"), let v = try? JSONParser().parse(bytes),
              let state = v["state"]?.stringValue?.uppercased(), state == "RUNNING" || state == "QUEUED" else { return false }
        var st = stat()
        guard lstat(dir + "/run_state.json", &st) == 0 else { return false }
        return now - StoreScan.mtimeNanos(st) < 86_400 * 1_000_000_000
    }

    static func size(_ path: String) -> UInt64 {
        var st = stat()
        guard lstat(path, &st) == 0 else { return 0 }
        if (st.st_mode & S_IFMT) != S_IFDIR { return UInt64(st.st_blocks) * 512 }
        return ((try? FileManagerLite.list(path)) ?? []).reduce(UInt64(st.st_blocks) * 512) { $0 + size(path + "/" + $1) }
    }
}
