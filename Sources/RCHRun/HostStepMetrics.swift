import RCHCore

/// `steps/<index>-<action>/host_metrics.json` (`rch-xcode/host_metrics@1`): what the host measured of one step
/// — the timings the worker's `metrics.json` cannot know. Outside the fetched artifacts (which are covered
/// by the worker's manifest and attestation), rewritten when a resumed run finishes the step.
struct HostStepMetrics {
    var started: Int64
    var submitted: Int64?
    var followed: Int64?
    var fetched: Int64?
    var fetchedBytes: UInt64?

    init(started: Int64) { self.started = started }

    private func ms(_ a: Int64?, _ b: Int64?) -> JSONValue {
        guard let a, let b else { return .null }
        return .int(max(0, (b - a) / 1_000_000))
    }

    func write(_ dir: String, runID: String, jobID: String, jobKey: SHA256Digest, cached: Bool) throws {
        let doc = JobEnvelope(runID: runID, jobID: jobID, jobKey: jobKey.hex).document(
            "host_metrics",
            [
                "cached": .bool(cached),
                "timings": .obj([
                    "submit_ms": ms(started, submitted), "follow_ms": ms(submitted, followed),
                    "fetch_ms": ms(followed, fetched), "total_ms": ms(started, Timestamp.nowNanos()),
                ]),
                "fetched_bytes": fetchedBytes.map { .int(Int64($0)) } ?? .null,
            ])
        _ = try DurableFile.write(doc.canonicalBytes + [10], to: dir + "/host_metrics.json", replace: true)
    }
}
