import RCHCore
import SystemPackage

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// One run's directory and its files (see ``RunPlan`` for the layout), and the run lock.
///
/// Lock rule: the host process executing a run holds an exclusive `flock` on `<run>/.run.lock` for its
/// whole life; retention (`rch-xcode gc`) and auto-resume treat a run whose lock can be taken and whose
/// state is not terminal as interrupted, and never remove or resume a run whose lock is held.
public struct RunDirectory: Sendable {
    public let path: String
    public let runID: String

    public init(artifactRoot: String, runID: String) {
        self.runID = runID
        path = artifactRoot + "/" + runID
    }

    public func stepDirectory(_ s: RunPlan.Step) -> String { path + "/steps/" + s.directoryName }
    public func artifacts(_ s: RunPlan.Step) -> String { stepDirectory(s) + "/artifacts" }

    func write(_ name: String, _ v: JSONValue) throws {
        try Syscalls.makeDirectories(path)
        _ = try DurableFile.write(v.canonicalBytes + [10], to: path + "/" + name, replace: true)
    }

    public func writePlan(_ p: RunPlan) throws { try write("run_plan.json", p.json) }

    public func readPlan() throws -> RunPlan {
        let bytes: [UInt8]
        do { bytes = try DurableFile.read(path + "/run_plan.json") } catch {
            throw RunError.notResumable("run \(runID) has no run_plan.json under \(path); nothing to resume")
        }
        do { return try RunPlan(json: try JSONParser().parse(bytes)) } catch let e as RunError { throw e } catch {
            throw RunError.corrupt("run_plan.json does not parse: \(error)")
        }
    }

    public struct State: Sendable {
        public var state: RunStateValue
        public var createdAt: String
        public var seq: Int64
        public var resumedAt: String?
    }

    public func readState() -> State? {
        guard let v = try? JSONParser().parse(DurableFile.read(path + "/run_state.json")),
            let s = v["state"]?.stringValue.flatMap(RunStateValue.init(rawValue:)),
            let created = v["created_at"]?.stringValue,
            let seq = v["seq"]?.intValue
        else { return nil }
        return State(state: s, createdAt: created, seq: seq, resumedAt: v["resumed_at"]?.stringValue)
    }

    /// Writes `run_state.json` (seq + 1; created_at kept; a terminal state is never left).
    public func writeState(_ state: RunStateValue, current: RunPlan.Step?, resumedAt: String? = nil) throws {
        let previous = readState()
        if let p = previous, p.state.isTerminal, state != p.state { return }
        let now = Timestamp.now()
        try write(
            "run_state.json",
            .obj([
                "schema_version": .int(1), "schema_id": .string("rch-xcode/run_state@1"), "run_id": .string(runID),
                "state": .string(state.rawValue), "created_at": .string(previous?.createdAt ?? now),
                "updated_at": .string(now),
                "seq": .int((previous?.seq ?? 0) + 1),
                "current_step": current.map {
                    .obj(["index": .int(Int64($0.index)), "job_id": .string($0.jobID), "action": .string($0.action)])
                } ?? .null,
                "resumed_at": (resumedAt ?? previous?.resumedAt).map { .string($0) } ?? .null,
            ]))
    }

    public func writeSummary(_ steps: [StepOutcome], startedNanos: Int64) throws -> (status: String, exitCode: Int32) {
        let (status, exit) = RunAggregate.of(steps)
        func count(_ s: StepOutcome.Status) -> JSONValue { .int(Int64(steps.filter { $0.status == s }.count)) }
        let human = steps.map { "\($0.action): \($0.status.rawValue)\($0.cached ? " (cached)" : "")" }.joined(
            separator: ", ")
        try write(
            "run_summary.json",
            .obj([
                "schema_version": .int(1), "schema_id": .string("rch-xcode/run_summary@1"),
                "created_at": .string(Timestamp.now()),
                "run_id": .string(runID), "status": .string(status), "exit_code": .int(Int64(exit)),
                "step_count": .int(Int64(steps.count)),
                "steps_succeeded": count(.success), "steps_failed": count(.failed),
                "steps_cancelled": count(.cancelled),
                "steps_skipped": count(.skipped), "steps_rejected": count(.rejected),
                "duration_ms": .int(max(0, (Timestamp.nowNanos() - startedNanos) / 1_000_000)),
                "human_summary": .string(human),
                "steps": .array(
                    steps.map { s in
                        .obj([
                            "index": .int(Int64(s.index)), "action": .string(s.action), "job_id": .string(s.jobID),
                            "status": .string(s.status.rawValue),
                            "exit_code": .int(Int64(s.exitCode)), "cached": .bool(s.cached),
                        ])
                    }),
            ]))
        return (status, exit)
    }

    public func writeIndex(_ plan: RunPlan) throws {
        var pointers = JSONObject()
        for name in ["run_plan", "run_state", "run_summary", "source_manifest", "capabilities", "worker_selection"]
        where access(path + "/\(name).json", F_OK) == 0 {
            pointers[name] = .string(name + ".json")
        }
        try write(
            "run_index.json",
            .obj([
                "schema_version": .int(1), "schema_id": .string("rch-xcode/run_index@1"),
                "created_at": .string(Timestamp.now()),
                "run_id": .string(runID), "pointers": .object(pointers),
                "steps": .array(
                    plan.steps.map { s in
                        let index = "steps/" + s.directoryName + "/artifacts/job_index.json"
                        return .obj([
                            "index": .int(Int64(s.index)), "action": .string(s.action), "job_id": .string(s.jobID),
                            "job_index_path": access(path + "/" + index, F_OK) == 0 ? .string(index) : .null,
                        ])
                    }),
            ]))
    }

    // MARK: lock

    /// Holds `<run>/.run.lock` exclusively until released (or the process ends).
    public final class Lock: @unchecked Sendable {
        let fd: Int32
        init(fd: Int32) { self.fd = fd }
        deinit { close(fd) }
    }

    /// Takes the run lock; nil if another process holds it.
    public func lock() throws -> Lock? {
        try Syscalls.makeDirectories(path)
        let fd = open(path + "/.run.lock", O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw SystemError("open", path: path + "/.run.lock", errno: Errno(rawValue: errno)) }
        if flock(fd, LOCK_EX | LOCK_NB) != 0 {
            close(fd)
            return nil
        }
        return Lock(fd: fd)
    }

    /// Whether another process holds the run lock (without taking it for longer than the check).
    public var isLocked: Bool {
        let fd = open(path + "/.run.lock", O_RDWR | O_CLOEXEC)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        return flock(fd, LOCK_EX | LOCK_NB) != 0
    }
}
