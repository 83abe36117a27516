import RCHBundle
import RCHCore
import RCHFleet
import RCHHost
import RCHJob
import RCHProtocol
import RCHStore

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Runs: an ordered plan of step jobs on one worker, persisted before anything executes, resumable and
/// cancellable (PLAN §15). The one entry point of `rch-xcode verify` and `rch-xcode run`.
///
/// Order: config (defaults < host < repo < flags) → probe → bundle (local) → plan (run and job ids) →
/// run lock → `run_plan.json` + `run_state` QUEUED → push → RUNNING → steps in plan order (a failed,
/// rejected or cancelled step stops the rest unless `continue_on_failure`; the rest are `skipped`) →
/// `run_summary.json` → terminal `run_state` → `run_index.json`. A failure of the trust checks (artifacts
/// or attestation) removes the whole run directory: nothing unverified stays in the artifact root.
public final class RunCoordinator {
    public let client: WorkerClient
    public let artifactRoot: String
    public var options: RunOptions
    /// How the worker was chosen (nil: named with `--worker`); written as `worker_selection.json`.
    public var selection: SelectionRecord?

    public init(client: WorkerClient, artifactRoot: String, options: RunOptions = RunOptions()) {
        self.client = client
        self.artifactRoot = artifactRoot
        self.options = options
    }

    public struct Result: Sendable {
        public var plan: RunPlan
        public var outcomes: [StepOutcome]
        public var status: String
        public var exitCode: Int32
        public var push: PushReport?
        public var directory: String
        public var resumed: Bool

        public var json: JSONValue {
            .obj([
                "run_id": .string(plan.runID), "status": .string(status), "exit_code": .int(Int64(exitCode)),
                "resumed": .bool(resumed),
                "directory": .string(directory), "push": push?.json ?? .null,
                "steps": .array(
                    outcomes.map { o in
                        .obj([
                            "index": .int(Int64(o.index)), "action": .string(o.action), "job_id": .string(o.jobID),
                            "status": .string(o.status.rawValue),
                            "exit_code": .int(Int64(o.exitCode)), "cached": .bool(o.cached),
                            "cached_from_job_id": o.cachedFromJobID.map { .string($0) } ?? .null,
                            "job_key": o.jobKey.map { .string($0.hex) } ?? .null,
                            "artifacts": o.artifacts.map { .string($0) } ?? .null, "message": .string(o.message),
                            "rekeyed": o.rekeyed.map { .string($0) } ?? .null,
                        ])
                    }),
            ])
        }
    }

    /// Plans `steps` (each an xcodebuild argv) for the repository at `root` and runs them.
    public func start(root: String, steps: [[String]]) throws -> Result {
        let context = try prepare(root: root)
        var planned: [RunPlan.Step] = []
        for (i, given) in steps.enumerated() {
            // `[destination] value` applies to a step whose arguments name none.
            var argv = given
            if !argv.contains("-destination"), let d = context.destination.value { argv += ["-destination", d] }
            let action = argv.first { $0 == "build" || $0 == "test" } ?? argv.first ?? "build"
            var rejected: String? = nil
            do { _ = try XcodebuildArgv.canonicalize(argv) } catch { rejected = "\(error)" }
            planned.append(
                RunPlan.Step(
                    index: i, action: action == "test" ? "test" : "build", jobID: Identifier.generate(), argv: argv,
                    rejected: rejected))
        }
        let plan = RunPlan(
            runID: Identifier.generate(), repoRoot: root, worker: client.worker.name, workerHost: client.worker.host,
            continueOnFailure: options.continueOnFailure, protocolVersion: client.protocolVersion ?? 0,
            artifactProfile: context.profile.rawValue, steps: planned)
        let run = RunDirectory(artifactRoot: artifactRoot, runID: plan.runID)
        guard let lock = try run.lock() else {
            throw RunError.notResumable("run \(plan.runID) is locked by another process")
        }
        try run.writePlan(plan)
        try run.writeState(.queued, current: nil)
        options.onPlanned?(plan)
        return try execute(plan, run: run, lock: lock, context: context, resumed: false)
    }

    /// Continues an interrupted run from its `run_plan.json` with the same job ids.
    public func resume(runID: String) throws -> Result {
        guard Identifier.isValid(runID, .runID) else {
            throw RunError.notResumable(IdentifierError(kind: .runID, value: runID).description)
        }
        let run = RunDirectory(artifactRoot: artifactRoot, runID: runID)
        let plan = try run.readPlan()
        guard let lock = try run.lock() else {
            throw RunError.notResumable(
                "run \(runID) is still being executed by another rch-xcode process (its .run.lock is held)")
        }
        if let s = run.readState(), s.state.isTerminal {
            throw RunError.notResumable("run \(runID) already ended (\(s.state.rawValue)); start a new run")
        }
        guard plan.worker == client.worker.name else {
            throw RunError.notResumable(
                "run \(runID) was planned on worker '\(plan.worker)'; a run never switches worker (resume with --worker \(plan.worker))"
            )
        }
        var opts = options
        opts.continueOnFailure = plan.continueOnFailure
        options = opts
        let context = try prepare(root: plan.repoRoot)
        try run.writeState(.running, current: nil, resumedAt: Timestamp.now())
        options.onPlanned?(plan)
        return try execute(plan, run: run, lock: lock, context: context, resumed: true)
    }

    /// The newest interrupted run of `root` on this worker (state not terminal, lock free), if any.
    public func interruptedRun(root: String) -> String? {
        guard let names = try? Directory.list(artifactRoot) else { return nil }
        var best: (String, String)? = nil
        for name in names where Identifier.isValid(name, .runID) {
            let run = RunDirectory(artifactRoot: artifactRoot, runID: name)
            guard let plan = try? run.readPlan(), plan.repoRoot == root, plan.worker == client.worker.name,
                let state = run.readState(), !state.state.isTerminal, !run.isLocked
            else { continue }
            if best == nil || plan.createdAt > best!.1 { best = (name, plan.createdAt) }
        }
        return best?.0
    }

    struct Context {
        var config: JSONObject
        var layers: [Config.Layer]
        var settings: RunSettings
        var profile: ArtifactProfile
        var bundleOptions: BundleOptions
        var destination: DestinationConfig
    }

    /// Config, timeouts, bundle options and the negotiated protocol.
    func prepare(root: String) throws -> Context {
        let layers = try Config.layers(repo: root, flags: options.configFlags)
        let (config, _) = Config.redact(Config.merge(layers))
        let settings = try RunSettings(config: config)
        try client.setConnectTimeout(seconds: settings.connectSeconds)
        try client.negotiate()
        let bundleOptions = try RepoBundleOptions.apply(config, to: options.bundleOptions)
        let profileName = config["artifacts"]?["profile"]?.stringValue ?? "minimal"
        guard let configured = ArtifactProfile(rawValue: profileName) else {
            throw ConfigValueError("[artifacts] profile must be minimal or rich")
        }
        return Context(
            config: config, layers: layers, settings: settings, profile: options.profile ?? configured,
            bundleOptions: bundleOptions,
            destination: try DestinationConfig(config: config))
    }

    func execute(_ plan: RunPlan, run: RunDirectory, lock: RunDirectory.Lock, context: Context, resumed: Bool) throws
        -> Result
    {
        let started = Timestamp.nowNanos()
        var opts = options
        opts.bundleOptions = context.bundleOptions
        var outcomes: [StepOutcome] = []
        var push: PushReport? = nil
        do {
            var pusher = Pusher(client: client)
            pusher.prefetchBase(root: plan.repoRoot)
            let bundle = try HostBundler(store: client.hostStore).bundle(
                root: plan.repoRoot, options: context.bundleOptions, compressed: false, whenChanged: pusher.baseNeeded)
            guard bundle.manifest.entries.count > 0 else {
                throw RepoRootError(
                    message:
                        "\(plan.repoRoot) has nothing to bundle (no files after exclusions); run from inside a repository"
                )
            }
            push = try pusher.push(bundle, root: plan.repoRoot, options: context.bundleOptions)
            var manifest = bundle.manifest
            manifest.runID = plan.runID
            _ = try DurableFile.write(
                manifest.canonicalBytes() + [10], to: run.path + "/source_manifest.json", replace: true)
            if let caps = client.capabilities {
                _ = try DurableFile.write(
                    caps.canonicalBytes + [10], to: run.path + "/capabilities.json", replace: true)
            }
            // The choice and the snapshot it was made with (a resumed run keeps its first record).
            if !resumed || access(run.path + "/worker_selection.json", F_OK) != 0 {
                let record = selection ?? .forced(client)
                _ = try DurableFile.write(
                    record.json(runID: plan.runID).canonicalBytes + [10], to: run.path + "/worker_selection.json",
                    replace: true)
            }
            // A run of several steps holds one slot from the first to the last (feature `lease`).
            let runnable = plan.steps.filter { $0.rejected == nil }.count
            let lease =
                options.reserveSlot && runnable > 1 && client.has("lease")
                ? RunLease(
                    client: client, runID: plan.runID, ttlSeconds: options.leaseTTLSeconds, renew: options.renewLease)
                : nil
            defer { lease?.release() }
            let executor = StepExecutor(
                client: client, options: opts, settings: context.settings, destination: context.destination,
                bundle: bundle, pusher: pusher, root: plan.repoRoot, config: (context.config, context.layers), run: run,
                lease: lease)
            if let lease { try lease.acquire(executor.waitingForSlot) }
            var stop = false
            for step in plan.steps {
                if stop || options.cancelRequested() {
                    outcomes.append(
                        StepOutcome(
                            index: step.index, action: step.action, jobID: step.jobID,
                            status: options.cancelRequested() ? .cancelled : .skipped, exitCode: 0))
                    continue
                }
                if let why = step.rejected {
                    var o = StepOutcome(
                        index: step.index, action: step.action, jobID: step.jobID, status: .rejected, exitCode: 10)
                    o.message = why
                    outcomes.append(o)
                    stop = !plan.continueOnFailure
                    continue
                }
                if resumed, let done = finishedStep(step, run: run) {
                    outcomes.append(done)
                    if done.status != .success { stop = !plan.continueOnFailure }
                    continue
                }
                try run.writeState(.running, current: step)
                let o: StepOutcome
                do {
                    o = try executor.execute(step, profile: context.profile, resuming: resumed)
                } catch is RunCancelled {
                    var c = StepOutcome(
                        index: step.index, action: step.action, jobID: step.jobID, status: .cancelled, exitCode: 80)
                    c.message = "cancelled while waiting for a slot"
                    o = c
                }
                outcomes.append(o)
                if o.status != .success { stop = !plan.continueOnFailure || o.status == .cancelled }
            }
        } catch let e as AttestationFailure {
            removeTree(run.path)
            throw e
        } catch let e as ArtifactIntegrityError {
            removeTree(run.path)
            throw e
        } catch {
            // Record what happened, then report the error itself.
            let code = (error as? LaneError)?.exitCode ?? FailureKind.executor.exitCode
            let current = plan.steps.first { s in !outcomes.contains { $0.index == s.index } }
            if let s = current {
                var o = StepOutcome(index: s.index, action: s.action, jobID: s.jobID, status: .failed, exitCode: code)
                o.message = "\(error)"
                outcomes.append(o)
            }
            for s in plan.steps where !outcomes.contains(where: { $0.index == s.index }) {
                outcomes.append(
                    StepOutcome(index: s.index, action: s.action, jobID: s.jobID, status: .skipped, exitCode: 0))
            }
            _ = try? run.writeSummary(outcomes, startedNanos: started)
            try? run.writeState(.failed, current: nil)
            try? run.writeIndex(plan)
            throw error
        }
        let (status, exit) = try run.writeSummary(outcomes, startedNanos: started)
        let final: RunStateValue = status == "success" ? .succeeded : status == "cancelled" ? .cancelled : .failed
        try run.writeState(final, current: nil)
        try run.writeIndex(plan)
        withExtendedLifetime(lock) {}
        return Result(
            plan: plan, outcomes: outcomes, status: status, exitCode: exit, push: push, directory: run.path,
            resumed: resumed)
    }

    /// A step whose verified artifacts are already in the run (resume): its outcome from its summary.
    func finishedStep(_ step: RunPlan.Step, run: RunDirectory) -> StepOutcome? {
        let dir = run.artifacts(step)
        guard access(dir + "/job_index.json", F_OK) == 0, ArtifactManifest.verify(dir).isEmpty,
            let s = try? JSONParser().parse(try DurableFile.read(dir + "/summary.json"))
        else { return nil }
        let status: StepOutcome.Status =
            switch s["status"]?.stringValue {
            case "success": .success
            case "cancelled": .cancelled
            default: .failed
            }
        var o = StepOutcome(
            index: step.index, action: step.action, jobID: step.jobID, status: status,
            exitCode: Int32(s["exit_code"]?.intValue ?? 40))
        o.summary = s
        o.artifacts = dir
        o.cachedFromJobID = s["cached_from_job_id"]?.stringValue
        o.cached = o.cachedFromJobID != nil
        o.message = "already finished before the resume"
        return o
    }
}
