import RCHCore

/// The commit of a job artifact directory (the spec's two-phase commit): after every artifact is in
/// place, write `manifest.json` (entries + `artifact_root_sha256`), then `attestation.json` binding the
/// manifest's bytes, then `job_index.json` **last** — its existence means the set is complete.
public enum JobCommit {
    public struct Facts: Sendable {
        public var runID: String
        public var jobID: String
        public var jobKey: SHA256Digest
        public var sourceSHA256: SHA256Digest
        public var worker: WorkerIdentity
        public var backend: String
        public var backendVersion: String
        public var profile: ArtifactProfile
        public var capabilitiesSHA256: SHA256Digest?
        public var cachedFromJobID: String?

        public init(runID: String, jobID: String, jobKey: SHA256Digest, sourceSHA256: SHA256Digest, worker: WorkerIdentity, backend: String,
                    backendVersion: String, profile: ArtifactProfile, capabilitiesSHA256: SHA256Digest? = nil, cachedFromJobID: String? = nil) {
            self.runID = runID; self.jobID = jobID; self.jobKey = jobKey; self.sourceSHA256 = sourceSHA256; self.worker = worker
            self.backend = backend; self.backendVersion = backendVersion; self.profile = profile
            self.capabilitiesSHA256 = capabilitiesSHA256; self.cachedFromJobID = cachedFromJobID
        }
    }

    /// Writes the three commit files into `directory`; returns `artifact_root_sha256`.
    /// `durable: false` for job directories that become visible by one final rename.
    @discardableResult
    public static func write(into directory: String, entries: [ArtifactManifest.Entry], facts f: Facts, now: String = Timestamp.now(),
                             durable: Bool = true) throws -> SHA256Digest {
        let manifest = ArtifactManifest.document(entries, runID: f.runID, jobID: f.jobID, jobKey: f.jobKey, createdAt: now).canonicalBytes
        _ = try DurableFile.write(manifest, to: directory + "/manifest.json", durable: durable)
        let attestation = JSONValue.obj([
            "schema_version": .int(1), "schema_id": .string("rch-xcode/attestation@1"), "created_at": .string(now),
            "run_id": .string(f.runID), "job_id": .string(f.jobID), "job_key": .string(f.jobKey.hex),
            "source_sha256": .string(f.sourceSHA256.hex),
            "worker": .obj(["name": .string(f.worker.name), "fingerprint": .string(f.worker.fingerprint)]),
            "capabilities_sha256": f.capabilitiesSHA256.map { .string($0.hex) } ?? .null,
            "backend": .obj(["name": .string(f.backend), "version": .string(f.backendVersion)]),
            "manifest_sha256": .string(SHA256Digest.of(manifest).hex),
            "cached_from_job_id": f.cachedFromJobID.map { .string($0) } ?? .null, "signature": .null,
        ])
        _ = try DurableFile.write(attestation.canonicalBytes, to: directory + "/attestation.json", durable: durable)
        _ = try DurableFile.write(jobIndex(entries, profile: f.profile, runID: f.runID, jobID: f.jobID, jobKey: f.jobKey, now: now).canonicalBytes,
                                  to: directory + "/job_index.json", durable: durable)
        return ArtifactManifest.rootDigest(entries)
    }

    static let pointerNames: [(String, String)] = [
        ("job", "job.json"), ("job_state", "job_state.json"), ("summary", "summary.json"), ("manifest", "manifest.json"),
        ("attestation", "attestation.json"), ("toolchain", "toolchain.json"), ("destination", "destination.json"),
        ("effective_config", "effective_config.json"), ("invocation", "invocation.json"), ("job_key_inputs", "job_key_inputs.json"),
        ("build_log", "build.log"), ("result_xcresult", "result.xcresult"), ("metrics", "metrics.json"),
        ("executor_env", "executor_env.json"), ("classifier_policy", "classifier_policy.json"), ("events", "events.jsonl"),
        ("test_summary", "test_summary.json"), ("build_summary", "build_summary.json"), ("junit", "junit.xml"),
    ]

    /// `job_index.json`: the commit marker, pointing at the artifacts present.
    static func jobIndex(_ entries: [ArtifactManifest.Entry], profile: ArtifactProfile, runID: String, jobID: String, jobKey: SHA256Digest,
                         now: String) -> JSONValue {
        let present = Set(entries.map(\.path)).union(["manifest.json", "attestation.json"])
        var pointers = JSONObject()
        for (k, f) in pointerNames where present.contains(f) { pointers[k] = .string(f) }
        return .obj([
            "schema_version": .int(1), "schema_id": .string("rch-xcode/job_index@1"), "created_at": .string(now),
            "run_id": .string(runID), "job_id": .string(jobID), "job_key": .string(jobKey.hex),
            "artifact_profile": .string(profile.rawValue), "pointers": .object(pointers),
        ])
    }
}
