import RCHCore
import RCHJob
import RCHProtocol
import RCHStore

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

extension WorkerServer {
    /// At most this many job keys per `affinity` request (one per step of a run).
    static let maxAffinityKeys = 64

    /// `affinity {source_sha256?, job_keys?, namespace?, profile?}` (feature `affinity`): what a host's adaptive
    /// worker selection asks each candidate in one round trip — live load (`active_jobs`, `max_concurrent_jobs`,
    /// `free_slots`, `disk_free_bytes`, `load_average_1m`) and cache affinity (`source_present`, and per job key
    /// whether a result of this worker's executor class satisfying `profile` is cached). Read-only: nothing is
    /// counted in the hit/miss statistics and nothing is written.
    func affinity(_ p: JSONObject) throws -> JSONObject {
        try Self.only(p, ["source_sha256", "job_keys", "namespace", "profile"], op: "affinity")
        let source = try p["source_sha256"].map { _ in try Self.digest(p, "source_sha256") }
        let keyValues = p["job_keys"]?.arrayValue ?? []
        if p["job_keys"] != nil && p["job_keys"]?.arrayValue == nil {
            throw RPCError.invalid("payload.job_keys must be an array of job keys")
        }
        guard keyValues.count <= Self.maxAffinityKeys else {
            throw RPCError.invalid("payload.job_keys holds at most \(Self.maxAffinityKeys) keys")
        }
        let keys = try keyValues.map { v -> SHA256Digest in
            guard let s = v.stringValue, let d = SHA256Digest(hex: s) else {
                throw RPCError.invalid("payload.job_keys must hold 64 lowercase hex characters each")
            }
            return d
        }
        let namespace =
            try p["namespace"].map { v -> String in
                guard let s = v.stringValue, Identifier.isValid(s, .namespace) else {
                    throw RPCError.invalid("payload.namespace must be a cache namespace")
                }
                return s
            } ?? "default"
        let profile =
            try p["profile"].map { v -> ArtifactProfile in
                guard let s = v.stringValue, let pr = ArtifactProfile(rawValue: s) else {
                    throw RPCError.invalid("payload.profile must be minimal or rich")
                }
                return pr
            } ?? .minimal
        let results = ResultStore(store: store)
        var cached = JSONObject()
        for k in keys {
            let hit = results.uncountedLookup(
                jobKey: k, namespace: namespace, profile: profile, executorClass: provider.selection.executorClass)
            if case .hit = hit { cached[k.hex] = .bool(true) } else { cached[k.hex] = .bool(false) }
        }
        let active = WorkerJobs(store: store).activeCount()
        var st = statvfs()
        let free: Int64 = statvfs(store.root, &st) == 0 ? Int64(UInt64(st.f_bavail) * UInt64(st.f_frsize)) : 0
        var load = [Double](repeating: 0, count: 3)
        let loadKnown = getloadavg(&load, 3) >= 1
        return [
            "source_present": source.map { .bool(SourceStore(store: store).has($0)) } ?? .null,
            "results": .object(cached),
            "active_jobs": .int(Int64(active)),
            "max_concurrent_jobs": .int(Int64(config.maxConcurrentJobs)),
            "free_slots": .int(Int64(max(0, config.maxConcurrentJobs - active))),
            "disk_free_bytes": .int(free),
            "load_average_1m": loadKnown ? .double((load[0] * 100).rounded() / 100) : .null,
        ]
    }
}
