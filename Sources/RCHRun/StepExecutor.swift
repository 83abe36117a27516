import RCHAttestation
import RCHBundle
import RCHCore
import RCHHost
import RCHJob
import RCHProtocol
import RCHStore

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Runs one planned step on the worker: inputs → submit → follow → fetch and verify.
///
/// Rules:
/// - Submit: `SOURCE_MISSING` → the whole bundle is uploaded again and the submit retried once;
///   `WORKER_INCOMPATIBLE`/`TOOLCHAIN_CHANGED` → re-probe, rebuild `job_key_inputs`, resubmit once under the
///   new key — except when resuming (the planned inputs are kept and the refusal ends the run);
///   `BUSY` → wait and retry (the worker's `retry_after_seconds`, at least 1 s, at most 30 s) until
///   `[timeouts] queue_seconds`, then `WORKER_BUSY` (exit 90).
/// - Follow: `tail` (else `status` polling); no new log bytes for `idle_log_seconds`, or
///   `overall_seconds` since the submit → the job is cancelled on the worker and the step fails with
///   EXECUTOR / `TIMEOUT_IDLE` or `TIMEOUT_OVERALL` (exit 40); a cancel request (signal) → the job is
///   cancelled on the worker (bounded wait) and the step is `cancelled` (exit 80).
/// - Fetch: into `steps/<index>-<action>/artifacts`, verified (manifest and attestation); the step's
///   outcome comes from the fetched `summary.json`.
struct StepExecutor {
    let client: WorkerClient
    let options: RunOptions
    let settings: RunSettings
    let destination: DestinationConfig
    let bundle: BundleReport
    let pusher: Pusher
    let root: String
    let config: (merged: JSONObject, layers: [Config.Layer])
    let run: RunDirectory
    let lease: RunLease?

    func execute(_ step: RunPlan.Step, profile: ArtifactProfile, resuming: Bool) throws -> StepOutcome {
        let dir = run.stepDirectory(step)
        try Syscalls.makeDirectories(dir)
        var inputs = try plannedInputs(step, dir: dir, resuming: resuming)
        func spec() throws -> JobSpec {
            try JobSpec(
                runID: run.runID, jobID: step.jobID, inputs: inputs, effectiveConfig: config.merged,
                artifactProfile: profile == .rich ? .rich : .minimal)
        }
        try writeHostFiles(dir, step: step, inputs: inputs)
        var timing = HostStepMetrics(started: Timestamp.nowNanos())
        try options.beforeSubmit?()
        var out = StepOutcome(index: step.index, action: step.action, jobID: step.jobID, status: .failed, exitCode: 40)
        var reply: JSONObject
        do {
            reply = try submitWaiting(try spec(), retried: &out.retriedAfterSourceMissing)
        } catch let e as RPCError
            where e.code == .workerIncompatible && e.failureSubkind == "TOOLCHAIN_CHANGED" && !resuming
        {
            // The worker's identity changed since the (cached) probe: never reuse the stale key.
            try client.reprobe()
            let old = inputs.jobKey
            inputs = try self.inputs(step)
            out.rekeyed =
                "the worker's toolchain changed (\(e.message.split(separator: ";").first ?? "")); job_key \(old.hex.prefix(12))… → \(inputs.jobKey.hex.prefix(12))…"
            options.onNotice?("re-keyed: " + out.rekeyed!)
            try writeHostFiles(dir, step: step, inputs: inputs)
            reply = try submitWaiting(try spec(), retried: &out.retriedAfterSourceMissing)
        }
        timing.submitted = Timestamp.nowNanos()
        out.jobKey = inputs.jobKey
        out.cached = reply["cached"]?.boolValue == true
        out.cachedFromJobID = reply["cached_from_job_id"]?.stringValue
        var (status, stopped) = try follow(step.jobID, cached: out.cached)
        timing.followed = Timestamp.nowNanos()
        if options.fetch, status["complete"]?.boolValue == true {
            try options.beforeFetch?(step.jobID)
            let artifacts = run.artifacts(step)
            if access(artifacts + "/job_index.json", F_OK) != 0 {
                removeTree(artifacts)
                let f = try client.fetch(
                    step.jobID, into: artifacts,
                    expected: .init(jobID: step.jobID, jobKey: inputs.jobKey, sourceSHA256: bundle.sourceSHA256))
                timing.fetchedBytes = f.streamBytes
                timing.fetched = Timestamp.nowNanos()
            }
            out.artifacts = artifacts
            if let s = try? JSONParser().parse(try DurableFile.read(artifacts + "/summary.json")) {
                status["summary"] = s
            }
        }
        out.summary = status["summary"] ?? .null
        try timing.write(dir, runID: run.runID, jobID: step.jobID, jobKey: inputs.jobKey, cached: out.cached)
        let s = out.summary
        switch stopped {
        case .some(let reason):
            out.status = reason == .cancelled ? .cancelled : .failed
            out.exitCode = reason == .cancelled ? FailureKind.cancelled.exitCode : FailureKind.executor.exitCode
            out.message = reason.message
        case .none:
            out.exitCode = Int32(s["exit_code"]?.intValue ?? Int64(FailureKind.executor.exitCode))
            out.status =
                switch s["status"]?.stringValue {
                case "success": .success
                case "cancelled": .cancelled
                default: .failed
                }
            out.message = s["human_summary"]?.stringValue ?? ""
        }
        return out
    }

    func inputs(_ step: RunPlan.Step) throws -> JobKeyInputs {
        try JobInputsBuilder.build(
            argv: step.argv, sourceSHA256: bundle.sourceSHA256, capabilities: client.capabilities ?? .null,
            provisioning: destination.provisioning,
            pinned: destination.pinned && destination.value != nil
                && step.argv.last == destination.value)
    }

    /// The inputs of a step: on resume, the `job_key_inputs.json` written when it was first submitted
    /// (the same job id must keep its key); else built from the argv and the worker's capabilities.
    func plannedInputs(_ step: RunPlan.Step, dir: String, resuming: Bool) throws -> JobKeyInputs {
        if resuming, let bytes = try? DurableFile.read(dir + "/job_key_inputs.json") {
            return try JobKeyInputs(json: try JSONParser().parse(bytes))
        }
        return try inputs(step)
    }

    /// `job_key_inputs.json` and `effective_config.json` (merged, redacted, with the layers it came from).
    func writeHostFiles(_ dir: String, step: RunPlan.Step, inputs: JobKeyInputs) throws {
        _ = try DurableFile.write(inputs.canonicalBytes + [10], to: dir + "/job_key_inputs.json", replace: true)
        let doc = EffectiveConfig(runID: run.runID, jobID: step.jobID, jobKey: inputs.jobKey, layers: config.layers)
            .json
        _ = try DurableFile.write(doc.canonicalBytes + [10], to: dir + "/effective_config.json", replace: true)
    }

    /// Submit with SOURCE_MISSING (one re-upload) and BUSY (wait, up to queue_seconds) handling.
    func submitWaiting(_ spec: JobSpec, retried: inout Bool) throws -> JSONObject {
        var reacquired = false
        while true {
            do {
                return try waitingForSlot { try client.submit(spec.json, leaseID: lease?.id) }
            } catch let e as RPCError where e.code == .sourceMissing && !retried {
                try pusher.reupload(bundle.sourceSHA256, root: root, options: options.bundleOptions)
                retried = true
            } catch let e as RPCError where e.code == .leaseExpired && !reacquired && lease != nil {
                // The reservation lapsed (another host may have run a job meanwhile): take a slot again.
                options.onNotice?("the slot reservation expired (\(e.message.prefix(60))…); reserving again")
                try lease!.acquire(waitingForSlot)
                reacquired = true
            }
        }
    }

    /// Runs `attempt` until the worker has a slot: BUSY → wait (`retry_after_seconds`, 1–30 s) up to
    /// `queue_seconds`; a cancel request ends the wait.
    func waitingForSlot(_ attempt: () throws -> JSONObject) throws -> JSONObject {
        let started = Timestamp.nowNanos()
        var announced = false
        while true {
            do {
                return try attempt()
            } catch let e as RPCError where e.code == .busy {
                let waited = Double(Timestamp.nowNanos() - started) / 1e9
                guard waited < Double(settings.queueSeconds) else {
                    throw RunError.busy(
                        "no slot on worker \(client.worker.name) within \(settings.queueSeconds) s ([timeouts] queue_seconds): \(e.message)"
                    )
                }
                if !announced {
                    options.onWaiting?("waiting for a slot on \(client.worker.name) (\(e.message))")
                    announced = true
                }
                let after = Double(e.data["retry_after_seconds"]?.intValue ?? 2)
                let pause = min(30, max(1, after), max(0.05, Double(settings.queueSeconds) - waited))
                if options.cancelRequested() { throw RunCancelled() }
                usleep(UInt32(min(pause, 1) * 1_000_000))
                // Wait in 1 s slices so a cancel is noticed promptly.
                var slept = min(pause, 1)
                while slept < pause && !options.cancelRequested() {
                    usleep(250_000)
                    slept += 0.25
                }
            }
        }
    }

    enum Stop: Equatable {
        case cancelled, idle(Int64), overall(Int64)
        var message: String {
            switch self {
            case .cancelled: "cancelled on request (the job was cancelled on the worker)"
            case .idle(let s):
                "no log output for \(s) s ([timeouts] idle_log_seconds): the job was cancelled (TIMEOUT_IDLE)"
            case .overall(let s):
                "the job ran longer than \(s) s ([timeouts] overall_seconds): it was cancelled (TIMEOUT_OVERALL)"
            }
        }
    }

    /// Follows the job until it is complete; cancels it on a cancel request or a timeout.
    func follow(_ jobID: String, cached: Bool) throws -> (JSONObject, Stop?) {
        var cursor: Int64 = 0
        let started = Timestamp.nowNanos()
        var lastOutput = started
        var stop: Stop? = nil
        var stopDeadline: Int64 = 0
        while true {
            let now = Timestamp.nowNanos()
            if stop == nil {
                if options.cancelRequested() {
                    stop = .cancelled
                } else if !cached && (now - lastOutput) / 1_000_000_000 >= settings.idleLogSeconds {
                    stop = .idle(settings.idleLogSeconds)
                } else if !cached && (now - started) / 1_000_000_000 >= settings.overallSeconds {
                    stop = .overall(settings.overallSeconds)
                }
                if stop != nil {
                    _ = try? client.cancel(jobID)
                    stopDeadline = Timestamp.nowNanos() + 15_000_000_000
                }
            } else if Timestamp.nowNanos() > stopDeadline {
                // The worker did not confirm in time: report what we know; the job's own timeout ends it.
                return (try client.status(jobID), stop)
            }
            lease?.renewIfDue()
            if !cached, stop == nil, client.has("tail") {
                let t = try client.tail(jobID, cursor: cursor)
                if let chunk = t["log_chunk"]?.stringValue, !chunk.isEmpty {
                    options.onLog?(chunk)
                    lastOutput = Timestamp.nowNanos()
                }
                let next = t["next_cursor"]?.intValue ?? cursor
                if next > cursor { lastOutput = Timestamp.nowNanos() }
                cursor = next
                if t["eof"]?.boolValue != true {
                    if t["log_chunk"]?.stringValue?.isEmpty != false { usleep(UInt32(options.pollMillis) * 1000) }
                    continue
                }
            }
            let s = try client.status(jobID)
            if s["complete"]?.boolValue == true { return (s, stop) }
            usleep(UInt32(options.pollMillis) * 1000)
        }
    }
}

/// The run was cancelled while waiting (before a job existed on the worker).
struct RunCancelled: Error {}
