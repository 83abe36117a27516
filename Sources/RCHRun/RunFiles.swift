import RCHCore

/// The run-scoped files under `<artifact root>/<run_id>/` (all written atomically, RFC 8785 + newline):
///
/// | file | written | content |
/// | --- | --- | --- |
/// | `run_plan.json` | once, before any step runs | steps (index, action, job_id, argv, rejected), worker, options |
/// | `run_state.json` | at every transition | QUEUED → RUNNING → SUCCEEDED / FAILED / CANCELLED, `current_step`, `seq` (+1 each write) |
/// | `run_summary.json` | at the end | aggregated status and exit code, step counts, duration |
/// | `run_index.json` | last | pointers to the run files and each step's directory |
///
/// Each step lives in `steps/<index>-<action>/`: `job_key_inputs.json` and `effective_config.json` (host
/// side, written before submit) and `artifacts/` (the fetched, verified job directory).
/// Invariant: a run whose `run_state` is not terminal and whose `.run.lock` is free was interrupted and may
/// be resumed from `run_plan.json` with the same job ids.
public struct RunPlan: Sendable, Equatable {
    public static let schemaID = "rch-xcode/run_plan@1"

    public struct Step: Sendable, Equatable {
        public var index: Int
        public var action: String
        public var jobID: String
        public var argv: [String]
        /// Why the classifier refused this step's argv (the step is recorded, never submitted).
        public var rejected: String?

        public init(index: Int, action: String, jobID: String, argv: [String], rejected: String? = nil) {
            self.index = index
            self.action = action
            self.jobID = jobID
            self.argv = argv
            self.rejected = rejected
        }

        public var directoryName: String { "\(index)-\(action)" }
    }

    public var runID: String
    public var createdAt: String
    public var repoRoot: String
    public var worker: String
    public var workerHost: String?
    public var continueOnFailure: Bool
    public var protocolVersion: Int
    public var artifactProfile: String
    public var steps: [Step]

    public init(
        runID: String, createdAt: String = Timestamp.now(), repoRoot: String, worker: String, workerHost: String?,
        continueOnFailure: Bool, protocolVersion: Int, artifactProfile: String, steps: [Step]
    ) {
        self.runID = runID
        self.createdAt = createdAt
        self.repoRoot = repoRoot
        self.worker = worker
        self.workerHost = workerHost
        self.continueOnFailure = continueOnFailure
        self.protocolVersion = protocolVersion
        self.artifactProfile = artifactProfile
        self.steps = steps
    }

    public var json: JSONValue {
        .obj([
            "schema_version": .int(1), "schema_id": .string(Self.schemaID), "created_at": .string(createdAt),
            "run_id": .string(runID), "repo_root": .string(repoRoot), "selected_worker": .string(worker),
            "selected_worker_host": workerHost.map { .string($0) } ?? .null,
            "continue_on_failure": .bool(continueOnFailure),
            "protocol_version": .int(Int64(protocolVersion)), "artifact_profile": .string(artifactProfile),
            "steps": .array(
                steps.map { s in
                    .obj([
                        "index": .int(Int64(s.index)), "action": .string(s.action), "job_id": .string(s.jobID),
                        "argv": .array(s.argv.map { .string($0) }), "rejected": .bool(s.rejected != nil),
                        "reject_reason": s.rejected.map { .string($0) } ?? .null,
                    ])
                }),
        ])
    }

    /// Reads a plan this host wrote (for resume); anything else is refused.
    public init(json v: JSONValue) throws {
        func bad(_ m: String) -> RunError { .corrupt("run_plan.json: \(m)") }
        guard let o = v.objectValue, o["schema_id"]?.stringValue == Self.schemaID, o["schema_version"] == .int(1) else {
            throw bad("not a \(Self.schemaID) document")
        }
        guard let run = o["run_id"]?.stringValue, Identifier.isValid(run, .runID),
            let created = o["created_at"]?.stringValue,
            let root = o["repo_root"]?.stringValue, let worker = o["selected_worker"]?.stringValue,
            let cont = o["continue_on_failure"]?.boolValue, let pv = o["protocol_version"]?.intValue,
            let profile = o["artifact_profile"]?.stringValue, let items = o["steps"]?.arrayValue, !items.isEmpty
        else { throw bad("missing or mistyped members") }
        var steps: [Step] = []
        for (i, item) in items.enumerated() {
            guard let index = item["index"]?.intValue, index == Int64(i), let action = item["action"]?.stringValue,
                let job = item["job_id"]?.stringValue, Identifier.isValid(job, .jobID),
                let argv = item["argv"]?.arrayValue,
                let rejected = item["rejected"]?.boolValue
            else { throw bad("step \(i) is malformed") }
            let args = argv.compactMap(\.stringValue)
            guard args.count == argv.count else { throw bad("step \(i) argv must hold strings") }
            steps.append(
                Step(
                    index: i, action: action, jobID: job, argv: args,
                    rejected: rejected ? (item["reject_reason"]?.stringValue ?? "rejected") : nil))
        }
        self.init(
            runID: run, createdAt: created, repoRoot: root, worker: worker,
            workerHost: o["selected_worker_host"]?.stringValue,
            continueOnFailure: cont, protocolVersion: Int(pv), artifactProfile: profile, steps: steps)
    }
}

/// Run lifecycle states (`run_state.json` `state`).
public enum RunStateValue: String, Sendable {
    case queued = "QUEUED", running = "RUNNING", succeeded = "SUCCEEDED", failed = "FAILED", cancelled = "CANCELLED"
    public var isTerminal: Bool { self == .succeeded || self == .failed || self == .cancelled }
}

/// The outcome of one step, as the summary aggregates it.
public struct StepOutcome: Sendable {
    public enum Status: String, Sendable { case success, failed, cancelled, rejected, skipped }
    public var index: Int
    public var action: String
    public var jobID: String
    public var status: Status
    public var exitCode: Int32
    public var cached: Bool = false
    public var cachedFromJobID: String?
    public var jobKey: SHA256Digest?
    public var artifacts: String?
    public var summary: JSONValue = .null
    public var message: String = ""
    public var rekeyed: String?
    public var retriedAfterSourceMissing = false

    public init(index: Int, action: String, jobID: String, status: Status, exitCode: Int32) {
        self.index = index
        self.action = action
        self.jobID = jobID
        self.status = status
        self.exitCode = exitCode
    }
}

/// The run's aggregate (the spec's rule): any rejected step → rejected, exit 10; else any cancelled →
/// cancelled, 80; else any failed → failed, the first failing step's exit code; else success, 0.
public enum RunAggregate {
    public static func of(_ steps: [StepOutcome]) -> (status: String, exitCode: Int32) {
        if steps.contains(where: { $0.status == .rejected }) {
            return ("rejected", FailureKind.classifierRejected.exitCode)
        }
        if steps.contains(where: { $0.status == .cancelled }) { return ("cancelled", FailureKind.cancelled.exitCode) }
        if let f = steps.first(where: { $0.status == .failed }) { return ("failed", f.exitCode) }
        return ("success", 0)
    }
}

/// Run-level failures of the host (resume and run-file problems).
public enum RunError: LaneError, Equatable {
    case corrupt(String)
    case notResumable(String)
    case busy(String)

    public var failureKind: FailureKind {
        switch self {
        case .corrupt, .notResumable: .executor
        case .busy: .workerBusy
        }
    }

    public var failureSubkind: String? {
        switch self {
        case .corrupt: "RUN_FILES"
        case .notResumable: "NOT_RESUMABLE"
        case .busy: "QUEUE_TIMEOUT"
        }
    }

    public var description: String {
        switch self {
        case .corrupt(let m): "the run's files are damaged: \(m)"
        case .notResumable(let m): m
        case .busy(let m): m
        }
    }
}
