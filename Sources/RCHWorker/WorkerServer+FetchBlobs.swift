import RCHBundle
import RCHCore
import RCHProtocol
import RCHStore

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

extension WorkerServer {
    /// At most this many blobs per `fetch_blobs` request.
    static let maxFetchBlobs = 100_000

    /// `fetch_blobs {job_id, blobs?}` (feature `fetch_blobs`), the delta form of `fetch`:
    /// - without `blobs`: `{job_id, manifest, files}` — the job's `manifest.json` (parsed) and, as exact text, the
    ///   three files the manifest does not list (`manifest.json`, `attestation.json`, `job_index.json`);
    /// - with `blobs` (digests of file entries of that manifest, each once): a framed reply whose stream is a
    ///   blob pack (``BlobPack``: canonical tar, zstd, files named by their digest) of exactly those blobs.
    /// Availability rules are those of `fetch` (not complete → BUSY, removed → ARTIFACTS_GONE), and the job is
    /// held from retention while it is served.
    func fetchBlobs(_ p: JSONObject) throws -> Reply {
        let jobID = try knownJob(p, allowed: ["job_id", "blobs"], op: "fetch_blobs")
        let (dir, hold) = try committedJob(jobID)
        let manifest = try JSONParser().parse(try DurableFile.read(dir + "/manifest.json"))
        var files: [SHA256Digest: (path: String, size: UInt64)] = [:]
        for e in manifest["entries"]?.arrayValue ?? [] where e["type"]?.stringValue == "file" {
            guard let path = e["path"]?.stringValue, let size = e["size"]?.intValue,
                let sha = e["sha256"]?.stringValue.flatMap({ SHA256Digest(hex: $0) })
            else { throw RPCError(.internalError, "manifest.json of \(jobID) is malformed") }
            files[sha] = (path, UInt64(size))
        }
        guard let wanted = p["blobs"] else {
            var small = JSONObject()
            for name in ArtifactManifest.excluded.sorted() {
                small[name] = .string(String(decoding: try DurableFile.read(dir + "/" + name), as: UTF8.self))
            }
            withExtendedLifetime(hold) {}
            return .payload(["job_id": .string(jobID), "manifest": manifest, "files": .object(small)])
        }
        guard let list = wanted.arrayValue, list.count <= Self.maxFetchBlobs else {
            throw RPCError.invalid("payload.blobs must be an array of at most \(Self.maxFetchBlobs) digests")
        }
        let artifacts = JobArtifacts(jobs: jobs, jobID: jobID)
        var named: [(path: String, sha256: SHA256Digest)] = []
        var sizes: [UInt64] = []
        var seen = Set<SHA256Digest>()
        for v in list {
            guard let d = v.stringValue.flatMap({ SHA256Digest(hex: $0) }), seen.insert(d).inserted else {
                throw RPCError.invalid("payload.blobs must hold distinct 64-hex digests")
            }
            guard let f = files[d] else {
                throw RPCError.invalid("blob \(d.hex) is not a file of job \(jobID)'s manifest")
            }
            named.append((f.path, d))
            sizes.append(f.size)
        }
        let resolved = try artifacts.resolve(named, jobID: jobID)
        let items = named.indices.map { (digest: named[$0].sha256, size: sizes[$0], path: resolved[$0]) }
        let temp = try TempFile(directory: jobs.directory(jobID))
        do {
            _ = try BlobPack.write(items, to: temp)
            let path = jobs.directory(jobID) + "/fetch-blobs-" + String(UInt64.random(in: 0...UInt64.max), radix: 36)
            try temp.commit(to: path, replace: false, durable: false)
            let stream = try describeFile(path, compression: .zstd)
            return .framed(
                ["job_id": .string(jobID), "blobs": .int(Int64(items.count)), "stream": stream.json], file: path,
                length: stream.contentLength, hold: hold, temporary: true)
        } catch {
            temp.discard()
            if error is BundleError { throw artifacts.damaged(items.map(\.digest), jobID: jobID, error: error) }
            throw error
        }
    }
}
