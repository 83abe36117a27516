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
    /// The process exit status: the kind's code, except for the command line's own classes of error
    /// (``CommandExit``).
    var exitCode: Int32 { get }
}

extension LaneError {
    public var failureSubkind: String? { nil }
    public var exitCode: Int32 { failureKind.exitCode }
}

/// Exit codes of the command line itself, beside the lane's table (BSD `sysexits` values, so they never
/// collide with the lane's 10–93): the command was used wrongly, named something that does not exist, or a
/// configuration file is wrong.
public enum CommandExit {
    /// Usage: a bad flag or argument (swift-argument-parser's validation errors).
    public static let usage: Int32 = 64
    /// Not found: a job id the worker does not know.
    public static let notFound: Int32 = 66
    /// Configuration: a missing or malformed inventory, worker.toml or .rch/xcode.toml.
    public static let config: Int32 = 78
}
