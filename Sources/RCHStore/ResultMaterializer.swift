import RCHAttestation
import RCHCore

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

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
    /// key; put the files in a staging directory; rewrite `run_id`, `job_id`, `created_at` (and `updated_at`)
    /// and `job_key` in the job-scoped JSON artifacts at the top level (those whose object has a `job_id`
    /// member) and set `cached_from_job_id` in `summary.json`; write `manifest.json` (regenerated entries and
    /// `artifact_root_sha256`), then `attestation.json` binding it, then `job_index.json` last; rename the
    /// staging directory into place.
    ///
    /// Files are *copied* from blobs (verified unless `verify` is false) — an export — unless `byReference`:
    /// then `directory` must be `work/<jobID>/artifacts` of this store, only the rewritten records and the
    /// commit files are written, and the other files stay blobs named by `work/<jobID>/reference.json`
    /// (see ``ResultReferences``; they are verified when they are read).
    public func materialize(
        jobKey: SHA256Digest, namespace: String, profile: ArtifactProfile, executorClass: String,
        jobID: String, runID: String, into directory: String, worker: WorkerIdentity,
        capabilitiesSHA256: SHA256Digest? = nil, verify: Bool = true, byReference: Bool = false
    ) throws -> Materialized {
        _ = try Identifier.validate(jobID, .jobID)
        _ = try Identifier.validate(runID, .runID)
        let serve = Serve(
            jobKey: jobKey, jobID: jobID, runID: runID, worker: worker, capabilitiesSHA256: capabilitiesSHA256,
            now: Timestamp.now())
        if byReference {
            return try materializeByReference(
                serve, namespace: namespace, profile: profile, executorClass: executorClass, into: directory)
        }
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
        var root = SHA256Digest.empty
        try TreeMaterializer(blobs: store.blobs, verify: verify).materialize(items, into: directory) { staging in
            root = try serve.commit(entry, into: staging) { try DurableFile.read(staging + "/" + $0.path) }
        }
        return Materialized(
            jobDirectory: directory, cachedFromJobID: entry.jobID, profile: entry.profile, fileCount: items.count,
            artifactRootSHA256: root)
    }

    private func materializeByReference(
        _ serve: Serve, namespace: String, profile: ArtifactProfile, executorClass: String, into directory: String
    ) throws -> Materialized {
        let refs = ResultReferences(store: store)
        guard directory == refs.root + "/" + serve.jobID + "/artifacts" else {
            throw StoreError.invalid("a hit served by reference goes into work/\(serve.jobID)/artifacts of its store")
        }
        // Entry and record under the shared lock: gc's sweep either ran before (the presence check below then
        // sees what it removed) or sees the record (and keeps every blob it names).
        let entry = try StoreLock.shared(store) { () throws -> ResultEntry in
            let found = candidate(
                jobKey: serve.jobKey, namespace: namespace, profile: profile, executorClass: executorClass)
            guard case .hit(let e) = found else {
                StoreCounters.add(store, resultMisses: 1)
                if case .miss(let why) = found { throw StoreError.resultMiss(why) }
                throw StoreError.resultMiss("no hit")
            }
            try refs.write(
                .init(
                    jobID: serve.jobID, namespace: namespace, jobKey: serve.jobKey, cachedFromJobID: e.jobID,
                    blobs: ResultReferences.blobList(e.entries.lazy.compactMap(\.sha256))))
            return e
        }
        // Every blob must be present for a hit — checked after the record is written (a gc that ran before
        // it is seen here) and before the directory becomes visible.
        var root = SHA256Digest.empty
        do {
            try JobRegistry(store: store).claim(serve.jobID, jobKey: serve.jobKey)
            try TreeMaterializer(blobs: store.blobs, verify: false).materialize([], into: directory) { staging in
                root = try serve.commit(entry, into: staging) { try store.blobs.readVerified($0.sha256!) }
                let missing = store.blobs.firstMissing(entry.entries.compactMap(\.sha256))
                if let why = incomplete(entry, missing: missing) { throw StoreError.resultMiss(why) }
            }
        } catch {
            unlink(refs.path(serve.jobID))
            rmdir(refs.root + "/" + serve.jobID)  // only if the record's write made it (a worker's job has control/)
            if case StoreError.resultMiss = error { StoreCounters.add(store, resultMisses: 1) }
            throw error
        }
        Usage.touch(entryPath(namespace: namespace, jobKey: serve.jobKey))
        StoreCounters.add(store, resultHits: 1)
        return Materialized(
            jobDirectory: directory, cachedFromJobID: entry.jobID, profile: entry.profile,
            fileCount: entry.entries.count, artifactRootSHA256: root)
    }

    /// One serve's identity and the commit both ways share.
    private struct Serve {
        var jobKey: SHA256Digest
        var jobID: String
        var runID: String
        var worker: WorkerIdentity
        var capabilitiesSHA256: SHA256Digest?
        var now: String

        /// Rewrites the top-level job-scoped records (`read` gives an entry's original bytes) into `staging`
        /// and writes the commit files there; returns `artifact_root_sha256`.
        func commit(_ entry: ResultEntry, into staging: String, read: (ArtifactManifest.Entry) throws -> [UInt8]) throws
            -> SHA256Digest
        {
            var finalEntries = entry.entries
            for (i, e) in entry.entries.enumerated()
            where !e.isDirectory && e.path.hasSuffix(".json") && !e.path.utf8.contains(UInt8(ascii: "/")) {
                guard
                    let rewritten = ResultStore.rewrite(
                        try read(e), isSummary: e.path == "summary.json", originalJobID: entry.jobID, jobID: jobID,
                        runID: runID, jobKey: jobKey, now: now)
                else { continue }
                _ = try DurableFile.write(rewritten, to: staging + "/" + e.path, replace: true, durable: false)
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
            return try JobCommit.write(into: staging, entries: finalEntries, facts: facts, now: now, durable: false)
        }
    }

    /// The new bytes of a job-scoped JSON artifact for the serving job (nil if it is not job-scoped).
    static func rewrite(
        _ original: [UInt8], isSummary: Bool, originalJobID: String, jobID: String, runID: String, jobKey: SHA256Digest,
        now: String
    ) -> [UInt8]? {
        guard let v = try? JSONParser().parse(original), case .object(var o) = v, o["job_id"] != nil
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
        return JSONValue.object(o).canonicalBytes
    }
}
