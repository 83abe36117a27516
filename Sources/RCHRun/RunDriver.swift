import RCHBundle
import RCHCore
import RCHHost
import RCHStore

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// One remote job end to end — a run of one step (`rch-xcode run`): the same plan, files, waiting,
/// timeouts, cancellation and verification as a multi-step run (see ``RunCoordinator``).
public struct RunDriver {
    public var client: WorkerClient
    public var artifactRoot: String
    public var bundleOptions = BundleOptions()
    public var profile: ArtifactProfile?
    public var fetch = true
    /// Receives log text as it arrives (nil: not followed).
    public var onLog: ((String) -> Void)?
    public var onNotice: ((String) -> Void)?
    public var onWaiting: ((String) -> Void)?
    public var onPlanned: ((RunPlan) -> Void)?
    public var cancelRequested: () -> Bool = { false }
    public var configFlags = JSONObject()
    public var pollMillis = 200
    /// Runs between push and submit (tests use it to race the worker's gc).
    public var beforeSubmit: (() throws -> Void)?
    /// Runs before the fetch with the job's id (tests use it to tamper with the worker's copy).
    public var beforeFetch: ((String) throws -> Void)?

    public init(client: WorkerClient, artifactRoot: String) {
        self.client = client
        self.artifactRoot = artifactRoot
    }

    public struct Outcome: Sendable {
        public var runID: String
        public var jobID: String
        public var jobKey: SHA256Digest
        public var push: PushReport
        public var cached: Bool
        public var cachedFromJobID: String?
        public var summary: JSONValue
        public var exitCode: Int32
        public var artifacts: String?
        public var retriedAfterSourceMissing: Bool
        /// Why the job was re-keyed after the worker refused its first key (nil if it was not).
        public var rekeyed: String?
        public var run: RunCoordinator.Result

        public var json: JSONValue {
            .obj([
                "run_id": .string(runID), "job_id": .string(jobID), "job_key": .string(jobKey.hex), "push": push.json,
                "cached": .bool(cached), "cached_from_job_id": cachedFromJobID.map { .string($0) } ?? .null,
                "summary": summary,
                "exit_code": .int(Int64(exitCode)), "artifacts": artifacts.map { .string($0) } ?? .null,
                "source_missing_retry": .bool(retriedAfterSourceMissing),
                "rekeyed": rekeyed.map { .string($0) } ?? .null,
                "run_directory": .string(run.directory),
            ])
        }
    }

    public var options: RunOptions {
        var o = RunOptions()
        o.profile = profile
        o.fetch = fetch
        o.pollMillis = pollMillis
        o.bundleOptions = bundleOptions
        o.configFlags = configFlags
        o.cancelRequested = cancelRequested
        o.onLog = onLog
        o.onNotice = onNotice
        o.onWaiting = onWaiting
        o.onPlanned = onPlanned
        o.beforeSubmit = beforeSubmit
        o.beforeFetch = beforeFetch
        return o
    }

    public func run(root: String, argv: [String]) throws -> Outcome {
        let r = try RunCoordinator(client: client, artifactRoot: artifactRoot, options: options).start(
            root: root, steps: [argv])
        let step = r.outcomes[0]
        if step.status == .rejected { throw RunStepRejected(message: step.message) }
        return Outcome(
            runID: r.plan.runID, jobID: step.jobID, jobKey: step.jobKey ?? .empty, push: r.push!, cached: step.cached,
            cachedFromJobID: step.cachedFromJobID, summary: step.summary, exitCode: r.exitCode,
            artifacts: step.artifacts,
            retriedAfterSourceMissing: step.retriedAfterSourceMissing, rekeyed: step.rekeyed, run: r)
    }

    /// Follows a job until it is complete (status polling; `tail` when a log sink is set).
    public func waitForEnd(_ jobID: String, cached: Bool) throws -> JSONObject {
        while true {
            let s = try client.status(jobID)
            if s["complete"]?.boolValue == true { return s }
            usleep(UInt32(pollMillis) * 1000)
        }
    }
}

/// The argv of a one-step run was refused by the classifier (exit 10).
public struct RunStepRejected: LaneError {
    public var message: String
    public var failureKind: FailureKind { .classifierRejected }
    public var failureSubkind: String? { "REJECTED" }
    public var description: String { message }
}
