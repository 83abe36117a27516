import RCHBundle
import RCHCore
import RCHJob
import RCHProtocol
import RCHStore
import SystemPackage

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Job ops: `submit`, `status`, `tail`, `cancel`, `fetch`.
extension WorkerServer {
    var jobs: WorkerJobs { WorkerJobs(store: store) }

    func submit(_ p: JSONObject) throws -> JSONObject {
        try Self.only(p, ["job", "lease_id"], op: "submit")
        let leaseID = p["lease_id"] != nil ? try Self.id(p, "lease_id", .jobID) : nil
        guard let job = p["job"] else { throw RPCError.invalid("payload.job (the job.json object) is required") }
        // Typed: a member of the wrong type or unknown is refused naming the field; nothing is defaulted.
        let submitted: JobSpec.Submitted
        do { submitted = try JobSpec.parse(job) } catch {
            throw RPCError.invalid("\(error.field) \(error.message)", data: ["field": .string(error.field)])
        }
        let runID = submitted.spec.runID
        let jobID = submitted.spec.jobID
        let claimed = submitted.jobKey
        let inputs = submitted.spec.inputs
        let key = inputs.jobKey
        let profile: ArtifactProfile = submitted.spec.artifactProfile == .rich ? .rich : .minimal
        let namespace = submitted.namespace
        guard key == claimed else {
            let sub = JobRunner.Submission(
                job: job, inputs: inputs, namespace: namespace, profile: profile, runID: runID, jobID: jobID)
            return try failProtocol(sub, claimed: claimed)
        }

        // The same job_id: idempotent for the same key, refused for another.
        if let existing = JobRegistry(store: store).key(of: jobID) {
            guard existing == key else {
                throw RPCError.invalid(
                    "job_id \(jobID) was already submitted with job_key \(existing.hex)",
                    data: ["job_id": .string(jobID), "existing_job_key": .string(existing.hex)])
            }
            if jobs.exists(jobID) { return try status(["job_id": .string(jobID)]) }
        }
        // Re-check identity before anything is looked up: a key built for another toolchain is refused.
        let provider = self.provider
        let identity = try provider.current()
        let mismatches = IdentityCheck.mismatches(inputs, identity)
        guard mismatches.isEmpty else {
            let caps = (try? JSONParser().parse(Capabilities.document(provider))) ?? .null
            let first = mismatches[0]
            throw RPCError(
                .workerIncompatible,
                "the worker's toolchain changed: \(first.field) is \(first.current), the job was keyed for \(first.requested); "
                    + "probe the worker again and rebuild job_key_inputs",
                data: [
                    "failure_subkind": .string("TOOLCHAIN_CHANGED"), "mismatches": .array(mismatches.map(\.json)),
                    "capabilities": caps,
                ])
        }
        let sources = SourceStore(store: store)
        if !sources.has(inputs.sourceSHA256), let shared = WorkerShared(store: store, config: config) {
            _ = shared.tier.pullSource(inputs.sourceSHA256)
        }
        guard sources.has(inputs.sourceSHA256) else {
            throw RPCError(
                .sourceMissing, "source \(inputs.sourceSHA256.hex) is not in the store; upload it and submit again",
                data: ["source_sha256": .string(inputs.sourceSHA256.hex)])
        }
        // The job directory is the claim; it is removed again unless the job is accepted.
        guard try jobs.create(jobID) else { return try status(["job_id": .string(jobID)]) }
        do {
            // A hit (the lookup counted once, inside materialise) is served at once. A local miss asks the
            // shared tier, which ingests a trusted result of this class into the local store (then a local hit).
            let executorClass = provider.selection.executorClass
            var pulled = false
            if config.shared != nil,
                case .miss = ResultStore(store: store).uncountedLookup(
                    jobKey: key, namespace: namespace, profile: profile, executorClass: executorClass),
                let shared = WorkerShared(store: store, config: config),
                case .pulled = shared.tier.pullResult(
                    namespace: namespace, jobKey: key, profile: profile, executorClass: executorClass)
            {
                pulled = true
            }
            do {
                let m = try ResultStore(store: store).materialize(
                    jobKey: key, namespace: namespace, profile: profile,
                    executorClass: provider.selection.executorClass,
                    jobID: jobID, runID: runID, into: jobs.artifacts(jobID),
                    worker: try JobRunner(store: store, config: config).identity(),
                    capabilitiesSHA256: Capabilities.digest(provider), byReference: true)
                // A local hit the tier may lack (never published, or collected there): the drainer checks and
                // publishes. Not for a result just pulled from the tier.
                if !pulled {
                    WorkerShared.enqueue(.result(namespace: namespace, jobKey: key), store: store, config: config)
                }
                return [
                    "job_id": .string(jobID), "run_id": .string(runID), "job_key": .string(key.hex),
                    "state": .string(JobState.succeeded.rawValue),
                    "cached": .bool(true), "cached_from_job_id": .string(m.cachedFromJobID),
                    "artifact_profile": .string(m.profile.rawValue),
                ]
            } catch StoreError.resultMiss {}
            // Count and claim a slot under one lock, so simultaneous submits cannot both take the last one.
            // A job with a valid lease uses the slot its run reserved (its marker names the lease).
            try FileLock.with(store, name: "slots") {
                let held = WorkerReservations(store: store).active()
                if let leaseID {
                    guard held.contains(where: { $0.id == leaseID }) else { throw WorkerReservations.expired(leaseID) }
                } else {
                    let active = held.count + jobs.activeCount(ignoringLeases: Set(held.map(\.id)))
                    guard active < config.maxConcurrentJobs else {
                        throw RPCError(
                            .busy,
                            "\(active) slot(s) in use (max_concurrent_jobs \(config.maxConcurrentJobs)); retry later",
                            data: ["retry_after_seconds": .int(5), "active_jobs": .int(Int64(active))])
                    }
                }
                _ = try DurableFile.write(Array((leaseID ?? "").utf8), to: jobs.activeMarker(jobID), durable: false)
            }
            try JobRegistry(store: store).claim(jobID, jobKey: key)
            let sub = JobRunner.Submission(
                job: job, inputs: inputs, namespace: namespace, profile: profile, runID: runID, jobID: jobID)
            _ = try DurableFile.write(sub.json.canonicalBytes, to: jobs.control(jobID) + "/submit.json")
            try Syscalls.makeDirectories(jobs.artifacts(jobID))
            _ = try DurableFile.write(job.canonicalBytes, to: jobs.artifacts(jobID) + "/job.json", durable: false)
            _ = try DurableFile.write(
                inputs.canonicalBytes, to: jobs.artifacts(jobID) + "/job_key_inputs.json", durable: false)
            try jobs.writeState(jobID, runID: runID, jobKey: key.hex, .queued)
            try startRunner(jobID)
        } catch {
            removeTree(jobs.directory(jobID))
            unlink(jobs.activeMarker(jobID))
            throw error
        }
        return [
            "job_id": .string(jobID), "run_id": .string(runID), "job_key": .string(key.hex),
            "state": .string(JobState.queued.rawValue),
            "cached": .bool(false), "artifact_profile": .string(profile.rawValue),
        ]
    }

    /// A job whose `job_key` is not SHA-256(JCS(`job_key_inputs`)) (the spec's PROTOCOL_ERROR): accepted as a
    /// job that fails at once — never run, never cached, no slot taken — with WORKER_INCOMPATIBLE /
    /// `PROTOCOL_ERROR` (exit 91: host and worker disagree on the key) and both keys in its summary and events.
    func failProtocol(_ sub: JobRunner.Submission, claimed: SHA256Digest) throws -> JSONObject {
        let key = sub.inputs.jobKey
        if let existing = JobRegistry(store: store).key(of: sub.jobID) {
            guard existing == key, jobs.exists(sub.jobID) else {
                throw RPCError.invalid(
                    "job_id \(sub.jobID) was already submitted with job_key \(existing.hex)",
                    data: ["job_id": .string(sub.jobID), "existing_job_key": .string(existing.hex)])
            }
            return try status(["job_id": .string(sub.jobID)])
        }
        guard try jobs.create(sub.jobID) else { return try status(["job_id": .string(sub.jobID)]) }
        do {
            try JobRegistry(store: store).claim(sub.jobID, jobKey: key)
            _ = try DurableFile.write(sub.json.canonicalBytes, to: jobs.control(sub.jobID) + "/submit.json")
            let dir = jobs.artifacts(sub.jobID)
            try Syscalls.makeDirectories(dir)
            _ = try DurableFile.write(sub.job.canonicalBytes, to: dir + "/job.json", durable: false)
            _ = try DurableFile.write(sub.inputs.canonicalBytes, to: dir + "/job_key_inputs.json", durable: false)
            try jobs.writeState(sub.jobID, runID: sub.runID, jobKey: key.hex, .queued)
            let events = JobEvents(path: dir + "/events.jsonl")
            let message =
                "not run: the job_key sent (\(claimed.hex)) is not SHA-256(JCS(job_key_inputs)) (\(key.hex)); "
                + "the host and this worker compute job keys differently (upgrade one side)"
            events.emit(
                "submit", "refused",
                [
                    "failure_subkind": .string("PROTOCOL_ERROR"), "job_key_sent": .string(claimed.hex),
                    "job_key_computed": .string(key.hex),
                ])
            let runner = JobRunner(store: store, config: config)
            try runner.finish(
                sub,
                ExecutionOutcome(
                    status: .failed, failureKind: .workerIncompatible, failureSubkind: "PROTOCOL_ERROR",
                    message: message),
                executor: runner.makeExecutor(nil), env: nil, started: Timestamp.nowNanos(), events: events)
        } catch {
            removeTree(jobs.directory(sub.jobID))
            throw error
        }
        return try status(["job_id": .string(sub.jobID)])
    }

    /// Starts `rch-worker run-job` detached (own session, stdio on `control/runner.log`), so the RPC
    /// connection can close while the job runs.
    func startRunner(_ jobID: String) throws {
        let logPath = jobs.control(jobID) + "/runner.log"
        let log = open(logPath, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o644)
        guard log >= 0 else { throw SystemError("open", path: logPath, errno: Errno(rawValue: errno)) }
        defer { close(log) }
        let devnull = open("/dev/null", O_RDONLY | O_CLOEXEC)
        defer { close(devnull) }
        let pid = try Spawn.start(
            runnerCommand[0], Array(runnerCommand.dropFirst()) + [jobID], stdin: devnull, stdout: log, stderr: log,
            newSession: true)
        _ = try DurableFile.write(Array(String(pid).utf8), to: jobs.control(jobID) + "/runner.pid", durable: false)
    }

    /// A job the worker knows, or the right error: ARTIFACTS_GONE if it existed and was removed.
    func knownJob(_ p: JSONObject, allowed: Set<String>, op: String) throws -> String {
        try Self.only(p, allowed, op: op)
        let jobID = try Self.id(p, "job_id", .jobID)
        guard jobs.exists(jobID) else {
            if JobRegistry(store: store).key(of: jobID) != nil {
                throw RPCError(
                    .artifactsGone, "job \(jobID) is no longer on this worker (its artifacts were removed)",
                    data: ["job_id": .string(jobID)])
            }
            throw RPCError(
                .notFound, "no job \(jobID) on this worker; check the id (rch-xcode job list shows the worker's jobs)",
                data: ["job_id": .string(jobID)])
        }
        return jobID
    }

    func status(_ p: JSONObject) throws -> JSONObject {
        let jobID = try knownJob(p, allowed: ["job_id"], op: "status")
        guard let s = jobs.currentState(jobID, config: config) else {
            throw RPCError(.busy, "job \(jobID) is being set up", data: ["retry_after_seconds": .int(1)])
        }
        let dir = jobs.artifacts(jobID)
        let complete = access(dir + "/job_index.json", F_OK) == 0
        var out: JSONObject = [
            "job_id": .string(jobID), "run_id": .string(s.runID), "job_key": .string(s.jobKey),
            "state": .string(s.state.rawValue),
            "created_at": .string(s.createdAt), "updated_at": .string(s.updatedAt), "complete": .bool(complete),
            "cancel_requested": .bool(access(jobs.cancelMarker(jobID), F_OK) == 0),
        ]
        if complete, let summary = try? JSONParser().parse(try DurableFile.read(dir + "/summary.json")) {
            out["summary"] = summary
        }
        return out
    }

    func tail(_ p: JSONObject) throws -> JSONObject {
        let jobID = try knownJob(
            p, allowed: ["job_id", "cursor", "max_bytes", "max_events", "event_cursor"], op: "tail")
        var cursor: Int64 = 0
        if let c = p["cursor"] {
            switch c {
            case .null: cursor = 0  // the spec's nullable cursor: from the start
            case .int(let n) where n >= 0: cursor = n
            case .string(let s) where Int64(s).map({ $0 >= 0 }) == true: cursor = Int64(s)!
            default:
                throw RPCError.invalid(
                    "payload.cursor must be a non-negative integer (the next_cursor of the previous reply)")
            }
        }
        var maxBytes: Int64 = 64 << 10
        if let m = p["max_bytes"] {
            guard case .int(let n) = m, (1...(1 << 20)).contains(n) else {
                throw RPCError.invalid("payload.max_bytes must be an integer in 1...1048576")
            }
            maxBytes = n
        }
        var maxEvents = 100
        if let m = p["max_events"] {
            guard case .int(let n) = m, (0...1000).contains(n) else {
                throw RPCError.invalid("payload.max_events must be an integer in 0...1000")
            }
            maxEvents = Int(n)
        }
        var eventCursor: Int64 = 0
        if let c = p["event_cursor"] {
            switch c {
            case .null: eventCursor = 0
            case .int(let n) where n >= 0: eventCursor = n
            default:
                throw RPCError.invalid(
                    "payload.event_cursor must be a non-negative integer (the next_event_cursor of the previous reply)")
            }
        }
        let state = jobs.currentState(jobID, config: config)?.state ?? .queued
        let artifacts = JobArtifacts(jobs: jobs, jobID: jobID)
        let (events, nextEvent) = try JobEvents.read(
            artifacts.path(named: "events.jsonl") ?? jobs.artifacts(jobID) + "/events.jsonl", from: eventCursor,
            max: maxEvents)
        let path = artifacts.path(named: "build.log") ?? jobs.artifacts(jobID) + "/build.log"
        var chunk: [UInt8] = []
        var size: Int64 = 0
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        if fd >= 0 {
            defer { close(fd) }
            var st = stat()
            fstat(fd, &st)
            size = Int64(st.st_size)
            guard cursor <= size else {
                throw RPCError.invalid("cursor \(cursor) is past the end of the log (\(size) bytes)")
            }
            let want = Int(min(maxBytes, size - cursor))
            chunk = [UInt8](repeating: 0, count: want)
            let n = chunk.withUnsafeMutableBytes { pread(fd, $0.baseAddress, want, off_t(cursor)) }
            chunk.removeLast(want - max(0, n))
        } else if cursor > 0 {
            throw RPCError.invalid("cursor \(cursor) is past the end of the log (0 bytes)")
        }
        // Never split a UTF-8 sequence: stop before an incomplete one at the end of the chunk.
        var end = chunk.count
        if cursor + Int64(end) < size || !state.isTerminal {
            var k = end - 1
            var back = 0
            while k >= 0 && back < 3 && chunk[k] & 0xC0 == 0x80 {
                k -= 1
                back += 1
            }
            if k >= 0 && chunk[k] >= 0xC0 {
                let need = chunk[k] >= 0xF0 ? 4 : chunk[k] >= 0xE0 ? 3 : 2
                if end - k < need { end = k }
            }
        }
        let next = cursor + Int64(end)
        return [
            "job_id": .string(jobID), "cursor": .int(cursor), "next_cursor": .int(next),
            "log_chunk": .string(String(decoding: chunk[0..<end], as: UTF8.self)), "events": .array(events),
            "event_cursor": .int(eventCursor), "next_event_cursor": .int(nextEvent),
            "state": .string(state.rawValue), "eof": .bool(state.isTerminal && next >= size),
        ]
    }

    func cancel(_ p: JSONObject) throws -> JSONObject {
        let jobID = try knownJob(p, allowed: ["job_id"], op: "cancel")
        guard let s = jobs.currentState(jobID, config: config) else {
            throw RPCError(.busy, "job \(jobID) is being set up", data: ["retry_after_seconds": .int(1)])
        }
        if s.state.isTerminal {
            return ["job_id": .string(jobID), "state": .string(s.state.rawValue), "cancel_requested": .bool(false)]
        }
        _ = try DurableFile.write(
            Array(Timestamp.now().utf8), to: jobs.cancelMarker(jobID), replace: true, durable: false)
        // Best effort: give the runner a moment so the reply usually carries the final state.
        var state = s.state
        for _ in 0..<40 {
            usleep(50_000)
            if let now = jobs.currentState(jobID, config: config)?.state, now.isTerminal {
                state = now
                break
            }
        }
        return ["job_id": .string(jobID), "state": .string(state.rawValue), "cancel_requested": .bool(true)]
    }

    /// `fetch`: a framed reply — header with the manifest, then a canonical `.tar.zst` of the committed
    /// job directory (files only; directories are in the manifest). Built once, kept as `fetch.tar.zst`.
    /// A committed job to serve (`fetch`, `fetch_blobs`): its artifacts directory and the hold that keeps job
    /// retention away until the reply is sent. Removed → ARTIFACTS_GONE; not complete → BUSY.
    func committedJob(_ jobID: String) throws -> (dir: String, hold: FetchHold?) {
        let hold = FetchHold(jobs: jobs, jobID: jobID)
        guard jobs.exists(jobID) else {
            throw RPCError(
                .artifactsGone, "job \(jobID) is no longer on this worker (its artifacts were removed)",
                data: ["job_id": .string(jobID)])
        }
        let dir = jobs.artifacts(jobID)
        guard access(dir + "/job_index.json", F_OK) == 0 else {
            let state = jobs.currentState(jobID, config: config)?.state.rawValue ?? "QUEUED"
            throw RPCError(
                .busy, "job \(jobID) is not complete yet (state \(state))",
                data: ["retry_after_seconds": .int(1), "state": .string(state)])
        }
        return (dir, hold)
    }

    func fetch(_ p: JSONObject) throws -> Reply {
        let jobID = try knownJob(p, allowed: ["job_id"], op: "fetch")
        let (dir, hold) = try committedJob(jobID)
        let manifestBytes = try DurableFile.read(dir + "/manifest.json")
        let manifest = try JSONParser().parse(manifestBytes)
        let pack = jobs.directory(jobID) + "/fetch.tar.zst"
        if access(pack, F_OK) != 0 {
            var files: [SourceManifest.Entry] = []
            for e in manifest["entries"]?.arrayValue ?? [] where e["type"]?.stringValue == "file" {
                guard let path = e["path"]?.stringValue, let size = e["size"]?.intValue,
                    let sha = e["sha256"]?.stringValue.flatMap({ SHA256Digest(hex: $0) })
                else {
                    throw RPCError(.internalError, "manifest.json of \(jobID) is malformed")
                }
                files.append(
                    .init(
                        path: path, type: .file, size: UInt64(size), sha256: sha, executable: false, symlinkTarget: nil)
                )
            }
            for name in ArtifactManifest.excluded.sorted() {
                let bytes = try DurableFile.read(dir + "/" + name)
                files.append(
                    .init(
                        path: name, type: .file, size: UInt64(bytes.count), sha256: .of(bytes), executable: false,
                        symlinkTarget: nil))
            }
            files.sort { Array($0.path.utf8).lexicographicallyPrecedes(Array($1.path.utf8)) }
            let artifacts = JobArtifacts(jobs: jobs, jobID: jobID)
            let resolved = try artifacts.resolve(files.map { ($0.path, $0.sha256) }, jobID: jobID)
            let source = Dictionary(uniqueKeysWithValues: zip(files.map(\.path), resolved))
            let temp = try TempFile(directory: jobs.directory(jobID))
            do {
                let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 1 << 20, alignment: 16)
                defer { buffer.deallocate() }
                _ = try CanonicalTarRebuilder.rebuild(entries: files, output: temp) { e, sink in
                    try FileChunks.read(path: source[e.path]!, buffer: buffer, sink)
                }
                try temp.commit(to: pack, replace: true, durable: false)
            } catch {
                temp.discard()
                if error is BundleError { throw artifacts.damaged(files.map(\.sha256), jobID: jobID, error: error) }
                throw error
            }
        }
        let stream = try describeFile(pack, compression: .zstd)
        return .framed(
            ["job_id": .string(jobID), "manifest": manifest, "stream": stream.json], file: pack,
            length: stream.contentLength, hold: hold)
    }
}
