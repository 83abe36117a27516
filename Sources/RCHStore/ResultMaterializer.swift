import RCHCore

/// Who produced an artifact set (recorded in `attestation.json`).
public struct WorkerIdentity: Sendable {
    public var name: String
    public var fingerprint: String
    public init(name: String, fingerprint: String) { self.name = name; self.fingerprint = fingerprint }
}

extension ResultStore {
    public struct Materialized: Sendable {
        public var jobDirectory: String
        public var cachedFromJobID: String
        public var profile: ArtifactProfile
        public var fileCount: Int
        public var artifactRootSHA256: SHA256Digest
    }

    /// Serves a cache hit into `directory`, a new job directory for `jobID`/`runID`.
    ///
    /// Steps: lookup (a miss throws ``StoreError/resultMiss(_:)`` with the reason); bind `jobID` to the
    /// key; copy every file from verified blobs into a staging directory; rewrite `run_id`, `job_id`,
    /// `created_at` and `job_key` in the job-scoped JSON artifacts at the top level (those whose object
    /// has a `job_id` member) and set `cached_from_job_id` in `summary.json`; write `manifest.json`
    /// (regenerated entries and `artifact_root_sha256`), then `attestation.json` binding it, then
    /// `job_index.json` last; rename the staging directory into place.
    public func materialize(jobKey: SHA256Digest, namespace: String, profile: ArtifactProfile, jobID: String, runID: String,
                            into directory: String, worker: WorkerIdentity, verify: Bool = true) throws -> Materialized {
        _ = try Identifier.validate(jobID, .jobID)
        _ = try Identifier.validate(runID, .runID)
        // Lease first (under the shared lock), then look up: gc either sees the lease or finished before.
        let leases = Leases(store: store)
        let lease = try leases.acquire(.result(namespace: namespace, jobKey: jobKey), jobID: jobID, ttlSeconds: 3600)
        defer { leases.release(lease) }
        let entry: ResultEntry
        switch lookup(jobKey: jobKey, namespace: namespace, profile: profile) {
        case .miss(let why): throw StoreError.resultMiss(why)
        case .hit(let e): entry = e
        }
        try JobRegistry(store: store).claim(jobID, jobKey: jobKey)
        let items = entry.entries.map { e in
            TreeMaterializer.Item(path: e.path, kind: e.isDirectory ? .directory : .file(e.sha256!, executable: false))
        }
        let now = Timestamp.now()
        var finalEntries = entry.entries
        var root = SHA256Digest.empty
        try TreeMaterializer(blobs: store.blobs, verify: verify).materialize(items, into: directory) { staging in
            for (i, e) in entry.entries.enumerated() where !e.isDirectory && !e.path.contains("/") && e.path.hasSuffix(".json") {
                guard let rewritten = try Self.rewrite(staging + "/" + e.path, isSummary: e.path == "summary.json", originalJobID: entry.jobID,
                                                       jobID: jobID, runID: runID, jobKey: jobKey, now: now) else { continue }
                finalEntries[i].size = UInt64(rewritten.count)
                finalEntries[i].sha256 = .of(rewritten)
            }
            let manifest = ArtifactManifest.document(finalEntries, runID: runID, jobID: jobID, jobKey: jobKey, createdAt: now).canonicalBytes
            root = ArtifactManifest.rootDigest(finalEntries)
            // Job directories are disposable (a crash means re-running the job): they need atomic visibility,
            // which the final rename gives, not fsyncs (on ext4 an fsync would force out every byte just copied).
            _ = try DurableFile.write(manifest, to: staging + "/manifest.json", durable: false)
            let attestation = JSONValue.obj([
                "schema_version": .int(1), "schema_id": .string("rch-xcode/attestation@1"), "created_at": .string(now),
                "run_id": .string(runID), "job_id": .string(jobID), "job_key": .string(jobKey.hex),
                "source_sha256": .string(entry.sourceSHA256.hex),
                "worker": .obj(["name": .string(worker.name), "fingerprint": .string(worker.fingerprint)]),
                "capabilities_sha256": .null,
                "backend": .obj(["name": .string(entry.backend), "version": .string(entry.backendVersion)]),
                "manifest_sha256": .string(SHA256Digest.of(manifest).hex), "cached_from_job_id": .string(entry.jobID), "signature": .null,
            ])
            _ = try DurableFile.write(attestation.canonicalBytes, to: staging + "/attestation.json", durable: false)
            _ = try DurableFile.write(Self.jobIndex(finalEntries, profile: entry.profile, runID: runID, jobID: jobID, jobKey: jobKey, now: now).canonicalBytes,
                                      to: staging + "/job_index.json", durable: false)
        }
        return Materialized(jobDirectory: directory, cachedFromJobID: entry.jobID, profile: entry.profile, fileCount: items.count,
                            artifactRootSHA256: root)
    }

    /// Rewrites one job-scoped JSON artifact in place; returns its new bytes (nil if it is not job-scoped).
    static func rewrite(_ path: String, isSummary: Bool, originalJobID: String, jobID: String, runID: String, jobKey: SHA256Digest,
                        now: String) throws -> [UInt8]? {
        guard let v = try? JSONParser().parse(try DurableFile.read(path)), case .object(var o) = v, o["job_id"] != nil else { return nil }
        o["job_id"] = .string(jobID)
        if o["run_id"] != nil { o["run_id"] = .string(runID) }
        if o["created_at"] != nil { o["created_at"] = .string(now) }
        if o["job_key"] != nil { o["job_key"] = .string(jobKey.hex) }
        if isSummary { o["cached_from_job_id"] = .string(originalJobID) }
        let bytes = JSONValue.object(o).canonicalBytes
        _ = try DurableFile.write(bytes, to: path, replace: true, durable: false)
        return bytes
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
