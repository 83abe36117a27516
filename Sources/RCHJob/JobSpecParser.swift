import RCHCore

/// The strict reading of a submitted `job.json` (what `submit` accepts).
///
/// Rules: exactly the members ``JobSpec/json`` writes — `schema_version` (1), `schema_id`, `created_at`
/// (RFC 3339 UTC), `run_id`, `job_id`, `action` (`build`|`test`, equal to the action of the argv),
/// `job_key_inputs` (validated as in §9), `job_key` (64 hex), `effective_config` (an object),
/// `artifact_profile` (`minimal`|`rich`, optional: default `minimal`). In `effective_config`, `cache` (if
/// present) is an object whose `namespace` is a valid namespace string and whose other members are
/// `derived_data` (`off|per_job|shared`) and `spm` (`off|shared`); `artifacts.profile` (if present) is
/// `minimal`|`rich`. A wrong type or an unknown member is refused naming the field; nothing is defaulted
/// for a value that is present but wrong.
extension JobSpec {
    public struct Submitted: Sendable {
        public var spec: JobSpec
        public var jobKey: SHA256Digest
        /// `effective_config.cache.namespace`, or `default`.
        public var namespace: String
    }

    public static func parse(_ v: JSONValue) throws(JobSpecError) -> Submitted {
        guard let o = v.objectValue else { throw JobSpecError("job", "must be an object (job.json)") }
        let allowed: Set<String> = [
            "schema_version", "schema_id", "created_at", "run_id", "job_id", "action", "job_key_inputs", "job_key",
            "effective_config", "artifact_profile",
        ]
        for k in o.keys where !allowed.contains(k) {
            throw JobSpecError("job.\(k.prefix(64))", "is not a member of job.json")
        }
        guard o["schema_version"] == .int(1) else { throw JobSpecError("job.schema_version", "must be the integer 1") }
        guard o["schema_id"]?.stringValue == schemaID else {
            throw JobSpecError("job.schema_id", "must be \(schemaID)")
        }
        guard let created = o["created_at"]?.stringValue, Timestamp.isValid(created) else {
            throw JobSpecError("job.created_at", "must be an RFC 3339 UTC timestamp string")
        }
        func id(_ k: String, _ kind: Identifier.Kind) throws(JobSpecError) -> String {
            guard let s = o[k]?.stringValue else { throw JobSpecError("job.\(k)", "is required (a string)") }
            guard Identifier.isValid(s, kind) else {
                throw JobSpecError("job.\(k)", IdentifierError(kind: kind, value: String(s.prefix(80))).description)
            }
            return s
        }
        let runID = try id("run_id", .runID)
        let jobID = try id("job_id", .jobID)
        guard let keyHex = o["job_key"]?.stringValue, let key = SHA256Digest(hex: keyHex) else {
            throw JobSpecError("job.job_key", "must be 64 lowercase hex characters")
        }
        guard let inputsJSON = o["job_key_inputs"] else { throw JobSpecError("job.job_key_inputs", "is required") }
        let inputs: JobKeyInputs
        do { inputs = try JobKeyInputs(json: inputsJSON) } catch {
            throw JobSpecError(
                "job.job_key_inputs" + error.path.replacingOccurrences(of: "/", with: "."), error.message)
        }
        guard let action = o["action"]?.stringValue, action == "build" || action == "test" else {
            throw JobSpecError("job.action", "must be \"build\" or \"test\"")
        }
        guard action == inputs.action else {
            throw JobSpecError("job.action", "is \(action) but sanitized_argv runs \(inputs.action)")
        }
        var profile = ArtifactProfile.minimal
        if let p = o["artifact_profile"] {
            guard let s = p.stringValue, let parsed = ArtifactProfile(rawValue: s) else {
                throw JobSpecError("job.artifact_profile", "must be \"minimal\" or \"rich\"")
            }
            profile = parsed
        }
        guard let config = o["effective_config"]?.objectValue else {
            throw JobSpecError("job.effective_config", "must be an object (the merged configuration)")
        }
        let namespace = try cacheNamespace(config)
        if let artifacts = config["artifacts"] {
            guard let a = artifacts.objectValue else {
                throw JobSpecError("job.effective_config.artifacts", "must be a table")
            }
            if let p = a["profile"], p.stringValue.flatMap(ArtifactProfile.init(rawValue:)) == nil {
                throw JobSpecError("job.effective_config.artifacts.profile", "must be \"minimal\" or \"rich\"")
            }
        }
        let spec: JobSpec
        do {
            spec = try JobSpec(
                runID: runID, jobID: jobID, inputs: inputs, effectiveConfig: config, artifactProfile: profile,
                createdAt: created)
        } catch {
            throw JobSpecError("job", error.description)
        }
        return Submitted(spec: spec, jobKey: key, namespace: namespace)
    }

    static func cacheNamespace(_ config: JSONObject) throws(JobSpecError) -> String {
        guard let cache = config["cache"] else { return "default" }
        guard let c = cache.objectValue else { throw JobSpecError("job.effective_config.cache", "must be a table") }
        let values: [String: Set<String>] = ["derived_data": ["off", "per_job", "shared"], "spm": ["off", "shared"]]
        for (k, v) in c.members where k != "namespace" {
            guard let allowed = values[k] else {
                throw JobSpecError("job.effective_config.cache.\(k.prefix(64))", "is not a cache setting")
            }
            guard let s = v.stringValue, allowed.contains(s) else {
                throw JobSpecError(
                    "job.effective_config.cache.\(k)", "must be one of \(allowed.sorted().joined(separator: ", "))")
            }
        }
        guard let ns = c["namespace"] else { return "default" }
        guard let s = ns.stringValue else {
            throw JobSpecError("job.effective_config.cache.namespace", "must be a string")
        }
        guard Identifier.isValid(s, .namespace) else {
            throw JobSpecError(
                "job.effective_config.cache.namespace",
                IdentifierError(kind: .namespace, value: String(s.prefix(80))).description)
        }
        return s
    }
}

/// A submitted `job.json` that is not what a host writes (`INVALID_REQUEST` naming `field`).
public struct JobSpecError: Error, Equatable, CustomStringConvertible, Sendable {
    public let field: String
    public let message: String
    public init(_ field: String, _ message: String) {
        self.field = field
        self.message = message
    }
    public var description: String { "\(field) \(message)" }
}
