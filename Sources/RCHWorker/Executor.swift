import Foundation
import RCHCore
import RCHJob
import RCHStore
import SystemPackage

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// What the runner hands a backend: everything it may use, nothing else.
public struct ExecutionRequest: Sendable {
    public var jobID: String
    public var runID: String
    public var jobKey: SHA256Digest
    public var action: String
    public var sanitizedArgv: [String]
    public var developerDir: String
    public var profile: ArtifactProfile
    /// The isolated source checkout (the backend's working directory).
    public var sourceDirectory: String
    /// Where artifacts go (`build.log` is appended to while running).
    public var artifactsDirectory: String
    /// The backend's whole environment (already filtered by the allowlist, with DEVELOPER_DIR set).
    public var environment: [String: String]
    public var deadlineNanos: Int64
    /// The job's `events.jsonl` (the executor may add its own stage events).
    public var events: JobEvents
    /// `-derivedDataPath` (a cache or a private directory; see ``WorkerCaches``).
    public var derivedDataPath: String
    /// `-clonedSourcePackagesDirPath` when the SwiftPM cache is shared, else nil.
    public var sourcePackagesPath: String?
    /// The job's destination (for ephemeral provisioning).
    public var destination: JobKeyInputs.Destination
    /// Whether a job is still active on this worker (ephemeral leftovers of other jobs are swept).
    public var isActiveJob: @Sendable (String) -> Bool
}

/// How a backend run ended.
public struct ExecutionOutcome: Sendable {
    public enum Status: String, Sendable { case success, failed, cancelled }
    public var status: Status
    public var backendExitCode: Int?
    public var termSignal: String?
    public var failureKind: FailureKind?
    public var failureSubkind: String?
    public var message: String
    /// Ephemeral provisioning: the simulator the job ran on, and whether deleting it failed.
    public var simulatorUDID: String?
    public var ephemeralCleanupFailed: Bool?

    public init(
        status: Status, backendExitCode: Int? = nil, termSignal: String? = nil, failureKind: FailureKind? = nil,
        failureSubkind: String? = nil, message: String
    ) {
        self.status = status
        self.backendExitCode = backendExitCode
        self.termSignal = termSignal
        self.failureKind = failureKind
        self.failureSubkind = failureSubkind
        self.message = message
    }
}

/// The executor seam: a backend that turns a materialised source into artifacts.
///
/// Contract: write `build.log` (appending, so `tail` can follow it) and any backend artifacts into
/// `artifactsDirectory`; poll `cancelled()` at least every 100 ms and stop promptly when it turns true
/// (returning `.cancelled`); stop at the deadline (`TIMEOUT_OVERALL`). The runner writes summary,
/// manifest, attestation and job_index afterwards — a backend never does.
public protocol Executor: Sendable {
    var backendName: String { get }
    var backendVersion: String { get }
    func execute(_ request: ExecutionRequest, cancelled: @escaping @Sendable () -> Bool) throws -> ExecutionOutcome
}

/// The environment a backend sees: only allowlisted names from the worker's environment, then
/// `DEVELOPER_DIR` from the job's toolchain. Returns it with the audit record (`executor_env.json`).
public func executorEnvironment(
    allowlist: [String], developerDir: String,
    from env: [String: String] = ProcessInfo.processInfo.environment
) -> ([String: String], JSONValue) {
    let allowed = Set(allowlist)
    var out: [String: String] = [:]
    var dropped: [String] = []
    for (k, v) in env { if allowed.contains(k) { out[k] = v } else { dropped.append(k) } }
    out["DEVELOPER_DIR"] = developerDir
    let record = JSONValue.obj([
        "passed_keys": .array(out.keys.filter { $0 != "DEVELOPER_DIR" }.sorted().map { .string($0) }),
        "dropped_keys": .array(dropped.sorted().map { .string($0) }),
        "overrides": .array([.obj(["key": .string("DEVELOPER_DIR"), "value": .string(developerDir)])]),
    ])
    return (out, record)
}

/// Appends to `build.log` (created if needed).
public final class LogWriter {
    let fd: Int32
    public init(path: String) throws {
        fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw SystemError("open", path: path, errno: Errno(rawValue: errno)) }
    }
    deinit { close(fd) }
    /// Appends one line (best effort: a full disk must not turn into a second failure).
    public func line(_ s: String) { try? FileDescriptor(rawValue: fd).writeAll(Array((s + "\n").utf8)) }
    public var rawDescriptor: Int32 { fd }
}
