#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import RCHAttestation
import RCHBundle
import RCHCore
import RCHJob
import RCHProtocol
import RCHStore

/// One remote job end to end: push → submit (SOURCE_MISSING → re-upload, retry once; WORKER_INCOMPATIBLE
/// `TOOLCHAIN_CHANGED` → re-probe, rebuild `job_key_inputs`, resubmit under the new key, once) → follow the
/// log → fetch → verify (manifest and signed attestation). Artifacts land in
/// `<artifact root>/<run_id>/steps/<action>/<job_id>/`, next to the run-scoped `source_manifest.json` and
/// `capabilities.json`; when the fetch or its verification fails, the run directory is removed.
public struct RunDriver {
    public var client: WorkerClient
    public var artifactRoot: String
    public var bundleOptions = BundleOptions()
    public var profile: ArtifactProfile?
    public var fetch = true
    /// Receives log text as it arrives (nil: not followed).
    public var onLog: ((String) -> Void)?
    public var pollMillis = 200
    /// Runs between push and submit (tests use it to race the worker's gc).
    public var beforeSubmit: (() throws -> Void)?
    /// Runs before the fetch with the job's id (tests use it to tamper with the worker's copy).
    public var beforeFetch: ((String) throws -> Void)?
    /// Receives one-line notices for people (e.g. why the job was re-keyed).
    public var onNotice: ((String) -> Void)?

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

        public var json: JSONValue {
            .obj(["run_id": .string(runID), "job_id": .string(jobID), "job_key": .string(jobKey.hex), "push": push.json,
                  "cached": .bool(cached), "cached_from_job_id": cachedFromJobID.map { .string($0) } ?? .null, "summary": summary,
                  "exit_code": .int(Int64(exitCode)), "artifacts": artifacts.map { .string($0) } ?? .null,
                  "source_missing_retry": .bool(retriedAfterSourceMissing), "rekeyed": rekeyed.map { .string($0) } ?? .null])
        }
    }

    public func run(root: String, argv: [String]) throws -> Outcome {
        let bundle = try HostBundler(store: client.hostStore).bundle(root: root, options: bundleOptions, compressed: false)
        let pusher = Pusher(client: client)
        let push = try pusher.push(bundle, root: root, options: bundleOptions)
        var inputs = try JobInputsBuilder.build(argv: argv, sourceSHA256: bundle.sourceSHA256, capabilities: client.capabilities ?? .null)
        let layers = try Config.layers(repo: root)
        let (config, _) = Config.redact(Config.merge(layers))
        let requested = profile ?? config["artifacts"]?["profile"]?.stringValue.flatMap(ArtifactProfile.init(rawValue:)) ?? .minimal
        let runID = Identifier.generate(), jobID = Identifier.generate()
        func makeSpec() throws -> JobSpec {
            try JobSpec(runID: runID, jobID: jobID, inputs: inputs, effectiveConfig: config,
                        artifactProfile: requested == .rich ? .rich : .minimal)
        }
        var spec = try makeSpec()
        try beforeSubmit?()
        var retried = false
        var rekeyed: String? = nil
        var reply: JSONObject
        do {
            reply = try submitOnce(spec, pusher: pusher, bundle: bundle, root: root, retried: &retried)
        } catch let e as RPCError where e.code == .workerIncompatible && e.failureSubkind == "TOOLCHAIN_CHANGED" {
            // The worker's identity changed since the (cached) probe: never reuse the stale key.
            try client.reprobe()
            let old = inputs.jobKey
            inputs = try JobInputsBuilder.build(argv: argv, sourceSHA256: bundle.sourceSHA256, capabilities: client.capabilities ?? .null)
            spec = try makeSpec()
            rekeyed = "the worker's toolchain changed (\(e.message.split(separator: ";").first ?? "")); job_key \(old.hex.prefix(12))… → \(inputs.jobKey.hex.prefix(12))…"
            onNotice?("re-keyed: " + rekeyed!)
            reply = try submitOnce(spec, pusher: pusher, bundle: bundle, root: root, retried: &retried)
        }
        let cached = reply["cached"]?.boolValue == true
        var status = try waitForEnd(jobID, cached: cached)
        let runDir = artifactRoot + "/" + runID
        var artifacts: String? = nil
        if fetch {
            let dir = runDir + "/steps/" + spec.action + "/" + jobID
            try beforeFetch?(jobID)
            do {
                _ = try client.fetch(jobID, into: dir, expected: .init(jobID: jobID, jobKey: inputs.jobKey, sourceSHA256: bundle.sourceSHA256))
            } catch {
                removeTree(runDir)  // nothing of a run whose artifacts were refused stays in the artifact root
                throw error
            }
            artifacts = dir
            if let s = try? JSONParser().parse(try DurableFile.read(dir + "/summary.json")) { status["summary"] = s }
        }
        try Syscalls.makeDirectories(runDir)
        var manifest = bundle.manifest
        manifest.runID = runID
        _ = try DurableFile.write(manifest.canonicalBytes() + [10], to: runDir + "/source_manifest.json")
        if let caps = client.capabilities { _ = try DurableFile.write(caps.canonicalBytes, to: runDir + "/capabilities.json") }
        let summary = status["summary"] ?? .null
        let exit = Int32(summary["exit_code"]?.intValue ?? Int64(FailureKind.executor.exitCode))
        return Outcome(runID: runID, jobID: jobID, jobKey: inputs.jobKey, push: push, cached: cached,
                       cachedFromJobID: reply["cached_from_job_id"]?.stringValue, summary: summary, exitCode: exit,
                       artifacts: artifacts, retriedAfterSourceMissing: retried, rekeyed: rekeyed)
    }

    /// Submits; on SOURCE_MISSING (TOCTOU with the worker's gc) uploads the whole bundle once and retries once.
    func submitOnce(_ spec: JobSpec, pusher: Pusher, bundle: BundleReport, root: String, retried: inout Bool) throws -> JSONObject {
        do { return try client.submit(spec.json) } catch let e as RPCError where e.code == .sourceMissing && !retried {
            try pusher.reupload(bundle.sourceSHA256, root: root, options: bundleOptions)
            retried = true
            return try client.submit(spec.json)
        }
    }

    /// Follows the job (tail when offered, else status polling) until it is complete.
    public func waitForEnd(_ jobID: String, cached: Bool) throws -> JSONObject {
        var cursor: Int64 = 0
        while true {
            if !cached, let onLog, client.has("tail") {
                let t = try client.tail(jobID, cursor: cursor)
                if let chunk = t["log_chunk"]?.stringValue, !chunk.isEmpty { onLog(chunk) }
                cursor = t["next_cursor"]?.intValue ?? cursor
                if t["eof"]?.boolValue != true {
                    if t["log_chunk"]?.stringValue?.isEmpty != false { usleep(UInt32(pollMillis) * 1000) }
                    continue
                }
            }
            let s = try client.status(jobID)
            if s["complete"]?.boolValue == true { return s }
            usleep(UInt32(pollMillis) * 1000)
        }
    }
}
