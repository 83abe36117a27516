import RCHCore
import RCHStore
import SystemPackage

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Bounded worker disk: finished job directories (`work/<job_id>/`: artifacts and the fetch archive) are
/// removed by age and size budget; job records (`jobs/<job_id>.json`) outlive them so `fetch` of a removed
/// job answers `ARTIFACTS_GONE`, and go after `recordRetentionSeconds`.
///
/// Rules: a job is a candidate only when its `job_state.json` is terminal and it has no active marker (never
/// QUEUED or RUNNING). Candidates older than `retentionSeconds` (by the time of their last state change) go;
/// then, while the finished jobs exceed `maxBytes`, the oldest go. A fetch holds `control/fetch.lock`
/// shared while it streams; removal takes it exclusively without waiting (a job being fetched is skipped),
/// renames the directory to `work/.rch-removing-<job_id>` (it disappears at once for every reader) and
/// then deletes it (a crash leaves residue that gc removes).
public struct JobRetention: Sendable {
    public var store: LocalStore
    public var retentionSeconds: Int64 = 86_400
    public var maxBytes: UInt64?
    public var recordRetentionSeconds: Int64 = 30 * 86_400
    public var dryRun = false

    public init(store: LocalStore) { self.store = store }

    public struct Job: Sendable {
        public var id: String
        public var finished: Bool
        public var lastChangeNanos: Int64
        public var bytes: UInt64
    }

    public struct Report: Sendable {
        public var removed: [(id: String, reason: String)] = []
        public var bytesFreed: UInt64 = 0
        public var recordsRemoved = 0
        public var skipped: [String] = []
        public var dryRun = false

        public var json: JSONValue {
            .obj([
                "dry_run": .bool(dryRun),
                "jobs_removed": .array(removed.map { .obj(["job_id": .string($0.id), "reason": .string($0.reason)]) }),
                "job_bytes_freed": .int(Int64(bytesFreed)), "job_records_removed": .int(Int64(recordsRemoved)),
                "skipped": .array(skipped.map { .string($0) }),
            ])
        }
    }

    var jobs: WorkerJobs { WorkerJobs(store: store) }

    /// Every job directory with its state and size (what `stats` reports).
    public func survey() -> [Job] {
        var out: [Job] = []
        for name in (try? Directory.list(jobs.root)) ?? [] where Identifier.isValid(name, .jobID) {
            var st = stat()
            let statePath = jobs.artifacts(name) + "/job_state.json"
            let state = jobs.readState(name)
            let changed = stat(statePath, &st) == 0 ? StoreScan.mtimeNanos(st) : 0
            let finished = (state?.state.isTerminal ?? false) && access(jobs.activeMarker(name), F_OK) != 0
            out.append(
                Job(id: name, finished: finished, lastChangeNanos: changed, bytes: DiskUsage.of(jobs.directory(name))))
        }
        return out
    }

    public func run(now: Int64 = Timestamp.nowNanos()) throws -> Report {
        var report = Report()
        report.dryRun = dryRun
        let all = survey()
        var finished = all.filter(\.finished).sorted { $0.lastChangeNanos < $1.lastChangeNanos }
        let cutoff = now - retentionSeconds * 1_000_000_000
        var victims: [(Job, String)] = []
        finished.removeAll { j in
            guard j.lastChangeNanos < cutoff else { return false }
            victims.append((j, "finished more than \(retentionSeconds) s ago ([jobs] retention)"))
            return true
        }
        if let maxBytes {
            var total = finished.reduce(0) { $0 + $1.bytes }
            for j in finished where total > maxBytes {
                victims.append((j, "oldest finished job; jobs over \(maxBytes) bytes ([jobs] max_size)"))
                total -= j.bytes
            }
        }
        for (j, reason) in victims {
            if dryRun || remove(j.id) {
                report.removed.append((j.id, reason))
                report.bytesFreed += j.bytes
            } else {
                report.skipped.append("\(j.id): being fetched or changed since planning")
            }
        }
        // Job records of jobs whose directory is gone, past their own retention.
        let recordCutoff = now - recordRetentionSeconds * 1_000_000_000
        for name in (try? Directory.list(store.jobsDirectory)) ?? [] where name.hasSuffix(".json") {
            let id = String(name.dropLast(5))
            var st = stat()
            guard Identifier.isValid(id, .jobID), !jobs.exists(id), stat(store.jobsDirectory + "/" + name, &st) == 0,
                StoreScan.mtimeNanos(st) < recordCutoff
            else { continue }
            if !dryRun { unlink(store.jobsDirectory + "/" + name) }
            report.recordsRemoved += 1
        }
        return report
    }

    /// Removes one finished job unless a fetch holds it or it became active again.
    func remove(_ id: String) -> Bool {
        let lockPath = jobs.control(id) + "/fetch.lock"
        let fd = open(lockPath, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        guard flock(fd, LOCK_EX | LOCK_NB) == 0, access(jobs.activeMarker(id), F_OK) != 0,
            jobs.readState(id)?.state.isTerminal == true
        else { return false }
        let doomed = jobs.root + "/.rch-removing-" + id
        guard rename(jobs.directory(id), doomed) == 0 else { return false }
        removeTree(doomed)
        return true
    }
}

/// A fetch's shared hold on a job directory (`control/fetch.lock`), released when the reply is sent.
public final class FetchHold: @unchecked Sendable {
    let fd: Int32
    init?(jobs: WorkerJobs, jobID: String) {
        let fd = open(jobs.control(jobID) + "/fetch.lock", O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard fd >= 0 else { return nil }
        guard flock(fd, LOCK_SH) == 0 else {
            close(fd)
            return nil
        }
        self.fd = fd
    }
    deinit { close(fd) }
}
