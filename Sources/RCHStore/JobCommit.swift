import RCHAttestation
import RCHCore

/// The commit of a job artifact directory (the spec's two-phase commit): after every artifact is in
/// place, write `manifest.json` (entries + `artifact_root_sha256`), then `attestation.json` binding the
/// manifest's bytes — signed with the serving worker's Ed25519 key (see ``Attestation``) — then
/// `job_index.json` **last**: its existence means the set is complete.
///
/// `backend` in the attestation names who *produced* the files (name, version, executor class), which
/// for a cache hit is the original job's backend; `worker` names who *serves* them and signs.
public enum JobCommit {
    public struct Facts: Sendable {
        public var runID: String
        public var jobID: String
        public var jobKey: SHA256Digest
        public var sourceSHA256: SHA256Digest
        public var worker: WorkerIdentity
        public var producer: Producer
        public var profile: ArtifactProfile
        public var capabilitiesSHA256: SHA256Digest?
        public var cachedFromJobID: String?
        /// A hit served from a result pulled from the shared tier: who published it (attestation `origin`).
        public var origin: ResultEntry.Origin?

        public init(
            runID: String, jobID: String, jobKey: SHA256Digest, sourceSHA256: SHA256Digest, worker: WorkerIdentity,
            producer: Producer, profile: ArtifactProfile, capabilitiesSHA256: SHA256Digest? = nil,
            cachedFromJobID: String? = nil
        ) {
            self.runID = runID
            self.jobID = jobID
            self.jobKey = jobKey
            self.sourceSHA256 = sourceSHA256
            self.worker = worker
            self.producer = producer
            self.profile = profile
            self.capabilitiesSHA256 = capabilitiesSHA256
            self.cachedFromJobID = cachedFromJobID
        }
    }

    /// Writes the three commit files into `directory`; returns `artifact_root_sha256`.
    /// `durable: false` for job directories that become visible by one final rename.
    @discardableResult
    public static func write(
        into directory: String, entries: [ArtifactManifest.Entry], facts f: Facts, now: String = Timestamp.now(),
        durable: Bool = true
    ) throws -> SHA256Digest {
        let (manifest, root) = ArtifactManifest.documentBytes(
            entries, runID: f.runID, jobID: f.jobID, jobKey: f.jobKey, createdAt: now)
        _ = try DurableFile.write(manifest, to: directory + "/manifest.json", durable: durable)
        let unsigned = JSONObject([
            ("schema_version", .int(1)), ("schema_id", .string(Attestation.schemaID)), ("created_at", .string(now)),
            ("run_id", .string(f.runID)), ("job_id", .string(f.jobID)), ("job_key", .string(f.jobKey.hex)),
            ("source_sha256", .string(f.sourceSHA256.hex)),
            (
                "worker",
                .obj([
                    "name": .string(f.worker.name), "fingerprint": .string(f.worker.fingerprint),
                    "public_key": .string(Hex.encode(f.worker.key.publicKey)),
                ])
            ),
            ("capabilities_sha256", f.capabilitiesSHA256.map { .string($0.hex) } ?? .null),
            ("backend", f.producer.json),
            ("manifest_sha256", .string(SHA256Digest.of(manifest).hex)),
            ("cached_from_job_id", f.cachedFromJobID.map { .string($0) } ?? .null),
        ])
        var document = unsigned
        if let origin = f.origin { document["origin"] = origin.json }
        let attestation = try Attestation.sign(document, with: f.worker.key)
        _ = try DurableFile.write(attestation.canonicalBytes, to: directory + "/attestation.json", durable: durable)
        _ = try DurableFile.write(
            jobIndex(entries, profile: f.profile, runID: f.runID, jobID: f.jobID, jobKey: f.jobKey, now: now)
                .canonicalBytes,
            to: directory + "/job_index.json", durable: durable)
        return root
    }

    static let pointerNames: [(String, String)] = [
        ("job", "job.json"), ("job_state", "job_state.json"), ("summary", "summary.json"),
        ("manifest", "manifest.json"),
        ("attestation", "attestation.json"), ("toolchain", "toolchain.json"), ("destination", "destination.json"),
        ("effective_config", "effective_config.json"), ("invocation", "invocation.json"),
        ("job_key_inputs", "job_key_inputs.json"),
        ("build_log", "build.log"), ("result_xcresult", "result.xcresult"), ("metrics", "metrics.json"),
        ("executor_env", "executor_env.json"), ("classifier_policy", "classifier_policy.json"),
        ("events", "events.jsonl"),
        ("test_summary", "test_summary.json"), ("build_summary", "build_summary.json"), ("junit", "junit.xml"),
    ]

    /// `job_index.json`: the commit marker, pointing at the artifacts present.
    static func jobIndex(
        _ entries: [ArtifactManifest.Entry], profile: ArtifactProfile, runID: String, jobID: String,
        jobKey: SHA256Digest,
        now: String
    ) -> JSONValue {
        // Pointers name top-level files only.
        let present = Set(entries.lazy.map(\.path).filter { !$0.utf8.contains(UInt8(ascii: "/")) })
            .union(["manifest.json", "attestation.json"])
        var pointers = JSONObject()
        for (k, f) in pointerNames where present.contains(f) { pointers[k] = .string(f) }
        return .obj([
            "schema_version": .int(1), "schema_id": .string("rch-xcode/job_index@1"), "created_at": .string(now),
            "run_id": .string(runID), "job_id": .string(jobID), "job_key": .string(jobKey.hex),
            "artifact_profile": .string(profile.rawValue), "pointers": .object(pointers),
        ])
    }
}

/// Who produced an artifact set: the backend's name and version and its executor class.
///
/// Trust rule: the class (`recording` for the mock, `xcodebuild` for real builds) is recorded with every
/// cached result, and a lookup only matches entries of the worker's current class, so a mock result can
/// never be served as a real build (nor the reverse). It is not part of `job_key`.
public struct Producer: Sendable, Equatable {
    public static let classes: Set<String> = ["recording", "xcodebuild"]
    public var executorClass: String
    public var backend: String
    public var backendVersion: String

    public init(executorClass: String, backend: String, backendVersion: String) {
        self.executorClass = executorClass
        self.backend = backend
        self.backendVersion = backendVersion
    }

    /// The recording (mock) executor.
    public static let recording = Producer(
        executorClass: "recording", backend: "recording", backendVersion: "rch-recording-executor/1")

    public var json: JSONValue {
        .obj(["name": .string(backend), "version": .string(backendVersion), "executor_class": .string(executorClass)])
    }
}
