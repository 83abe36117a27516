import Foundation
import RCHBundle
import RCHCore
import RCHHost
import RCHJob
import RCHProtocol
import RCHRun
import RCHStore
import RCHTestSupport
import RCHWorker
import Testing

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// `rch-xcode verify` and runs through a real sshd: plans, files, resume, signals, slots, timeouts.
@Suite("Runs end to end through a real sshd")
struct RunTests {
    static let rchXcode = TestPaths.executable("rch-xcode")

    /// A generated repository whose .rch/xcode.toml also has `[verify]` (and `extra` appended).
    static func repo(_ f: LaneFixture, _ extra: String = "") throws -> String {
        let root = try f.tree()
        let toml = root + "/.rch/xcode.toml"
        let text = try String(contentsOfFile: toml, encoding: .utf8)
        try (text + "\n[verify]\nscheme = \"App\"\nactions = [\"build\", \"test\"]\n" + extra).write(
            toFile: toml, atomically: true, encoding: .utf8)
        return root
    }

    /// `args` with the fixture's worker, inventory, host store and artifact root (before a `--`).
    static func cli(_ f: LaneFixture, _ args: [String], store: String? = nil, artifacts: String? = nil) -> [String] {
        let options = [
            "--worker", "w", "--inventory", f.inventory, "--store", store ?? f.hostStore, "--artifacts",
            artifacts ?? f.dir.sub("artifacts"),
        ]
        guard let dd = args.firstIndex(of: "--") else { return args + options }
        return Array(args[..<dd]) + options + Array(args[dd...])
    }

    static func json(_ path: String) throws -> JSONValue { try JSONParser().parse(try DurableFile.read(path)) }

    @Test("verify: build then test from [verify]; run files written and schema-valid; exit code = run_summary's")
    func twoSteps() throws {
        let f = try LaneFixture(ssh: true)
        let root = try Self.repo(f)
        let r = try Sub.run(Self.rchXcode, Self.cli(f, ["verify", root, "--json"]))
        #expect(r.status == 0, "\(r.stdout) \(r.stderr)")
        #expect(r.stderr.contains("rch-xcode: run "))  // ids printed before the first step
        let out = try JSONParser().parse(Array(r.stdout.utf8))
        let dir = try #require(out["directory"]?.stringValue)
        #expect(out["steps"]?.arrayValue?.map { $0["action"]?.stringValue ?? "" } == ["build", "test"])
        let summary = try Self.json(dir + "/run_summary.json")
        #expect(
            summary["exit_code"]?.intValue == 0 && summary["status"]?.stringValue == "success"
                && summary["steps_succeeded"]?.intValue == 2)
        #expect(try Self.json(dir + "/run_state.json")["state"]?.stringValue == "SUCCEEDED")
        for (file, schema) in [
            ("run_plan.json", "run_plan"), ("run_state.json", "run_state"), ("run_summary.json", "run_summary"),
            ("run_index.json", "run_index"), ("steps/0-build/effective_config.json", "effective_config"),
            ("steps/1-test/job_key_inputs.json", "job_key_inputs"), ("source_manifest.json", "source_manifest"),
        ] {
            let v = try Sub.validate(dir + "/" + file, schema: schema)
            #expect(v.status == 0, "\(file): \(v.output)")
        }
        let plan = try Self.json(dir + "/run_plan.json")
        let ids = plan["steps"]?.arrayValue?.compactMap { $0["job_id"]?.stringValue } ?? []
        #expect(ids.count == 2 && ids == out["steps"]?.arrayValue?.compactMap { $0["job_id"]?.stringValue })
        // The destination came from [destination] (constraints: OS=latest → the newest runtime).
        let inputs = try Self.json(dir + "/steps/1-test/job_key_inputs.json")
        #expect(
            inputs["sanitized_argv"]?.arrayValue?.contains(.string("platform=iOS Simulator,name=iPhone 16,OS=18.2"))
                == true)
        #expect(FileManager.default.fileExists(atPath: dir + "/steps/1-test/artifacts/result.xcresult"))
        #expect(ArtifactManifest.verify(dir + "/steps/1-test/artifacts").isEmpty)
    }

    @Test(
        "a failed step stops the run (exit 50, the rest skipped) unless --continue-on-failure; a rejected step is recorded (exit 10)"
    )
    func failureAndRejection() throws {
        let f = try LaneFixture(config: "[executor]\nbehaviour = \"fail\"", ssh: true)
        let root = try Self.repo(f)
        let stop = try JSONParser().parse(
            Array(try Sub.run(Self.rchXcode, Self.cli(f, ["verify", root, "--json"])).stdout.utf8))
        #expect(stop["exit_code"]?.intValue == 50)
        #expect(stop["steps"]?.arrayValue?.map { $0["status"]?.stringValue ?? "" } == ["failed", "skipped"])
        let all = try Sub.run(
            Self.rchXcode, Self.cli(f, ["verify", root, "--continue-on-failure", "--no-resume", "--json"]))
        #expect(all.status == 50)
        let v = try JSONParser().parse(Array(all.stdout.utf8))
        #expect(v["steps"]?.arrayValue?.map { $0["status"]?.stringValue ?? "" } == ["failed", "failed"])
        let rejected = try Sub.run(
            Self.rchXcode, Self.cli(f, ["verify", root, "--no-resume", "--json", "--", "-derivedDataPath", "/tmp/x"]))
        #expect(rejected.status == 10, "\(rejected.stdout) \(rejected.stderr)")
        let rv = try JSONParser().parse(Array(rejected.stdout.utf8))
        #expect(rv["steps"]?.arrayValue?.first?["status"]?.stringValue == "rejected")
        let plan = try Self.json(try #require(rv["directory"]?.stringValue) + "/run_plan.json")
        #expect(plan["steps"]?.arrayValue?.first?["rejected"]?.boolValue == true)
    }

    /// Starts `rch-xcode` in the background with stdout/stderr into files; returns its pid.
    static func background(_ f: LaneFixture, _ args: [String], name: String) throws -> pid_t {
        let out = open(f.dir.sub(name + ".out"), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        let err = open(f.dir.sub(name + ".err"), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        let devnull = open("/dev/null", O_RDONLY | O_CLOEXEC)
        defer {
            close(out)
            close(err)
            close(devnull)
        }
        return try Spawn.start(rchXcode, Self.cli(f, args), stdin: devnull, stdout: out, stderr: err)
    }

    /// The single run directory under the fixture's artifact root, once its state satisfies `ready`.
    static func waitForRun(_ f: LaneFixture, seconds: Double = 60, _ ready: (JSONValue) -> Bool) throws -> String {
        let deadline = Timestamp.nowNanos() + Int64(seconds * 1e9)
        while Timestamp.nowNanos() < deadline {
            for name in (try? FileManager.default.contentsOfDirectory(atPath: f.dir.sub("artifacts"))) ?? [] {
                let dir = f.dir.sub("artifacts/" + name)
                if let s = try? Self.json(dir + "/run_state.json"), ready(s) { return dir }
            }
            usleep(100_000)
        }
        throw RunError.notResumable("the run did not get there in \(seconds) s")
    }

    static func exitStatus(_ pid: pid_t, seconds: Double) -> Int32? {
        let deadline = Timestamp.nowNanos() + Int64(seconds * 1e9)
        while Timestamp.nowNanos() < deadline {
            if let e = Spawn.poll(pid) {
                switch e {
                case .code(let c): return c
                case .signal(let s): return 128 + s
                }
            }
            usleep(50_000)
        }
        kill(pid, SIGKILL)
        _ = Spawn.wait(pid)
        return nil
    }

    @Test("a host killed mid-run: the next verify resumes it with the same job ids; a finished step is not run again")
    func resumeAfterKill() throws {
        let f = try LaneFixture(config: "[executor]\nduration_ms = 2500", ssh: true)
        let root = try Self.repo(f)
        let pid = try Self.background(f, ["verify", root, "--quiet"], name: "first")
        let dir = try Self.waitForRun(f) { $0["current_step"]?["index"]?.intValue == 1 }
        kill(pid, SIGKILL)
        _ = Spawn.wait(pid)
        let plan = try Self.json(dir + "/run_plan.json")
        let ids = plan["steps"]?.arrayValue?.compactMap { $0["job_id"]?.stringValue } ?? []
        #expect(try Self.json(dir + "/run_state.json")["state"]?.stringValue == "RUNNING")
        let r = try Sub.run(Self.rchXcode, Self.cli(f, ["verify", root, "--json"]))
        #expect(r.status == 0, "\(r.stdout) \(r.stderr)")
        let v = try JSONParser().parse(Array(r.stdout.utf8))
        #expect(v["resumed"]?.boolValue == true && v["directory"]?.stringValue == dir)
        #expect(v["steps"]?.arrayValue?.compactMap { $0["job_id"]?.stringValue } == ids)
        // Only the two planned jobs exist on the worker: nothing ran twice.
        let jobs = try FileManager.default.contentsOfDirectory(atPath: f.workerStore + "/work").filter {
            $0 != "active" && $0 != "reservations"
        }
        #expect(Set(jobs) == Set(ids), "\(jobs)")
        #expect(try Self.json(dir + "/run_state.json")["resumed_at"]?.stringValue != nil)
    }

    @Test("SIGINT while a job hangs: the worker's job is cancelled within seconds, the run ends CANCELLED, exit 80")
    func sigint() throws {
        let f = try LaneFixture(config: "[executor]\nbehaviour = \"hang\"", ssh: true)
        let root = try Self.repo(f)
        let pid = try Self.background(f, ["verify", root, "--quiet"], name: "hang")
        let dir = try Self.waitForRun(f) { $0["current_step"]?["index"]?.intValue == 0 }
        let job = try Self.json(dir + "/run_plan.json")["steps"]?.arrayValue?.first?["job_id"]?.stringValue ?? ""
        let deadline = Timestamp.nowNanos() + 30_000_000_000
        while !FileManager.default.fileExists(atPath: f.workerStore + "/work/\(job)/artifacts/build.log")
            && Timestamp.nowNanos() < deadline
        { usleep(100_000) }
        usleep(500_000)
        let sent = Timestamp.nowNanos()
        kill(pid, SIGINT)
        let code = Self.exitStatus(pid, seconds: 30)
        #expect(
            code == 80,
            "exit \(String(describing: code)): \((try? String(contentsOfFile: f.dir.sub("hang.err"), encoding: .utf8)) ?? "")"
        )
        #expect(Double(Timestamp.nowNanos() - sent) / 1e9 < 20)
        let state = try Self.json(f.workerStore + "/work/\(job)/artifacts/job_state.json")
        #expect(state["state"]?.stringValue == "CANCELLED")
        #expect(try Self.json(dir + "/run_state.json")["state"]?.stringValue == "CANCELLED")
        #expect(try Self.json(dir + "/run_summary.json")["status"]?.stringValue == "cancelled")
    }

    @Test("two hosts on a one-slot worker: the second waits for the slot, both finish")
    func twoHosts() throws {
        let f = try LaneFixture(config: "[executor]\nduration_ms = 1500", ssh: true)
        let root = try f.tree()
        let a = try Self.background(f, ["run", root, "--quiet", "--", "build", "-scheme", "App"], name: "a")
        let out = open(f.dir.sub("b.out"), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        let err = open(f.dir.sub("b.err"), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        let devnull = open("/dev/null", O_RDONLY | O_CLOEXEC)
        let b = try Spawn.start(
            Self.rchXcode,
            Self.cli(
                f, ["run", root, "--quiet", "--", "test", "-scheme", "App"], store: f.dir.sub("host-b"),
                artifacts: f.dir.sub("artifacts-b")), stdin: devnull, stdout: out, stderr: err)
        close(out)
        close(err)
        close(devnull)
        let ea = Self.exitStatus(a, seconds: 90)
        let eb = Self.exitStatus(b, seconds: 90)
        #expect(ea == 0, "\((try? String(contentsOfFile: f.dir.sub("a.err"), encoding: .utf8)) ?? "")")
        #expect(eb == 0, "\((try? String(contentsOfFile: f.dir.sub("b.err"), encoding: .utf8)) ?? "")")
    }

    @Test("simultaneous submits to a one-slot worker: exactly one gets the slot")
    func slotAtomicity() throws {
        let f = try LaneFixture(config: "[executor]\nbehaviour = \"hang\"", ssh: false)
        let root = try f.tree()
        let c0 = try f.client()
        let push = try Pusher(client: c0).push(root: root, options: BundleOptions())
        let inputs = try JobInputsBuilder.build(
            argv: iPhone, sourceSHA256: push.sourceSHA256, capabilities: c0.capabilities!)
        let specs = try (0..<6).map { _ in
            try JobSpec(
                runID: Identifier.generate(), jobID: Identifier.generate(), inputs: inputs, effectiveConfig: [:]
            ).json
        }
        let clients = try (0..<6).map { _ in try f.client() }
        for c in clients { try c.negotiate() }
        let accepted = LockedCounter()
        let shared = UncheckedBox(clients)
        DispatchQueue.concurrentPerform(iterations: 6) { i in
            if let r = try? shared.value[i].submit(specs[i]), r["state"]?.stringValue == "QUEUED" { accepted.add() }
        }
        #expect(accepted.value == 1)
        for s in specs { _ = try? c0.cancel(s["job_id"]!.stringValue!) }
    }

    @Test("an unreachable worker fails within [timeouts] connect_seconds (exit 20)")
    func unreachable() throws {
        let f = try LaneFixture(ssh: false)
        // A listener that accepts connections but never speaks: ssh waits for the banner until its timeout.
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        addr.sin_port = 0
        _ = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        listen(fd, 16)
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) }
        }
        defer { close(fd) }
        let port = UInt16(bigEndian: addr.sin_port)
        try
            "[[workers]]\nname = \"w\"\nhost = \"127.0.0.1\"\nport = \(port)\nuser = \"nobody\"\nknown_hosts = \"\(f.dir.sub("kh"))\"\n"
            .write(toFile: f.inventory, atomically: true, encoding: .utf8)
        let root = try Self.repo(f, "\n[timeouts]\nconnect_seconds = 2\n")
        let started = Timestamp.nowNanos()
        let r = try Sub.run(Self.rchXcode, Self.cli(f, ["run", root, "--", "build", "-scheme", "App"]))
        let seconds = Double(Timestamp.nowNanos() - started) / 1e9
        #expect(r.status == 20, "\(r.stdout) \(r.stderr)")
        #expect(seconds < 15, "took \(seconds) s")
    }

    @Test("no log output for [timeouts] idle_log_seconds: the job is cancelled, the step fails TIMEOUT_IDLE (exit 40)")
    func idleTimeout() throws {
        let f = try LaneFixture(config: "[executor]\nbehaviour = \"hang\"", ssh: true)
        let root = try Self.repo(f, "\n[timeouts]\nidle_log_seconds = 3\n")
        let r = try Sub.run(Self.rchXcode, Self.cli(f, ["run", root, "--json", "--", "build", "-scheme", "App"]))
        #expect(r.status == 40, "\(r.stdout) \(r.stderr)")
        let v = try JSONParser().parse(Array(r.stdout.utf8))
        #expect(v["steps"]?.arrayValue?.first?["message"]?.stringValue?.contains("TIMEOUT_IDLE") == true)
        let job = v["steps"]?.arrayValue?.first?["job_id"]?.stringValue ?? ""
        #expect(
            try Self.json(f.workerStore + "/work/\(job)/artifacts/job_state.json")["state"]?.stringValue == "CANCELLED")
    }

    @Test("a job whose runner died while QUEUED is repaired as FAILED / RUNNER_LOST")
    func runnerLostWhileQueued() throws {
        let f = try LaneFixture(config: "[executor]\nbehaviour = \"hang\"", ssh: false)
        let root = try f.tree()
        let (c, _, inputs, spec) = try f.job(root)
        _ = try c.submit(spec.json)
        let jobs = WorkerJobs(store: try LocalStore(root: f.workerStore))
        var pid: pid_t? = nil
        for _ in 0..<100 where pid == nil {
            pid = jobs.runnerPID(spec.jobID)
            usleep(20_000)
        }
        let runner = try #require(pid)
        kill(runner, SIGKILL)
        for _ in 0..<100 where kill(runner, 0) == 0 { usleep(20_000) }
        // As if it died before it got to RUNNING.
        try jobs.writeState(spec.jobID, runID: spec.runID, jobKey: inputs.jobKey.hex, .queued)
        let s = try c.status(spec.jobID)
        #expect(
            s["state"]?.stringValue == "FAILED" && s["summary"]?["failure_subkind"]?.stringValue == "RUNNER_LOST",
            "\(s)")
    }
}

final class LockedCounter: @unchecked Sendable {
    private let lock = NSLock()
    private var n = 0
    func add() {
        lock.lock()
        n += 1
        lock.unlock()
    }
    var value: Int {
        lock.lock()
        defer { lock.unlock() }
        return n
    }
}

/// Hands values that are used from one thread each to concurrent test code.
final class UncheckedBox<T>: @unchecked Sendable {
    let value: T
    init(_ v: T) { value = v }
}
