import RCHCore
import RCHProtocol
import RCHStore

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// What an operator (`rch-worker jobs`) or a host (`rch-xcode job list`, op `jobs`) sees of a worker's
/// jobs: running, queued and recent ones, newest first.
public struct JobListing: Sendable {
    public struct Item: Sendable {
        public var jobID: String
        public var runID: String
        public var action: String?
        public var state: String
        public var createdAt: String
        public var updatedAt: String
        public var cachedFromJobID: String?

        public var json: JSONValue {
            .obj([
                "job_id": .string(jobID), "run_id": .string(runID), "action": action.map { .string($0) } ?? .null,
                "state": .string(state), "created_at": .string(createdAt), "updated_at": .string(updatedAt),
                "cached_from_job_id": cachedFromJobID.map { .string($0) } ?? .null,
            ])
        }
    }

    public let store: LocalStore
    public let config: WorkerConfig

    public init(store: LocalStore, config: WorkerConfig) {
        self.store = store
        self.config = config
    }

    /// Jobs in `state` (all when nil), newest first, at most `limit`.
    public func list(state: String? = nil, limit: Int = 1000) -> [Item] {
        let jobs = WorkerJobs(store: store)
        var items: [Item] = []
        for name in (try? Directory.list(jobs.root)) ?? [] where Identifier.isValid(name, .jobID) {
            guard let s = jobs.currentState(name, config: config) else { continue }
            if let state, s.state.rawValue != state { continue }
            let job = try? JSONParser().parse(DurableFile.read(jobs.artifacts(name) + "/job.json"))
            let summary = try? JSONParser().parse(DurableFile.read(jobs.artifacts(name) + "/summary.json"))
            items.append(
                Item(
                    jobID: name, runID: s.runID, action: job?["action"]?.stringValue, state: s.state.rawValue,
                    createdAt: s.createdAt, updatedAt: s.updatedAt,
                    cachedFromJobID: summary?["cached_from_job_id"]?.stringValue))
        }
        items.sort { ($0.createdAt, $0.jobID) > ($1.createdAt, $1.jobID) }
        return Array(items.prefix(limit))
    }

    public static let states = ["QUEUED", "RUNNING", "SUCCEEDED", "FAILED", "CANCELLED"]
}

extension WorkerServer {
    /// `jobs {state?, limit?}` → `{jobs: [...]}` (feature `jobs`).
    func listJobs(_ p: JSONObject) throws -> JSONObject {
        try Self.only(p, ["state", "limit"], op: "jobs")
        var state: String? = nil
        if let s = p["state"] {
            guard let v = s.stringValue, JobListing.states.contains(v) else {
                throw RPCError.invalid("payload.state must be one of \(JobListing.states.joined(separator: ", "))")
            }
            state = v
        }
        var limit = 100
        if let l = p["limit"] {
            guard let n = l.intValue, (1...1000).contains(n) else {
                throw RPCError.invalid("payload.limit must be an integer in 1...1000")
            }
            limit = Int(n)
        }
        return ["jobs": .array(JobListing(store: store, config: config).list(state: state, limit: limit).map(\.json))]
    }
}
