import RCHCore
import RCHIdentity
import RCHJob
import RCHStore

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Runs one submitted job to its end (`rch-worker run-job`, started detached by `submit`).
///
/// Order (each step only after the previous one): pid file → `RUNNING` (or straight to `CANCELLED` if a
/// cancel arrived first) → materialise the source into `src/` (under a lease) → executor → artifacts
/// written → terminal `job_state.json` → `summary.json` (+ `executor_env.json`, `toolchain.json`,
/// `destination.json`) → manifest → attestation → `job_index.json` last → on success only, record the
/// result in the cache → remove `src/`, DerivedData and the active marker.
public struct JobRunner: Sendable {
    public let store: LocalStore
    public let config: WorkerConfig

    public init(store: LocalStore, config: WorkerConfig) {
        self.store = store
        self.config = config
    }

    /// What `submit` leaves in `control/submit.json` for the runner.
    public struct Submission: Sendable {
        public var job: JSONValue
        public var inputs: JobKeyInputs
        public var namespace: String
        public var profile: ArtifactProfile
        public var runID: String
        public var jobID: String

        public var json: JSONValue {
            .obj(["job": job, "namespace": .string(namespace), "artifact_profile": .string(profile.rawValue)])
        }

        public init(
            job: JSONValue, inputs: JobKeyInputs, namespace: String, profile: ArtifactProfile, runID: String,
            jobID: String
        ) {
            self.job = job
            self.inputs = inputs
            self.namespace = namespace
            self.profile = profile
            self.runID = runID
            self.jobID = jobID
        }

        static func load(_ path: String) throws -> Submission {
            let v = try JSONParser().parse(try DurableFile.read(path))
            guard let job = v["job"], let ns = v["namespace"]?.stringValue,
                let p = v["artifact_profile"]?.stringValue.flatMap(ArtifactProfile.init(rawValue:)),
                let run = job["run_id"]?.stringValue, let id = job["job_id"]?.stringValue,
                let inputs = job["job_key_inputs"]
            else {
                throw StoreError.corrupt("\(path) is not a submission record")
            }
            return Submission(
                job: job, inputs: try JobKeyInputs(json: inputs), namespace: ns, profile: p, runID: run, jobID: id)
        }
    }

    /// The serving worker: its name and attestation key.
    public func identity() throws -> WorkerIdentity {
        WorkerIdentity(name: config.name, key: try store.attestationKey())
    }

    var provider: WorkerIdentityProvider { WorkerIdentityProvider(store: store, config: config) }

    /// The executor of the worker's selection (an unconfigured worker never gets this far: submit refuses).
    public func makeExecutor(_ identity: ToolchainIdentity?) -> any Executor {
        switch provider.selection {
        case .xcodebuild(let path):
            let version = identity.map { "Xcode \($0.xcodeVersion) (\($0.xcodeBuild))" } ?? "unknown"
            return XcodebuildExecutor(path: path, version: version)
        case .recording, .unconfigured:
            return RecordingExecutor(behaviour: config.behaviour, durationMs: config.durationMs)
        }
    }

    public func run(jobID: String) throws {
        let jobs = WorkerJobs(store: store)
        let sub = try Submission.load(jobs.control(jobID) + "/submit.json")
        _ = try DurableFile.write(Array(String(getpid()).utf8), to: jobs.control(jobID) + "/runner.pid", durable: false)
        defer {
            // The slot is released first: the next job may start while this one's checkout is removed.
            unlink(jobs.activeMarker(jobID))
            removeTree(jobs.source(jobID))
            removeTree(jobs.directory(jobID) + "/DerivedData")
            removeTree(jobs.directory(jobID) + "/SourcePackages")
        }
        let started = Timestamp.nowNanos()
        let key = sub.inputs.jobKey
        let cancelPath = jobs.cancelMarker(jobID)
        let cancelled: @Sendable () -> Bool = { access(cancelPath, F_OK) == 0 }
        let identity = try? provider.current()
        let executor = makeExecutor(identity)
        let events = JobEvents(path: jobs.artifacts(jobID) + "/events.jsonl")
        var metrics = JobMetrics(submittedAt: jobs.submittedNanos(jobID), started: started)
        events.emit(
            "job", "started",
            [
                "action": .string(sub.inputs.action), "backend": .string(executor.backendName),
                "job_key": .string(key.hex),
            ])
        if cancelled() {
            try finish(
                sub,
                ExecutionOutcome(status: .cancelled, failureKind: .cancelled, message: "cancelled before it started"),
                executor: executor, env: nil, started: started)
            return
        }
        try jobs.writeState(jobID, runID: sub.runID, jobKey: key.hex, .running)
        // The identity is checked again when the job starts: it must still be the one the key binds.
        let mismatches = identity.map { IdentityCheck.mismatches(sub.inputs, $0) } ?? []
        if identity == nil || !mismatches.isEmpty {
            let why =
                mismatches.first.map { "\($0.field) is \($0.current), the job was keyed for \($0.requested)" }
                ?? "the worker's toolchain cannot be detected"
            let outcome = ExecutionOutcome(
                status: .failed, failureKind: .workerIncompatible, failureSubkind: "TOOLCHAIN_CHANGED",
                message: "not run: the worker's toolchain changed since submit (\(why))")
            try finish(sub, outcome, executor: executor, env: nil, started: started)
            return
        }
        events.emit("materialize", "started", ["source_sha256": .string(sub.inputs.sourceSHA256.hex)])
        do {
            _ = try SourceStore(store: store).materialize(
                sub.inputs.sourceSHA256, jobID: jobID, into: jobs.source(jobID))
            metrics.sourceBytes = try SourceStore(store: store).manifest(sub.inputs.sourceSHA256)?.tarBytes
        } catch {
            events.emit("materialize", "failed", ["error": .string("\(error)")])
            let outcome = ExecutionOutcome(
                status: .failed, failureKind: .transfer, failureSubkind: "SOURCE_MISSING",
                message: "the source could not be materialised: \(error)")
            try finish(sub, outcome, executor: executor, env: nil, started: started, metrics: metrics, events: events)
            return
        }
        metrics.materialized = Timestamp.nowNanos()
        events.emit("materialize", "finished", ["ms": .int(metrics.ms(started, metrics.materialized!))])
        let cacheConfig = sub.job["effective_config"]?["cache"]
        let caches = try WorkerCaches(store: store, lockTimeoutSeconds: config.cacheLockTimeoutSeconds).acquire(
            derivedData: cacheConfig?["derived_data"]?.stringValue ?? "shared",
            spm: cacheConfig?["spm"]?.stringValue ?? "shared", namespace: sub.namespace, inputs: sub.inputs,
            jobDirectory: jobs.directory(jobID))
        defer {
            WorkerCaches.release(caches.derivedData)
            WorkerCaches.release(caches.spm)
        }
        metrics.caches = caches
        events.emit(
            "caches", "acquired",
            [
                "derived_data": .string(caches.derivedData.mode), "derived_data_hit": .bool(caches.derivedData.hit),
                "spm": .string(caches.spm?.mode ?? "off"), "spm_hit": caches.spm.map { .bool($0.hit) } ?? .null,
            ])
        let (env, envRecord) = executorEnvironment(
            allowlist: config.envAllowlist, developerDir: sub.inputs.toolchain.developerDir)
        let request = ExecutionRequest(
            jobID: jobID, runID: sub.runID, jobKey: key, action: sub.inputs.action,
            sanitizedArgv: sub.inputs.sanitizedArgv,
            developerDir: sub.inputs.toolchain.developerDir, profile: sub.profile, sourceDirectory: jobs.source(jobID),
            artifactsDirectory: jobs.artifacts(jobID), environment: env,
            deadlineNanos: started + config.timeoutSeconds * 1_000_000_000, events: events,
            derivedDataPath: caches.derivedData.path, sourcePackagesPath: caches.spm?.path,
            destination: sub.inputs.destination,
            isActiveJob: { [jobs] id in access(jobs.activeMarker(id), F_OK) == 0 })
        events.emit("execute", "started", ["argv": .array(sub.inputs.sanitizedArgv.map { .string($0) })])
        let outcome: ExecutionOutcome
        do { outcome = try executor.execute(request, cancelled: cancelled) } catch {
            outcome = ExecutionOutcome(
                status: .failed, failureKind: .executor, message: "the executor failed: \(error)")
        }
        metrics.executed = Timestamp.nowNanos()
        events.emit(
            "execute", "finished",
            [
                "status": .string(outcome.status.rawValue),
                "backend_exit_code": outcome.backendExitCode.map { .int(Int64($0)) } ?? .null,
                "ms": .int(metrics.ms(metrics.materialized ?? started, metrics.executed!)),
            ])
        try finish(
            sub, outcome, executor: executor, env: envRecord, started: started, metrics: metrics, events: events)
    }

    /// Writes the job-scoped artifacts and commits the directory.
    func finish(
        _ sub: Submission, _ o: ExecutionOutcome, executor: any Executor, env: JSONValue?, started: Int64,
        metrics: JobMetrics? = nil, events: JobEvents? = nil
    ) throws {
        let jobs = WorkerJobs(store: store)
        let dir = jobs.artifacts(sub.jobID)
        let key = sub.inputs.jobKey
        let now = Timestamp.now()
        let job = JobEnvelope(runID: sub.runID, jobID: sub.jobID, jobKey: key.hex)
        func envelope(_ id: String, _ extra: KeyValuePairs<String, JSONValue>) -> JSONValue {
            job.document(id, JSONObject(extra.map { ($0.key, $0.value) }), createdAt: now)
        }
        if let env, case .object(let e) = env {
            var doc = envelope("executor_env", [:]).objectValue!
            for (k, v) in e.members { doc[k] = v }
            _ = try DurableFile.write(
                JSONValue.object(doc).canonicalBytes, to: dir + "/executor_env.json", durable: false)
        }
        let tc = sub.inputs.toolchain
        let d = sub.inputs.destination
        _ = try DurableFile.write(
            envelope(
                "toolchain",
                [
                    "xcode_version": .string((try? provider.current().xcodeVersion) ?? "unknown"),
                    "xcode_build": .string(tc.xcodeBuild), "developer_dir": .string(tc.developerDir),
                    "macos_version": .string(tc.macosVersion), "macos_build": .string(tc.macosBuild),
                    "arch": .string(tc.arch),
                ]
            ).canonicalBytes, to: dir + "/toolchain.json", durable: false)
        _ = try DurableFile.write(
            envelope(
                "destination",
                [
                    "platform": .string(d.platform), "name": .string(d.name), "os_version": .string(d.osVersion),
                    "provisioning": .string(d.provisioning),
                    "sim_runtime_identifier": d.simRuntimeIdentifier.map { .string($0) } ?? .null,
                    "sim_runtime_build": d.simRuntimeBuild.map { .string($0) } ?? .null,
                    "device_type_identifier": d.deviceTypeIdentifier.map { .string($0) } ?? .null,
                    "udid": o.simulatorUDID.map { .string($0) } ?? .null,
                ]
            ).canonicalBytes, to: dir + "/destination.json", durable: false)

        let events = events ?? JobEvents(path: dir + "/events.jsonl")
        events.emit("job", "finished", ["status": .string(o.status.rawValue), "message": .string(o.message)])
        var metrics = metrics ?? JobMetrics(submittedAt: nil, started: started)
        metrics.namespace = sub.namespace
        _ = try DurableFile.write(
            envelope("metrics", metrics.members(sub.inputs, artifactsDirectory: dir)).canonicalBytes,
            to: dir + "/metrics.json", durable: false)
        let state: JobState = o.status == .success ? .succeeded : o.status == .cancelled ? .cancelled : .failed
        try jobs.writeState(sub.jobID, runID: sub.runID, jobKey: key.hex, state)
        // The profile the files satisfy (never the one requested): paths are enough, nothing is hashed here.
        let listed = try ArtifactManifest.walk(dir).map {
            ArtifactManifest.Entry(path: $0.path, isDirectory: $0.isDirectory, size: $0.size, sha256: nil)
        }
        let kind: FailureKind? =
            o.status == .success ? nil : o.status == .cancelled ? .cancelled : (o.failureKind ?? .executor)
        let summaryProfile =
            (try? ArtifactProfile.satisfied(
                by: listed + [.init(path: "summary.json", isDirectory: false, size: 0, sha256: .empty)],
                action: sub.inputs.action
            ).get()) ?? .minimal
        let summary = envelope(
            "summary",
            [
                "status": .string(o.status.rawValue), "failure_kind": kind.map { .string($0.rawValue) } ?? .null,
                "failure_subkind": o.failureSubkind.map { .string($0) } ?? .null,
                "exit_code": .int(Int64(kind?.exitCode ?? 0)),
                "backend_exit_code": o.backendExitCode.map { .int(Int64($0)) } ?? .null,
                "backend_term_signal": o.termSignal.map { .string($0) } ?? .null,
                "backend": .string(executor.backendName),
                "human_summary": .string(o.message),
                "duration_ms": .int(max(0, (Timestamp.nowNanos() - started) / 1_000_000)),
                "artifact_profile": .string(summaryProfile.rawValue), "cached_from_job_id": .null,
                "ephemeral_cleanup_failed": o.ephemeralCleanupFailed.map { .bool($0) } ?? .null,
            ])
        _ = try DurableFile.write(summary.canonicalBytes, to: dir + "/summary.json", durable: false)
        let entries = try ArtifactManifest.scan(dir)
        let producer = Producer(
            executorClass: provider.selection.executorClass, backend: executor.backendName,
            backendVersion: executor.backendVersion)
        let facts = JobCommit.Facts(
            runID: sub.runID, jobID: sub.jobID, jobKey: key, sourceSHA256: sub.inputs.sourceSHA256,
            worker: try identity(), producer: producer, profile: summaryProfile,
            capabilitiesSHA256: Capabilities.digest(provider))
        try JobCommit.write(into: dir, entries: entries, facts: facts, now: now, durable: true)
        if o.status == .success {
            do {
                _ = try ResultStore(store: store).record(dir, jobKey: key, namespace: sub.namespace, producer: producer)
                WorkerShared.enqueue(.result(namespace: sub.namespace, jobKey: key), store: store, config: config)
            } catch {
                print("result not cached: \(error)")  // runner.log; the job itself succeeded
            }
        }
    }

    /// Marks a job whose runner died (crash, reboot) as failed, committing what exists.
    func abandon(jobID: String, record: WorkerJobs.StateRecord) {
        let jobs = WorkerJobs(store: store)
        guard let sub = try? Submission.load(jobs.control(jobID) + "/submit.json") else {
            try? jobs.writeState(jobID, runID: record.runID, jobKey: record.jobKey, .failed)
            return
        }
        try? finish(
            sub,
            ExecutionOutcome(
                status: .failed, failureKind: .executor, failureSubkind: "RUNNER_LOST",
                message: "the job runner ended without finishing the job"),
            executor: makeExecutor(try? provider.current()), env: nil, started: Timestamp.nowNanos())
        unlink(jobs.activeMarker(jobID))
    }
}
