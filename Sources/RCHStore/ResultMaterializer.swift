import RCHAttestation
import RCHCore

/// The worker that vouches for an artifact set: its name and its attestation key (the fingerprint of
/// the key is the worker fingerprint recorded in `attestation.json`).
public struct WorkerIdentity: Sendable {
    public var name: String
    public var key: AttestationKey

    public init(name: String, key: AttestationKey) {
        self.name = name
        self.key = key
    }

    public var fingerprint: String { key.fingerprint.hex }
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
    /// `created_at` (and `updated_at`) and `job_key` in the job-scoped JSON artifacts at the top level (those whose object
    /// has a `job_id` member) and set `cached_from_job_id` in `summary.json`; write `manifest.json`
    /// (regenerated entries and `artifact_root_sha256`), then `attestation.json` binding it, then
    /// `job_index.json` last; rename the staging directory into place.
    public func materialize(
        jobKey: SHA256Digest, namespace: String, profile: ArtifactProfile, executorClass: String,
        jobID: String, runID: String, into directory: String, worker: WorkerIdentity,
        capabilitiesSHA256: SHA256Digest? = nil, verify: Bool = true
    ) throws -> Materialized {
        _ = try Identifier.validate(jobID, .jobID)
        _ = try Identifier.validate(runID, .runID)
        // Lease first (under the shared lock), then look up: gc either sees the lease or finished before.
        let leases = Leases(store: store)
        let lease = try leases.acquire(.result(namespace: namespace, jobKey: jobKey), jobID: jobID, ttlSeconds: 3600)
        defer { leases.release(lease) }
        let entry: ResultEntry
        switch lookup(jobKey: jobKey, namespace: namespace, profile: profile, executorClass: executorClass) {
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
            for (i, e) in entry.entries.enumerated()
            where !e.isDirectory && !e.path.contains("/") && e.path.hasSuffix(".json") {
                guard
                    let rewritten = try Self.rewrite(
                        staging + "/" + e.path, isSummary: e.path == "summary.json", originalJobID: entry.jobID,
                        jobID: jobID, runID: runID, jobKey: jobKey, now: now)
                else { continue }
                finalEntries[i].size = UInt64(rewritten.count)
                finalEntries[i].sha256 = .of(rewritten)
            }
            // Job directories are disposable (a crash means re-running the job): they need atomic visibility,
            // which the final rename gives, not fsyncs (on ext4 an fsync would force out every byte just copied).
            var facts = JobCommit.Facts(
                runID: runID, jobID: jobID, jobKey: jobKey, sourceSHA256: entry.sourceSHA256, worker: worker,
                producer: entry.producer, profile: entry.profile,
                capabilitiesSHA256: capabilitiesSHA256, cachedFromJobID: entry.jobID)
            facts.origin = entry.origin
            root = try JobCommit.write(into: staging, entries: finalEntries, facts: facts, now: now, durable: false)
        }
        return Materialized(
            jobDirectory: directory, cachedFromJobID: entry.jobID, profile: entry.profile, fileCount: items.count,
            artifactRootSHA256: root)
    }

    /// Rewrites one job-scoped JSON artifact in place; returns its new bytes (nil if it is not job-scoped).
    static func rewrite(
        _ path: String, isSummary: Bool, originalJobID: String, jobID: String, runID: String, jobKey: SHA256Digest,
        now: String
    ) throws -> [UInt8]? {
        guard let v = try? JSONParser().parse(try DurableFile.read(path)), case .object(var o) = v, o["job_id"] != nil
        else { return nil }
        o["job_id"] = .string(jobID)
        if o["run_id"] != nil { o["run_id"] = .string(runID) }
        if o["created_at"] != nil { o["created_at"] = .string(now) }
        // A served state record is new: its history starts now (updated_at never precedes created_at).
        if o["updated_at"] != nil { o["updated_at"] = .string(now) }
        if o["job_key"] != nil { o["job_key"] = .string(jobKey.hex) }
        if isSummary { o["cached_from_job_id"] = .string(originalJobID) }
        // metrics.json of a hit: the producer's timings, marked as such, and the hit itself.
        if o["schema_id"]?.stringValue == "rch-xcode/metrics@1", case .object(var cache)? = o["cache"] {
            cache["result_cache_hit"] = .bool(true)
            o["cache"] = .object(cache)
            o["timings_from_job_id"] = .string(originalJobID)
        }
        let bytes = JSONValue.object(o).canonicalBytes
        _ = try DurableFile.write(bytes, to: path, replace: true, durable: false)
        return bytes
    }
}
