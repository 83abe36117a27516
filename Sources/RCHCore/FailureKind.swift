/// The lane's failure taxonomy and its stable exit codes.
///
/// Invariant: these numbers are a public scripting contract (`summary.json` `exit_code`, process exit
/// status of every command). They never change meaning; new kinds get new numbers.
public enum FailureKind: String, Sendable, CaseIterable, Codable {
    case classifierRejected = "CLASSIFIER_REJECTED"
    case ssh = "SSH"
    case transfer = "TRANSFER"
    case executor = "EXECUTOR"
    case xcodebuild = "XCODEBUILD"
    case mcp = "MCP"
    case artifacts = "ARTIFACTS"
    case cancelled = "CANCELLED"
    case workerBusy = "WORKER_BUSY"
    case workerIncompatible = "WORKER_INCOMPATIBLE"
    case bundler = "BUNDLER"
    case attestation = "ATTESTATION"

    /// The stable process exit code for this kind (0 is success and has no kind).
    public var exitCode: Int32 {
        switch self {
        case .classifierRejected: 10
        case .ssh: 20
        case .transfer: 30
        case .executor: 40
        case .xcodebuild: 50
        case .mcp: 60
        case .artifacts: 70
        case .cancelled: 80
        case .workerBusy: 90
        case .workerIncompatible: 91
        case .bundler: 92
        case .attestation: 93
        }
    }
}

/// An error that maps onto the lane's failure taxonomy.
///
/// Every error a command can report conforms, so the command layer turns it into
/// `failure_kind`/`failure_subkind` and the stable exit code without knowing its concrete type.
public protocol LaneError: Error, CustomStringConvertible, Sendable {
    var failureKind: FailureKind { get }
    /// A more specific, stable machine-readable reason (e.g. `SIZE_EXCEEDED`), when there is one.
    var failureSubkind: String? { get }
}

extension LaneError {
    public var failureSubkind: String? { nil }
}
