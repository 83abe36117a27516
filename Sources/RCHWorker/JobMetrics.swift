import RCHCore
import RCHJob
import RCHStore

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// `metrics.json` of a job (`rch-xcode/metrics@1`): the worker's timings, cache use, sizes and the cache key
/// components, written by the runner before the manifest (so it is covered by it and by the attestation).
///
/// Timings the worker cannot know (`bundle_ms`, `upload_ms`, `fetch_ms` — the host's) are null here; the
/// host records them in its step directory (`host_metrics.json`). `cache` says which DerivedData and SwiftPM
/// directories the job used (``WorkerCaches``: mode, and whether they already held files) and `cache_paths`
/// where they are; null when the job never got that far. A result-cache hit keeps the producer's
/// metrics with `cache.result_cache_hit = true` and `timings_from_job_id` naming the job that ran.
struct JobMetrics {
    var submittedAt: Int64?
    var started: Int64
    var materialized: Int64?
    var executed: Int64?
    var sourceBytes: UInt64?
    var namespace = "default"
    var caches: (derivedData: WorkerCaches.Use, spm: WorkerCaches.Use?)?

    init(submittedAt: Int64?, started: Int64) {
        self.submittedAt = submittedAt
        self.started = started
    }

    func ms(_ from: Int64, _ to: Int64) -> Int64 { max(0, (to - from) / 1_000_000) }

    func members(_ inputs: JobKeyInputs, artifactsDirectory dir: String) -> KeyValuePairs<String, JSONValue> {
        let now = Timestamp.nowNanos()
        let t = inputs.toolchain
        var artifactBytes: UInt64 = 0
        var xcresultBytes: UInt64 = 0
        for e in (try? ArtifactManifest.walk(dir)) ?? [] where !e.isDirectory {
            artifactBytes += e.size
            if e.path.hasPrefix("result.xcresult/") { xcresultBytes += e.size }
        }
        return [
            "timings": .obj([
                "bundle_ms": .null, "upload_ms": .null, "fetch_ms": .null,
                "queue_ms": submittedAt.map { .int(ms($0, started)) } ?? .null,
                "materialize_ms": materialized.map { .int(ms(started, $0)) } ?? .null,
                "execute_ms": executed.map { .int(ms(materialized ?? started, $0)) } ?? .null,
                "total_ms": .int(ms(submittedAt ?? started, now)),
            ]),
            "cache": .obj([
                "result_cache_hit": .bool(false),
                "derived_data_hit": caches.map { .bool($0.derivedData.hit) } ?? .null,
                "spm_hit": caches?.spm.map { .bool($0.hit) } ?? .null,
                "derived_data_mode": caches.map { .string($0.derivedData.mode) } ?? .null,
                "spm_mode": caches.map { .string($0.spm?.mode ?? "off") } ?? .null,
            ]),
            "cache_paths": .object(
                JSONObject(
                    [("derived_data", caches?.derivedData.path), ("spm", caches?.spm?.path)].compactMap { k, v in
                        v.map { (k, JSONValue.string($0)) }
                    })),
            "sizes": .obj([
                "source_bundle_bytes": sourceBytes.map { .int(Int64($0)) } ?? .null,
                "artifact_bytes": .int(Int64(artifactBytes)), "xcresult_bytes": .int(Int64(xcresultBytes)),
            ]),
            "cache_key_components": .obj([
                "job_key": .string(inputs.jobKey.hex), "namespace": .string(namespace),
                "xcode_build": .string(t.xcodeBuild), "macos_version": .string(t.macosVersion),
                "macos_build": .string(t.macosBuild), "arch": .string(t.arch),
            ]),
            "timings_from_job_id": .null,
        ]
    }
}

extension WorkerJobs {
    /// When `submit` accepted the job (the submission record's modification time), or nil.
    func submittedNanos(_ jobID: String) -> Int64? {
        var st = stat()
        guard stat(control(jobID) + "/submit.json", &st) == 0 else { return nil }
        #if canImport(Darwin)
            return Int64(st.st_mtimespec.tv_sec) * 1_000_000_000 + Int64(st.st_mtimespec.tv_nsec)
        #else
            return Int64(st.st_mtim.tv_sec) * 1_000_000_000 + Int64(st.st_mtim.tv_nsec)
        #endif
    }
}
