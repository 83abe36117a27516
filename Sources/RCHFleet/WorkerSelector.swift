import Foundation
import RCHCore
import RCHHost
import RCHJob
import RCHStore

/// Chooses the worker of a run from the inventory (PLAN §17). The one entry point of fleet selection.
///
/// Algorithm, in order; every candidate is recorded with the reason it was kept or dropped:
/// 1. Candidates: the inventory's workers (the embedded `local` only when the inventory names none).
/// 2. Required tags: `macos`, `xcode` and the repository's `[worker] tags`; a worker lacking one is dropped.
/// 3. Capability snapshots, probed in parallel: the host's cached probe while younger than the worker's
///    `probe_ttl_seconds`, else a fresh probe (bounded by the connect timeout). Unreachable or
///    incompatible workers are dropped and listed in `probe_failures` — never fatal while another remains.
/// 4. Constraints: a usable identity, the repository's `xcode_build`/`xcode_version`, and every step's
///    destination resolvable on that worker (the job inputs are built exactly as for the submit).
/// 5. Order. `deterministic`: priority (higher first), then name — nothing time-varying. `adaptive`: priority,
///    then from one `affinity` call per candidate (bounded by `affinityTimeoutSeconds`): a free slot, cache
///    affinity (every step's result cached > the source present > nothing), more free slots, lower load,
///    more free disk, then name. A candidate whose metrics could not be read ranks after those with metrics.
public struct WorkerSelector {
    public var inventory: [WorkerEntry]
    public var hostStore: LocalStore
    public var requirements: FleetRequirements
    /// `[timeouts] connect_seconds` of the run (overrides each worker's `connect_timeout_seconds`).
    public var connectSeconds: Int64?
    public var affinityTimeoutSeconds: Double = 5

    /// What the run needs from its worker.
    public struct Job: Sendable {
        public var argvs: [[String]]
        public var sourceSHA256: SHA256Digest
        public var provisioning = "existing"
        public var pinned = false
        public var namespace = "default"
        public var profile = "minimal"

        public init(argvs: [[String]], sourceSHA256: SHA256Digest) {
            self.argvs = argvs
            self.sourceSHA256 = sourceSHA256
        }
    }

    public init(inventory: [WorkerEntry], hostStore: LocalStore, requirements: FleetRequirements) {
        self.inventory = inventory
        self.hostStore = hostStore
        self.requirements = requirements
    }

    /// The chosen worker's client (negotiated) and the record for `worker_selection.json`.
    public func select(_ job: Job) throws -> (client: WorkerClient, record: SelectionRecord) {
        let pool = inventory.contains(where: \.fromInventory) ? inventory.filter(\.fromInventory) : inventory
        var candidates: [SelectionRecord.Candidate] = []
        var eligible: [WorkerEntry] = []
        for w in pool {
            var c = SelectionRecord.Candidate(
                worker: w.name, host: w.host, tags: w.tags, priority: w.priority, kept: false, reason: "")
            let missing = requirements.tags.filter { !w.tags.contains($0) }
            if missing.isEmpty {
                eligible.append(w)
            } else {
                c.reason = "lacks tags " + missing.joined(separator: ", ")
            }
            candidates.append(c)
        }
        let probes = Probes.run(eligible, hostStore: hostStore, connectSeconds: connectSeconds)
        var failures: [SelectionRecord.ProbeFailure] = []
        var errors: [String: any LaneError] = [:]  // why each dropped candidate was dropped, as an error
        var kept: [(client: WorkerClient, keys: [SHA256Digest])] = []
        for p in probes {
            let i = candidates.firstIndex { $0.worker == p.worker.name }!
            candidates[i].probeDurationMs = p.durationMs
            guard let client = p.client else {
                if let e = p.failure as? LaneError { errors[p.worker.name] = e }
                failures.append(.init(worker: p.worker.name, error: p.error ?? "unknown", durationMs: p.durationMs))
                candidates[i].reason = "probe failed: " + (p.error ?? "unknown")
                continue
            }
            candidates[i].snapshotSource = client.probeSource
            candidates[i].snapshotAgeSeconds = client.probeAgeSeconds
            switch Self.constraints(client, job, requirements) {
            case .failure(let why):
                candidates[i].reason = why.reason
                if let e = why.error { errors[p.worker.name] = e }
            case .success(let keys):
                candidates[i].kept = true
                kept.append((client, keys))
            }
        }
        guard !kept.isEmpty else {
            // One candidate: its own error (exit code and all) says best what is wrong.
            let only = candidates.count == 1 ? errors[candidates[0].worker] : nil
            throw NoEligibleWorker(candidates: candidates, probeFailures: failures, only: only)
        }
        var ranked = kept.map { Ranked(client: $0.client, keys: $0.keys) }
        if requirements.mode == .adaptive {
            Affinity.measure(&ranked, job: job, timeoutSeconds: affinityTimeoutSeconds)
        }
        ranked.sort { $0.precedes($1, adaptive: requirements.mode == .adaptive) }
        for (position, r) in ranked.enumerated() {
            let i = candidates.firstIndex { $0.worker == r.client.worker.name }!
            candidates[i].metrics = r.metricsJSON
            candidates[i].reason = position == 0 ? "chosen: " + r.why : "ranked \(position + 1): " + r.why
        }
        let chosen = ranked[0].client
        let p = chosen.probeReply ?? [:]
        let record = SelectionRecord(
            mode: requirements.mode.rawValue, requiredTags: requirements.tags, candidates: candidates,
            probeFailures: failures, selected: chosen.worker.name, selectedHost: chosen.worker.host,
            negotiatedProtocolVersion: chosen.protocolVersion ?? 0,
            workerProtocolRange: (p["protocol_min"]?.intValue ?? 0, p["protocol_max"]?.intValue ?? 0),
            snapshotSource: chosen.probeSource, snapshotAgeSeconds: chosen.probeAgeSeconds,
            capabilitiesSHA256: p["capabilities_sha256"]?.stringValue)
        return (chosen, record)
    }

    /// The job keys of every step on this worker, or why it cannot run the job.
    static func constraints(_ client: WorkerClient, _ job: Job, _ req: FleetRequirements) -> Result<
        [SHA256Digest], SelectionDrop
    > {
        let caps = client.capabilities ?? .null
        if let why = caps["identity_error"]?.stringValue {
            return .failure(
                .init("cannot run jobs: \(why)", WorkerUnusable(message: "the worker cannot run jobs: \(why)")))
        }
        if let why = req.xcodeMismatch(caps) { return .failure(.init(why)) }
        var keys: [SHA256Digest] = []
        for argv in job.argvs {
            do {
                let inputs = try JobInputsBuilder.build(
                    argv: argv, sourceSHA256: job.sourceSHA256, capabilities: caps, provisioning: job.provisioning,
                    pinned: job.pinned)
                keys.append(inputs.jobKey)
            } catch {
                return .failure(.init("cannot run '\(argv.joined(separator: " "))': \(error)", error as? LaneError))
            }
        }
        return .success(keys)
    }
}

/// Why a candidate was dropped (the text recorded in `worker_selection.json`).
struct SelectionDrop: Error {
    var reason: String
    var error: (any LaneError)?
    init(_ r: String, _ e: (any LaneError)? = nil) {
        reason = r
        error = e
    }
}

/// No worker of the inventory can run the job: WORKER_INCOMPATIBLE (91), or SSH (20) when every candidate
/// was unreachable. The message lists each worker and why it was dropped.
public struct NoEligibleWorker: LaneError {
    public var candidates: [SelectionRecord.Candidate]
    public var probeFailures: [SelectionRecord.ProbeFailure]
    /// With a single candidate, the error that dropped it (its kind and exit code are reported).
    public var only: (any LaneError)?

    public var failureKind: FailureKind {
        if let only { return only.failureKind }
        return !candidates.isEmpty && candidates.allSatisfy({ $0.reason.hasPrefix("probe failed") })
            ? .ssh : .workerIncompatible
    }
    public var failureSubkind: String? { only.map { $0.failureSubkind } ?? "NO_ELIGIBLE_WORKER" }
    public var exitCode: Int32 { only?.exitCode ?? failureKind.exitCode }
    public var description: String {
        if let only { return only.description }
        return
            "no worker of the inventory can run this job; fix the inventory or the repository's [worker] requirements, "
            + "or name one with --worker ("
            + candidates.map { "\($0.worker): \($0.reason)" }.joined(separator: "; ") + ")"
    }
}
