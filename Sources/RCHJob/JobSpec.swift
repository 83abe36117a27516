import RCHCore

/// `job.json` (`rch-xcode/job@1`), the JobSpec a host sends for one step.
///
/// Invariant: `job.json` and `job_key_inputs.json` are written as RFC 8785 canonical JSON, so the
/// `job_key_inputs` member of `job.json` is byte-for-byte the content of `job_key_inputs.json`, and
/// `job_key` is the SHA-256 of exactly those bytes.
public struct JobSpec: Sendable {
    public static let schemaID = "rch-xcode/job@1"
    public enum ArtifactProfile: String, Sendable, CaseIterable { case minimal, rich }

    public var runID: String
    public var jobID: String
    public var inputs: JobKeyInputs
    public var effectiveConfig: JSONObject
    public var artifactProfile: ArtifactProfile
    public var createdAt: String

    public init(
        runID: String, jobID: String, inputs: JobKeyInputs, effectiveConfig: JSONObject,
        artifactProfile: ArtifactProfile = .minimal, createdAt: String = Timestamp.now()
    ) throws(IdentifierError) {
        self.runID = try Identifier.validate(runID, .runID)
        self.jobID = try Identifier.validate(jobID, .jobID)
        self.inputs = inputs
        self.effectiveConfig = effectiveConfig
        self.artifactProfile = artifactProfile
        self.createdAt = createdAt
    }

    /// `build` or `test`, from the xcodebuild action.
    public var action: String { inputs.action }

    public var json: JSONValue {
        .obj([
            "schema_version": .int(1), "schema_id": .string(Self.schemaID), "created_at": .string(createdAt),
            "run_id": .string(runID), "job_id": .string(jobID), "action": .string(action),
            "job_key_inputs": inputs.json, "job_key": .string(inputs.jobKey.hex),
            "effective_config": .object(effectiveConfig), "artifact_profile": .string(artifactProfile.rawValue),
        ])
    }

    /// Writes `job.json` and `job_key_inputs.json` into `directory` (durably, atomically).
    public func write(into directory: String) throws {
        _ = try DurableFile.write(json.canonicalBytes, to: directory + "/job.json")
        _ = try DurableFile.write(inputs.canonicalBytes, to: directory + "/job_key_inputs.json")
    }
}
