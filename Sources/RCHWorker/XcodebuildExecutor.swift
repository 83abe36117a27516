import RCHCore
import RCHIdentity
import RCHXcodeReports

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// The real backend: runs `xcodebuild` with the job's sanitized argv in the isolated source checkout.
///
/// The process runs in its own session (so cancel reaches the whole tree: SIGTERM to the group, SIGKILL
/// 5 s later), with the allowlisted environment and DEVELOPER_DIR, stdout+stderr appended to
/// `build.log`, `-derivedDataPath` (and `-clonedSourcePackagesDirPath`) from the worker caches, and for test actions
/// `-resultBundlePath artifacts/result.xcresult`. After a run that was not cancelled, the rich files are
/// derived from what it left (``RichArtifacts``: `build_summary.json` from the log; `test_summary.json` and
/// `junit.xml` through `xcrun xcresulttool`, found on the job's PATH, each call bounded by 120 s); if they
/// cannot be, the reason is an `artifacts/degraded` event and the job's profile stays `minimal`.
public struct XcodebuildExecutor: Executor {
    public var path: String
    public var backendVersion: String
    public var backendName: String { "xcodebuild" }

    public init(path: String, version: String) {
        self.path = path
        self.backendVersion = version
    }

    public func execute(_ request: ExecutionRequest, cancelled: @escaping @Sendable () -> Bool) throws
        -> ExecutionOutcome
    {
        var r = request
        let d = r.destination
        guard d.provisioning == "ephemeral" && d.isSimulator && !d.isGeneric else {
            return try runAndDerive(r, cancelled: cancelled)
        }
        guard let sim = EphemeralSimulator(environment: r.environment) else {
            return ExecutionOutcome(
                status: .failed, failureKind: .executor, failureSubkind: "PROVISIONING",
                message: "ephemeral provisioning needs xcrun on the worker's PATH")
        }
        let swept = sim.sweep(isActive: r.isActiveJob)
        if !swept.isEmpty { r.events.emit("provision", "swept", ["udids": .array(swept.map { .string($0) })]) }
        let udid: String
        switch sim.create(jobID: r.jobID, destination: d) {
        case .failure(let e):
            r.events.emit("provision", "failed", ["reason": .string(e.description)])
            return ExecutionOutcome(
                status: .failed, failureKind: .executor, failureSubkind: "PROVISIONING", message: e.description)
        case .success(let u): udid = u
        }
        r.events.emit("provision", "created", ["udid": .string(udid)])
        r.sanitizedArgv = EphemeralSimulator.argv(r.sanitizedArgv, udid: udid)
        var outcome: ExecutionOutcome
        do { outcome = try runAndDerive(r, cancelled: cancelled) } catch {
            outcome = ExecutionOutcome(
                status: .failed, failureKind: .executor, message: "the executor failed: \(error)")
        }
        // Always deleted: after success, failure, cancel and timeout alike.
        let deleted = sim.delete(udid)
        r.events.emit("provision", deleted ? "deleted" : "delete_failed", ["udid": .string(udid)])
        outcome.simulatorUDID = udid
        outcome.ephemeralCleanupFailed = !deleted
        return outcome
    }

    func runAndDerive(_ r: ExecutionRequest, cancelled: @escaping @Sendable () -> Bool) throws -> ExecutionOutcome {
        let outcome = try runXcodebuild(r, cancelled: cancelled)
        guard outcome.status != .cancelled else { return outcome }
        let xcrun = Xcrun(environment: r.environment)
        let envelope = RichArtifacts.Envelope(runID: r.runID, jobID: r.jobID, jobKey: r.jobKey.hex)
        let (files, degraded) = RichArtifacts.write(action: r.action, into: r.artifactsDirectory, envelope: envelope) {
            args in
            guard let run = xcrun?.run(args), run.ok else { return nil }
            return Array(run.out.utf8)
        }
        r.events.emit(
            "artifacts", degraded == nil ? "derived" : "degraded",
            ["files": .array(files.map { .string($0) }), "reason": degraded.map { .string($0) } ?? .null])
        return outcome
    }

    func runXcodebuild(_ r: ExecutionRequest, cancelled: @escaping @Sendable () -> Bool) throws -> ExecutionOutcome {
        let log = try LogWriter(path: r.artifactsDirectory + "/build.log")
        var argv = r.sanitizedArgv + ["-derivedDataPath", r.derivedDataPath]
        if let packages = r.sourcePackagesPath { argv += ["-clonedSourcePackagesDirPath", packages] }
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
