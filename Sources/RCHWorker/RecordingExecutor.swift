import RCHCore
import RCHStore
import RCHXcodeReports

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
        log.line("Target dependency graph (1 target)")
        log.line("    Target 'App' in project 'App' (no dependencies)")
        let record = JSONValue.obj([
            "argv": .array(r.sanitizedArgv.map { .string($0) }), "developer_dir": .string(r.developerDir),
            "environment_keys": .array(r.environment.keys.sorted().map { .string($0) }),
            "working_directory": .string(lastComponent(r.sourceDirectory)), "source_files": .int(Int64(fileCount)),
            "source_bytes": .int(Int64(bytes)), "action": .string(r.action),
            "artifact_profile": .string(r.profile.rawValue),
            "derived_data": .string(lastComponent(r.derivedDataPath)),
            "derived_data_builds_before": .int(Int64(Self.previousBuilds(r.derivedDataPath))),
            "source_packages": r.sourcePackagesPath.map { .string(lastComponent($0)) } ?? .null,
        ])
        // What a resolve leaves in the package checkouts, and a build in DerivedData (so a reused cache is
        // visible to the next job).
        if let packages = r.sourcePackagesPath {
            try Syscalls.makeDirectories(packages + "/checkouts")
            _ = try DurableFile.write(Array(r.jobID.utf8), to: packages + "/checkouts/recording", durable: false)
        }
        // What a build leaves in DerivedData (so a reused cache is visible to the next job).
        try Syscalls.makeDirectories(r.derivedDataPath + "/Build")
        let marker = open(
            r.derivedDataPath + "/Build/recording-builds", O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o644)
        if marker >= 0 {
            _ = "\(r.jobID)\n".withCString { write(marker, $0, strlen($0)) }
            close(marker)
        }
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
        if failed {
            log.line("/src/App/App.swift:12:5: error: recording executor was told to fail")
            log.line(r.action == "test" ? "** TEST FAILED **" : "** BUILD FAILED **")
        } else {
            log.line(r.action == "test" ? "** TEST SUCCEEDED **" : "** BUILD SUCCEEDED **")
        }
        if r.action == "test" { try writeXCResult(out, r, failed: failed) }
        if r.profile == .rich { writeRich(out, r, failed: failed) }
        if failed {
            return ExecutionOutcome(
                status: .failed, backendExitCode: 65, failureKind: .xcodebuild,
                message: "xcodebuild \(r.action) failed (exit 65)")
        }
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

    /// The rich files through the same code as the real backend: `RichArtifacts` reads this run's
    /// `build.log` and the `xcresulttool` output a real Xcode 16 would print for the recorded tests (three
    /// tests, one failing when told to fail).
    private func writeRich(_ out: String, _ r: ExecutionRequest, failed: Bool) {
        for stage in ["prepare", r.action, "finish"] {
            r.events.emit(
                "execute", "stage_end", ["step": .string(stage), "ok": .bool(!(failed && stage == r.action))])
        }
        let envelope = RichArtifacts.Envelope(runID: r.runID, jobID: r.jobID, jobKey: r.jobKey.hex)
        let (_, degraded) = RichArtifacts.write(action: r.action, into: out, envelope: envelope) { args in
            args.contains("summary")
                ? Self.xcresultSummary(failed) : args.contains("tests") ? Self.xcresultTests(failed) : nil
        }
        if let degraded { r.events.emit("artifacts", "degraded", ["reason": .string(degraded)]) }
    }

    static func xcresultSummary(_ failed: Bool) -> [UInt8] {
        let failures =
            failed
            ? #"[{"failureText":"XCTAssertTrue failed","targetName":"AppTests","testIdentifier":3,"testIdentifierString":"AppTests/testExample()","testName":"testExample()"}]"#
            : "[]"
        return Array(
            """
            {"devicesAndConfigurations":[{"device":{"architecture":"arm64","deviceId":"5B6C1F9E-2C1D-4B8A-9B7E-0A1B2C3D4E5F",\
            "deviceName":"iPhone 16","modelName":"iPhone 16","osVersion":"18.2","platform":"iOS Simulator"},\
            "expectedFailures":0,"failedTests":\(failed ? 1 : 0),"passedTests":\(failed ? 2 : 3),"skippedTests":0,\
            "testPlanConfiguration":{"configurationId":"1","configurationName":"Test Scheme Action"}}],\
            "environmentDescription":"App · Built with macOS 15.2","expectedFailures":0,"failedTests":\(failed ? 1 : 0),\
            "finishTime":1733140000.25,"passedTests":\(failed ? 2 : 3),"result":"\(failed ? "Failed" : "Passed")",\
            "skippedTests":0,"startTime":1733140000,"statistics":[],"testFailures":\(failures),"title":"Test - App",\
            "topInsights":[],"totalTestCount":3}
            """.utf8)
    }

    static func xcresultTests(_ failed: Bool) -> [UInt8] {
        func test(_ name: String, _ fails: Bool) -> String {
            let failure =
                fails
                ? #","children":[{"name":"AppTests.swift:12: XCTAssertTrue failed","nodeType":"Failure Message","result":"Failed"}]"#
                : ""
            return
                #"{"duration":"0.01s","durationInSeconds":0.01,"name":"\#(name)","nodeIdentifier":"AppTests/\#(name)","nodeType":"Test Case","result":"\#(fails ? "Failed" : "Passed")"\#(failure)}"#
        }
        let cases = [test("testA()", false), test("testB()", false), test("testExample()", failed)].joined(
            separator: ",")
        return Array(
            """
            {"devices":[{"architecture":"arm64","deviceId":"5B6C1F9E-2C1D-4B8A-9B7E-0A1B2C3D4E5F","deviceName":"iPhone 16",\
            "modelName":"iPhone 16","osVersion":"18.2","platform":"iOS Simulator"}],"testNodes":[{"children":[{"children":\
            [{"children":[\(cases)],"name":"AppTests","nodeType":"Test Suite","result":"\(failed ? "Failed" : "Passed")"}],\
            "name":"AppTests","nodeType":"Unit test bundle","result":"\(failed ? "Failed" : "Passed")"}],"name":"App",\
            "nodeType":"Test Plan","result":"\(failed ? "Failed" : "Passed")"}],"testPlanConfigurations":\
            [{"configurationId":"1","configurationName":"Test Scheme Action"}]}
            """.utf8)
    }
}

extension RecordingExecutor {
    /// How many recorded builds the DerivedData directory already holds.
    static func previousBuilds(_ dir: String) -> Int {
        ((try? String(contentsOfFile: dir + "/Build/recording-builds", encoding: .utf8)) ?? "")
            .split(separator: "\n").count
    }

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
