import RCHCore
import RCHProtocol
import RCHStore

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Where the bytes of a committed job's artifacts are read from.
///
/// A job that ran, or a hit exported by copy, has every file in `work/<job_id>/artifacts/`. A hit served
/// by reference (``ResultReferences``) has there only its rewritten records and commit files; any other
/// file of its manifest is the store's blob named by the manifest's digest. Either way the reader checks the
/// bytes against the manifest's digest (the fetch stream is rebuilt with per-file verification), so a
/// damaged blob fails the read; it is then quarantined (``LocalStore/quarantineIfCorrupt(_:)``), so the
/// next lookup misses and the job runs again instead of failing the same way forever.
struct JobArtifacts {
    let directory: String
    let byReference: Bool
    let store: LocalStore

    init(jobs: WorkerJobs, jobID: String) {
        directory = jobs.artifacts(jobID)
        byReference = ResultReferences(store: jobs.store).exists(jobID)
        store = jobs.store
    }

    /// A file by name only (`tail`'s `build.log`, `events.jsonl`): for a hit served by reference, found
    /// through `manifest.json` when the directory has no copy; nil when the job has no such file.
    func path(named relative: String) -> String? {
        let own = directory + "/" + relative
        if !byReference || access(own, F_OK) == 0 { return own }
        guard let manifest = try? JSONParser().parse(DurableFile.read(directory + "/manifest.json")) else { return nil }
        for e in manifest["entries"]?.arrayValue ?? [] where e["path"]?.stringValue == relative {
            return e["sha256"]?.stringValue.flatMap { SHA256Digest(hex: $0) }.map { store.blobs.path($0) }
        }
        return nil
    }

    /// The files holding `files`' bytes (manifest paths and digests), in order: the directory's copy, else —
    /// for a hit served by reference — the blob of the digest, every one of which must still be there.
    func resolve(_ files: [(path: String, sha256: SHA256Digest)], jobID: String) throws -> [String] {
        guard byReference else { return files.map { directory + "/" + $0.path } }
        var fromBlobs: [SHA256Digest] = []
        let paths = files.map { f -> String in
            let own = directory + "/" + f.path
            if access(own, F_OK) == 0 { return own }
            fromBlobs.append(f.sha256)
            return store.blobs.path(f.sha256)
        }
        if let gone = store.blobs.missing(fromBlobs).first {
            throw RPCError(
                .artifactsGone,
                "job \(jobID) was a cached result served from this worker's store, and blob \(gone.hex) of it is gone; submit the job again",
                data: ["job_id": .string(jobID), "blob": .string(gone.hex)])
        }
        return paths
    }

    /// After a read failed its digest check: for a hit served by reference, the damaged blobs among
    /// `digests` are quarantined and the failure is ARTIFACTS_GONE (resubmitting runs the job again).
    func damaged(_ digests: some Sequence<SHA256Digest>, jobID: String, error: any Error) -> any Error {
        guard byReference else {
            return RPCError(.internalError, "artifacts of \(jobID) do not match their manifest: \(error)")
        }
        let bad = Set(digests).filter { store.quarantineIfCorrupt($0) }.map(\.hex).sorted()
        return RPCError(
            .artifactsGone,
            "job \(jobID) was a cached result served from this worker's store, and its stored bytes are damaged (\(bad.count) blob(s) quarantined); submit the job again — it will run again",
            data: ["job_id": .string(jobID), "quarantined": .array(bad.map { .string($0) })])
    }
}
