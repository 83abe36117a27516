import RCHCore
import RCHStore

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// The spec's mock backend: records exactly what it was asked to run and writes a deterministic
/// artifact set, so every protocol path can be exercised without a Mac.
///
/// Artifacts: `build.log` (the command, DEVELOPER_DIR, the source it saw, progress lines, a result line),
/// `executor_record.json` (argv, developer_dir, environment names, working directory, source file
/// count and bytes), for test actions a `result.xcresult/` tree, and with the rich profile
/// `events.jsonl` plus `build_summary.json` (build) or `test_summary.json` and `junit.xml` (test).
/// Behaviours: `succeed`, `fail` (backend exit 65, `XCODEBUILD`), `hang` (until cancelled or the deadline).
/// The bytes depend only on the request (job key, argv, source), never on time.
public struct RecordingExecutor: Executor {
    public var behaviour: String
    public var durationMs: Int
    public var backendName: String { "recording" }
    public var backendVersion: String { "rch-recording-executor/1" }

    public init(behaviour: String = "succeed", durationMs: Int = 0) {
        self.behaviour = behaviour
        self.durationMs = durationMs
    }

    public func execute(_ r: ExecutionRequest, cancelled: @escaping @Sendable () -> Bool) throws -> ExecutionOutcome {
        let out = r.artifactsDirectory
        let log = try LogWriter(path: out + "/build.log")
        let (fileCount, bytes) = Self.count(r.sourceDirectory)
        log.line("rch recording executor: job_key \(r.jobKey.hex)")
        log.line("$ xcodebuild " + r.sanitizedArgv.joined(separator: " "))
        log.line("DEVELOPER_DIR=\(r.developerDir)")
        log.line("source: \(fileCount) files, \(bytes) bytes")
        let record = JSONValue.obj([
            "argv": .array(r.sanitizedArgv.map { .string($0) }), "developer_dir": .string(r.developerDir),
            "environment_keys": .array(r.environment.keys.sorted().map { .string($0) }),
            "working_directory": .string(lastComponent(r.sourceDirectory)), "source_files": .int(Int64(fileCount)),
            "source_bytes": .int(Int64(bytes)), "action": .string(r.action),
            "artifact_profile": .string(r.profile.rawValue),
        ])
        _ = try DurableFile.write(record.canonicalBytes, to: out + "/executor_record.json", durable: false)

        let steps = 5
        for i in 1...steps {
            if let stop = try wait(ms: durationMs / steps, r, cancelled, log) { return stop }
            log.line("[\(i)/\(steps)] \(r.action == "test" ? "Testing" : "Compiling") step \(i)")
        }
        if behaviour == "hang" {
            log.line("hanging until cancelled")
            while true { if let stop = try wait(ms: 100, r, cancelled, log) { return stop } }
        }
        let failed = behaviour == "fail"
        if r.action == "test" { try writeXCResult(out, r, failed: failed) }
        if r.profile == .rich { try writeRich(out, r, failed: failed) }
        if failed {
            log.line("error: recording executor was told to fail")
            log.line(r.action == "test" ? "** TEST FAILED **" : "** BUILD FAILED **")
            return ExecutionOutcome(
                status: .failed, backendExitCode: 65, failureKind: .xcodebuild,
                message: "xcodebuild \(r.action) failed (exit 65)")
        }
        log.line(r.action == "test" ? "** TEST SUCCEEDED **" : "** BUILD SUCCEEDED **")
        return ExecutionOutcome(status: .success, backendExitCode: 0, message: "\(r.action) succeeded")
    }

    /// Sleeps in 50 ms slices; returns an outcome if the job was cancelled or timed out meanwhile.
    private func wait(ms: Int, _ r: ExecutionRequest, _ cancelled: () -> Bool, _ log: LogWriter) throws
        -> ExecutionOutcome?
    {
        var left = ms
        repeat {
            if cancelled() {
                log.line("cancelled")
                return ExecutionOutcome(
                    status: .cancelled, termSignal: "SIGTERM", failureKind: .cancelled, message: "cancelled by request")
            }
            if Timestamp.nowNanos() > r.deadlineNanos {
                log.line("timed out")
                return ExecutionOutcome(
                    status: .failed, termSignal: "SIGKILL", failureKind: .executor, failureSubkind: "TIMEOUT_OVERALL",
                    message: "the job exceeded its overall timeout")
            }
            let slice = min(left, 50)
            if slice > 0 { usleep(UInt32(slice) * 1000) }
            left -= slice
        } while left > 0
        return nil
    }

    private func writeXCResult(_ out: String, _ r: ExecutionRequest, failed: Bool) throws {
        let base = out + "/result.xcresult"
        try Syscalls.makeDirectories(base + "/Data")
        let plist = """
            <?xml version="1.0" encoding="UTF-8"?>
            <plist version="1.0"><dict><key>version</key><dict><key>major</key><integer>3</integer></dict>\
            <key>rootId</key><string>\(r.jobKey.hex.prefix(16))</string></dict></plist>

            """
        _ = try DurableFile.write(Array(plist.utf8), to: base + "/Info.plist", durable: false)
        let data = "tests=3 failed=\(failed ? 1 : 0) key=\(r.jobKey.hex)\n"
        _ = try DurableFile.write(
            Array(data.utf8), to: base + "/Data/data.0~" + String(r.jobKey.hex.prefix(12)), durable: false)
    }

    private func writeRich(_ out: String, _ r: ExecutionRequest, failed: Bool) throws {
        var events = ""
        for (i, stage) in ["prepare", r.action, "finish"].enumerated() {
            events +=
                JSONValue.obj([
                    "seq": .int(Int64(i)), "stage": .string(stage), "kind": .string("stage_end"),
                    "data": .obj(["ok": .bool(!(failed && stage == r.action))]),
                ]).canonicalString + "\n"
        }
        _ = try DurableFile.write(Array(events.utf8), to: out + "/events.jsonl", durable: false)
        if r.action == "test" {
            let summary = JSONValue.obj([
                "counts": .obj(["passed": .int(failed ? 2 : 3), "failed": .int(failed ? 1 : 0), "skipped": .int(0)]),
                "failing_tests": .array(failed ? [.string("AppTests/testExample")] : []), "duration_ms": .int(0),
            ])
            _ = try DurableFile.write(summary.canonicalBytes, to: out + "/test_summary.json", durable: false)
            let junit = """
                <?xml version="1.0" encoding="UTF-8"?>
                <testsuites tests="3" failures="\(failed ? 1 : 0)"><testsuite name="AppTests" tests="3" failures="\(failed ? 1 : 0)">\
                <testcase classname="AppTests" name="testExample"/></testsuite></testsuites>

                """
            _ = try DurableFile.write(Array(junit.utf8), to: out + "/junit.xml", durable: false)
        } else {
            let summary = JSONValue.obj([
                "targets": .array([.string("App")]), "warning_count": .int(0), "error_count": .int(failed ? 1 : 0),
                "first_error": failed ? .string("recording executor was told to fail") : .null,
            ])
            _ = try DurableFile.write(summary.canonicalBytes, to: out + "/build_summary.json", durable: false)
        }
    }
}

extension RecordingExecutor {
    /// Regular files and their bytes under `dir` (symlinks are not followed).
    static func count(_ dir: String) -> (Int, UInt64) {
        var files = 0
        var bytes: UInt64 = 0
        for name in (try? Directory.list(dir)) ?? [] {
            let p = dir + "/" + name
            var st = stat()
            guard lstat(p, &st) == 0 else { continue }
            switch st.st_mode & S_IFMT {
            case S_IFDIR:
                let (f, b) = count(p)
                files += f
                bytes += b
            case S_IFREG:
                files += 1
                bytes += UInt64(st.st_size)
            default: break
            }
        }
        return (files, bytes)
    }
}

func lastComponent(_ p: String) -> String { p.split(separator: "/").last.map(String.init) ?? p }
