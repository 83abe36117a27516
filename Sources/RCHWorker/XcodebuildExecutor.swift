import RCHCore

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// The real backend: runs `xcodebuild` with the job's sanitized argv in the isolated source checkout.
///
/// The process runs in its own session (so cancel reaches the whole tree: SIGTERM to the group, SIGKILL
/// 5 s later), with the allowlisted environment and DEVELOPER_DIR, stdout+stderr appended to
/// `build.log`, a per-job `-derivedDataPath` next to the checkout, and for test actions
/// `-resultBundlePath artifacts/result.xcresult`. Rich-profile files are not synthesised: a run
/// produces what xcodebuild produces, and the cache records the profile those files satisfy.
public struct XcodebuildExecutor: Executor {
    public var path: String
    public var backendVersion: String
    public var backendName: String { "xcodebuild" }

    public init(path: String, version: String) {
        self.path = path
        self.backendVersion = version
    }

    public func execute(_ r: ExecutionRequest, cancelled: @escaping @Sendable () -> Bool) throws -> ExecutionOutcome {
        let log = try LogWriter(path: r.artifactsDirectory + "/build.log")
        var argv = r.sanitizedArgv + ["-derivedDataPath", directoryOf(r.sourceDirectory) + "/DerivedData"]
        if r.action == "test" { argv += ["-resultBundlePath", r.artifactsDirectory + "/result.xcresult"] }
        log.line("$ \(path) " + argv.joined(separator: " "))
        let devnull = open("/dev/null", O_RDONLY | O_CLOEXEC)
        defer { close(devnull) }
        let pid: pid_t
        do {
            pid = try Spawn.start(
                path, argv, environment: r.environment, directory: r.sourceDirectory, stdin: devnull,
                stdout: log.rawDescriptor, stderr: log.rawDescriptor, newSession: true)
        } catch {
            return ExecutionOutcome(
                status: .failed, failureKind: .executor, failureSubkind: "SPAWN",
                message: "cannot start \(path): \(error)")
        }
        var stopping: (since: Int64, outcome: ExecutionOutcome)? = nil
        while true {
            if let exit = Spawn.poll(pid) {
                if let s = stopping { return s.outcome }
                switch exit {
                case .code(0):
                    return ExecutionOutcome(
                        status: .success, backendExitCode: 0, message: "xcodebuild \(r.action) succeeded")
                case .code(let c):
                    return ExecutionOutcome(
                        status: .failed, backendExitCode: Int(c), failureKind: .xcodebuild,
                        message: "xcodebuild \(r.action) failed (exit \(c))")
                case .signal(let s):
                    return ExecutionOutcome(
                        status: .failed, termSignal: Spawn.signalName(s), failureKind: .xcodebuild,
                        message: "xcodebuild was killed by \(Spawn.signalName(s))")
                }
            }
            let now = Timestamp.nowNanos()
            if let s = stopping {
                if now - s.since > 5_000_000_000 { kill(-pid, SIGKILL) }
            } else if cancelled() {
                kill(-pid, SIGTERM)
                stopping = (
                    now,
                    ExecutionOutcome(
                        status: .cancelled, termSignal: "SIGTERM", failureKind: .cancelled,
                        message: "cancelled by request")
                )
            } else if now > r.deadlineNanos {
                kill(-pid, SIGTERM)
                stopping = (
                    now,
                    ExecutionOutcome(
                        status: .failed, termSignal: "SIGTERM", failureKind: .executor,
                        failureSubkind: "TIMEOUT_OVERALL",
                        message: "the job exceeded its overall timeout")
                )
            }
            usleep(50_000)
        }
    }
}
