import RCHCore
import RCHHost

/// `worker_selection.json` (`rch-xcode/worker_selection@1`, written at `<run_id>/` beside the
/// `capabilities.json` snapshot the choice was made with): how the run's worker was chosen.
///
/// Invariant: every candidate of the inventory appears once, kept or dropped, with the reason; every
/// value that ordered the kept ones (priority; in adaptive mode the live metrics and affinity) is in
/// `candidates[].metrics`; `selected_worker` is the first kept candidate in `order`.
public struct SelectionRecord: Sendable {
    public struct Candidate: Sendable {
        public var worker: String
        public var host: String?
        public var tags: [String]
        public var priority: Int64
        public var kept: Bool
        /// Why it was dropped, or why it ranks where it does.
        public var reason: String
        public var snapshotSource: String?
        public var snapshotAgeSeconds: Int64?
        public var probeDurationMs: Int64?
        /// Adaptive mode: the values used (free_slots, active_jobs, load_average_1m, disk_free_bytes,
        /// source_present, results_cached, affinity), or why they are missing.
        public var metrics: JSONValue = .null

        var json: JSONValue {
            .obj([
                "worker": .string(worker), "host": host.map { .string($0) } ?? .null,
                "tags": .array(tags.map { .string($0) }), "priority": .int(priority), "kept": .bool(kept),
                "reason": .string(reason), "snapshot_source": snapshotSource.map { .string($0) } ?? .null,
                "snapshot_age_seconds": snapshotAgeSeconds.map { .int($0) } ?? .null,
                "probe_duration_ms": probeDurationMs.map { .int($0) } ?? .null, "metrics": metrics,
            ])
        }
    }

    public struct ProbeFailure: Sendable {
        public var worker: String
        public var error: String
        public var durationMs: Int64
    }

    /// `deterministic`, `adaptive`, or `forced` (`--worker NAME`: no selection took place).
    public var mode: String
    public var requiredTags: [String]
    public var candidates: [Candidate]
    public var probeFailures: [ProbeFailure]
    public var selected: String
    public var selectedHost: String?
    public var negotiatedProtocolVersion: Int
    public var workerProtocolRange: (min: Int64, max: Int64)
    public var snapshotSource: String
    public var snapshotAgeSeconds: Int64
    public var capabilitiesSHA256: String?
    public var createdAt = Timestamp.now()

    /// The record of a run whose worker was named on the command line.
    public static func forced(_ client: WorkerClient) -> SelectionRecord {
        let w = client.worker
        let p = client.probeReply ?? [:]
        var c = Candidate(
            worker: w.name, host: w.host, tags: w.tags, priority: w.priority, kept: true,
            reason: "named with --worker")
        c.snapshotSource = client.probeSource
        c.snapshotAgeSeconds = client.probeAgeSeconds
        return SelectionRecord(
            mode: "forced", requiredTags: [], candidates: [c], probeFailures: [], selected: w.name,
            selectedHost: w.host,
            negotiatedProtocolVersion: client.protocolVersion ?? 0,
            workerProtocolRange: (p["protocol_min"]?.intValue ?? 0, p["protocol_max"]?.intValue ?? 0),
            snapshotSource: client.probeSource, snapshotAgeSeconds: client.probeAgeSeconds,
            capabilitiesSHA256: p["capabilities_sha256"]?.stringValue)
    }

    public func json(runID: String) -> JSONValue {
        .obj([
            "schema_version": .int(1), "schema_id": .string("rch-xcode/worker_selection@1"),
            "created_at": .string(createdAt), "run_id": .string(runID),
            "negotiated_protocol_version": .int(Int64(negotiatedProtocolVersion)),
            "worker_protocol_range": .obj(["min": .int(workerProtocolRange.min), "max": .int(workerProtocolRange.max)]),
            "selected_worker": .string(selected), "selected_worker_host": selectedHost.map { .string($0) } ?? .null,
            "selection_mode": .string(mode), "required_tags": .array(requiredTags.map { .string($0) }),
            "candidate_count": .int(Int64(candidates.count)),
            "candidates": .array(candidates.map(\.json)),
            "probe_failures": .array(
                probeFailures.map {
                    .obj([
                        "worker": .string($0.worker), "probe_error": .string($0.error),
                        "probe_duration_ms": .int($0.durationMs),
                    ])
                }),
            "snapshot_source": .string(snapshotSource), "snapshot_age_seconds": .int(snapshotAgeSeconds),
            "capabilities_sha256": capabilitiesSHA256.map { .string($0) } ?? .null,
        ])
    }
}
