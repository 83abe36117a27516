import RCHCore

/// Why `job_key_inputs` (or a job spec / config) was refused.
///
/// `failure_kind=CLASSIFIER_REJECTED` (exit 10): the invocation cannot become a job as given.
public struct JobKeyError: LaneError, Equatable {
    /// JSON-pointer-like location of the problem (`/destination/os_version`).
    public let path: String
    public let message: String
    public var failureKind: FailureKind { .classifierRejected }
    public var failureSubkind: String? { "INVALID_JOB_KEY_INPUTS" }
    /// The message first (what is wrong and what to do), then where (a JSON pointer or a file).
    public var description: String { path.isEmpty ? message : "\(message) (at \(path))" }

    public init(_ path: String, _ message: String) {
        self.path = path
        self.message = message
    }
}
