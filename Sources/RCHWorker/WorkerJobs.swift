import RCHCore
import RCHStore
import SystemPackage

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// The lifecycle states of a job (`job_state.json` `state`).
public enum JobState: String, Sendable {
    case queued = "QUEUED", running = "RUNNING", succeeded = "SUCCEEDED", failed = "FAILED", cancelled = "CANCELLED"
    public var isTerminal: Bool { self == .succeeded || self == .failed || self == .cancelled }
}

/// Where a worker keeps its jobs, under the store root.
///
/// Layout (store-layout.md §Jobs):
/// ```
/// work/<job_id>/artifacts/        the job artifact directory; job_index.json (written last) = complete
/// work/<job_id>/src/              the isolated source checkout (removed when the run ends)
/// work/<job_id>/control/job.json  the submitted JobSpec (canonical bytes) + worker-side submit facts
/// work/<job_id>/control/runner.pid, cancel, runner.log
/// work/<job_id>/fetch.tar.zst     the fetch stream, built once on first fetch (outside artifacts/)
/// work/active/<job_id>            present while the job is queued or running (the concurrency count)
/// ```
/// Invariants: a job directory is created exactly once per `job_id` (mkdir is the claim); state changes
/// are atomic replaces of `artifacts/job_state.json`; a terminal state is never changed again.
public struct WorkerJobs: Sendable {
    public let store: LocalStore
    public init(store: LocalStore) { self.store = store }

    public var root: String { store.root + "/work" }
    public func directory(_ jobID: String) -> String { root + "/" + jobID }
    public func artifacts(_ jobID: String) -> String { directory(jobID) + "/artifacts" }
    public func control(_ jobID: String) -> String { directory(jobID) + "/control" }
    public func source(_ jobID: String) -> String { directory(jobID) + "/src" }
    public func activeMarker(_ jobID: String) -> String { root + "/active/" + jobID }
    public func cancelMarker(_ jobID: String) -> String { control(jobID) + "/cancel" }
    public func exists(_ jobID: String) -> Bool { access(directory(jobID), F_OK) == 0 }

    /// Creates the job directory; false if the job already exists.
    public func create(_ jobID: String) throws -> Bool {
        try Syscalls.makeDirectories(root + "/active")
        guard mkdir(directory(jobID), 0o755) == 0 else {
            if errno == EEXIST { return false }
            throw SystemError("mkdir", path: directory(jobID), errno: Errno(rawValue: errno))
        }
        try Syscalls.makeDirectories(control(jobID))
        return true
    }

    // MARK: state

    public struct StateRecord: Sendable {
        public var state: JobState
        public var runID: String
        public var jobKey: String
        public var createdAt: String
        public var updatedAt: String
        public var seq: Int64
    }

    public func readState(_ jobID: String) -> StateRecord? {
        guard let bytes = try? DurableFile.read(artifacts(jobID) + "/job_state.json"),
            let v = try? JSONParser().parse(bytes),
            let s = v["state"]?.stringValue.flatMap(JobState.init(rawValue:))
        else { return nil }
        return StateRecord(
            state: s, runID: v["run_id"]?.stringValue ?? "", jobKey: v["job_key"]?.stringValue ?? "",
            createdAt: v["created_at"]?.stringValue ?? "", updatedAt: v["updated_at"]?.stringValue ?? "",
            seq: v["seq"]?.intValue ?? 0)
    }

    /// Writes `job_state.json` (atomic replace). Refuses to leave a terminal state.
    public func writeState(_ jobID: String, runID: String, jobKey: String, _ state: JobState) throws {
        let previous = readState(jobID)
        if let p = previous, p.state.isTerminal { return }
        let now = Timestamp.now()
        let doc = JSONValue.obj([
            "schema_version": .int(1), "schema_id": .string("rch-xcode/job_state@1"), "run_id": .string(runID),
            "job_id": .string(jobID),
            "job_key": .string(jobKey), "state": .string(state.rawValue),
            "created_at": .string(previous?.createdAt ?? now),
            "updated_at": .string(now), "seq": .int((previous?.seq ?? 0) + 1),
        ])
        try Syscalls.makeDirectories(artifacts(jobID))
        _ = try DurableFile.write(doc.canonicalBytes, to: artifacts(jobID) + "/job_state.json", replace: true)
    }

    // MARK: runner liveness and concurrency

    public func runnerPID(_ jobID: String) -> pid_t? {
        guard let b = try? DurableFile.read(control(jobID) + "/runner.pid"),
            let n = Int32(String(decoding: b, as: UTF8.self))
        else { return nil }
        return n
    }

    static func alive(_ pid: pid_t) -> Bool { kill(pid, 0) == 0 || errno == EPERM }

    /// Jobs counted against `max_concurrent_jobs`: active markers whose runner is alive or that were
    /// created in the last minute (a runner that is still starting). Stale markers are removed.
    /// Markers that name a lease in `ignoringLeases` are not counted (their reservation counts instead).
    public func activeCount(now: Int64 = Timestamp.nowNanos(), ignoringLeases: Set<String> = []) -> Int {
        let dir = root + "/active"
        guard let names = try? Directory.list(dir) else { return 0 }
        var n = 0
        for name in names where Identifier.isValid(name, .jobID) {
            if !ignoringLeases.isEmpty, let lease = try? DurableFile.read(dir + "/" + name), !lease.isEmpty,
                ignoringLeases.contains(String(decoding: lease, as: UTF8.self))
            {
                continue
            }
            var st = stat()
            guard stat(dir + "/" + name, &st) == 0 else { continue }
            let age = now - StoreScan.mtimeNanos(st)
            if let pid = runnerPID(name), Self.alive(pid) {
                n += 1
                continue
            }
            if age < 60_000_000_000 && readState(name).map({ !$0.state.isTerminal }) ?? true {
                n += 1
                continue
            }
            unlink(dir + "/" + name)
        }
        return n
    }

    /// The job's state, repairing a job whose runner is gone: a RUNNING or QUEUED job whose runner process
    /// died (or, QUEUED, never wrote its pid within a minute) is committed as FAILED / `RUNNER_LOST` (it is
    /// not re-executed: the host sees a failed step and may run it again as a new job).
    public func currentState(_ jobID: String, config: WorkerConfig, now: Int64 = Timestamp.nowNanos()) -> StateRecord? {
        guard let s = readState(jobID) else { return nil }
        guard !s.state.isTerminal, runnerLost(jobID, s, now: now) else { return s }
        // Re-read: the runner may have finished between the two reads.
        guard let again = readState(jobID), !again.state.isTerminal else { return readState(jobID) }
        JobRunner(store: store, config: config).abandon(jobID: jobID, record: again)
        return readState(jobID)
    }

    func runnerLost(_ jobID: String, _ s: StateRecord, now: Int64) -> Bool {
        if let pid = runnerPID(jobID) { return !Self.alive(pid) }
        // No pid yet: only a runner that never started within a minute counts as lost.
        var st = stat()
        guard stat(control(jobID), &st) == 0 else { return false }
        return now - StoreScan.mtimeNanos(st) > 60_000_000_000
    }
}
