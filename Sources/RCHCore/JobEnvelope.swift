/// The envelope every job-scoped JSON artifact carries (PLAN §6): `schema_version` 1,
/// `schema_id` `rch-xcode/<name>@1`, `created_at`, `run_id`, `job_id`, `job_key`, then the file's own members.
public struct JobEnvelope: Sendable {
    public var runID: String
    public var jobID: String
    public var jobKey: String

    public init(runID: String, jobID: String, jobKey: String) {
        self.runID = runID
        self.jobID = jobID
        self.jobKey = jobKey
    }

    public func document(_ name: String, _ members: JSONObject, createdAt: String = Timestamp.now()) -> JSONValue {
        var o = JSONObject([
            ("schema_version", .int(1)), ("schema_id", .string("rch-xcode/\(name)@1")),
            ("created_at", .string(createdAt)),
            ("run_id", .string(runID)), ("job_id", .string(jobID)), ("job_key", .string(jobKey)),
        ])
        for (k, v) in members.members { o[k] = v }
        return .object(o)
    }
}
