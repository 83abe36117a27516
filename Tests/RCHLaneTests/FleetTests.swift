import Foundation
import RCHCore
import RCHFleet
import RCHHost
import RCHJob
import RCHRun
import RCHStore
import RCHTestSupport
import Testing

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Three loopback workers, one real sshd each, with their own stores and declared toolchains:
/// `alpha` and `bravo` alike (Xcode 16C5032a, iPhone 16 on iOS 18.2), `charlie` on another Xcode build with
/// only an iPad. One shared host store and inventory.
final class Fleet {
    let workers: [String: LaneFixture]
    let dir = TempDir()
    var inventory: String { dir.sub("workers.toml") }
    var hostStore: String { dir.sub("host-store") }
    var artifacts: String { dir.sub("artifacts") }
    let repo: String

    static let iPad = """
        [toolchain]
        xcode_build = "16E140"
        xcode_version = "16.3"
        simulators = [{platform = "iOS Simulator", name = "iPad Air 11-inch (M2)", os_version = "18.4", runtime = "com.apple.CoreSimulator.SimRuntime.iOS-18-4", runtime_build = "22E238", device_type = "com.apple.CoreSimulator.SimDeviceType.iPad-Air-11-inch-M2"}]
        """

    init(extra: [String: String] = [:], config: [String: String] = [:]) throws {
        var w: [String: LaneFixture] = [:]
        for name in ["alpha", "bravo", "charlie"] {
            w[name] = try LaneFixture(config: config[name] ?? (name == "charlie" ? Self.iPad : ""), ssh: true)
        }
        workers = w
        repo = try w["alpha"]!.tree()
        try writeInventory(extra: extra)
    }

    /// The three entries (renamed from the fixtures' `w`), each followed by its `extra` lines.
    func writeInventory(extra: [String: String] = [:]) throws {
        var text = ""
        for name in ["alpha", "bravo", "charlie"] {
            let entry = try String(contentsOfFile: workers[name]!.inventory, encoding: .utf8)
            text +=
                entry.replacingOccurrences(of: "name = \"w\"", with: "name = \"\(name)\"") + (extra[name] ?? "")
                + "\n"
        }
        try text.write(toFile: inventory, atomically: true, encoding: .utf8)
    }

    /// Selects for `argv`; `config` (when given) becomes the repository's `.rch/xcode.toml` first.
    func select(_ argv: [String] = iPhone, config: String? = nil) throws -> (WorkerClient, SelectionRecord) {
        if let config { try configure(config) }
        return try RunWorkerChoice.select(
            root: repo, steps: [argv], inventory: try WorkerInventory.load(inventory),
            hostStore: try LocalStore(root: hostStore), options: RunOptions())
    }

    func configure(_ config: String) throws {
        try FileManager.default.createDirectory(atPath: repo + "/.rch", withIntermediateDirectories: true)
        try config.write(toFile: repo + "/.rch/xcode.toml", atomically: true, encoding: .utf8)
    }

    func candidate(_ r: SelectionRecord, _ name: String) -> SelectionRecord.Candidate {
        r.candidates.first { $0.worker == name }!
    }

    /// `rch-xcode` with this fleet's inventory and host store.
    func xcode(_ args: [String]) throws -> Sub.Result {
        let runs = ["verify", "run"].contains(args[0])
        return try Sub.run(
            TestPaths.executable("rch-xcode"),
            args + ["--inventory", inventory, "--store", hostStore] + (runs ? ["--artifacts", artifacts] : []))
    }
}

@Suite("Fleet: worker selection over three loopback workers", .serialized)
struct FleetTests {
    @Test("deterministic: priority then name, stable over 20 selections, moved only by the inventory")
    func deterministic() throws {
        let f = try Fleet()
        var chosen = Set<String>()
        for _ in 0..<20 { chosen.insert(try f.select().0.worker.name) }
        #expect(chosen == ["alpha"])
        let (_, r) = try f.select()
        #expect(r.mode == "deterministic" && r.candidates.count == 3 && r.requiredTags == ["macos", "xcode"])
        #expect(f.candidate(r, "alpha").reason.hasPrefix("chosen: priority 0"))
        #expect(f.candidate(r, "bravo").kept && f.candidate(r, "bravo").reason.hasPrefix("ranked 2"))
        // charlie has no iPhone 16: dropped, saying what it has.
        let c = f.candidate(r, "charlie")
        #expect(!c.kept && c.reason.contains("no iOS Simulator device") && c.reason.contains("iPad Air"), "\(c.reason)")
        // Only the inventory moves the choice: a priority, then a tag the repository requires.
        try f.writeInventory(extra: ["bravo": "priority = 10\n"])
        #expect(try f.select().0.worker.name == "bravo")
        try f.writeInventory(extra: ["alpha": "tags = [\"macos\", \"xcode\", \"m4\"]\n"])
        let (tagged, t) = try f.select(config: "[worker]\ntags = [\"m4\"]\n")
        #expect(tagged.worker.name == "alpha" && f.candidate(t, "bravo").reason == "lacks tags m4")
    }

    @Test("constraints: a required Xcode build or a missing destination drops a worker, with the reason")
    func constraints() throws {
        let f = try Fleet()
        let (client, r) = try f.select(
            ["build", "-scheme", "App", "-destination", "platform=iOS Simulator,name=iPad Air 11-inch (M2)"])
        #expect(client.worker.name == "charlie")
        #expect(!f.candidate(r, "alpha").kept && f.candidate(r, "alpha").reason.contains("no iOS Simulator device"))
        let iPad = ["build", "-scheme", "App", "-destination", "platform=iOS Simulator,name=iPad Air 11-inch (M2)"]
        let (pinned, x) = try f.select(iPad, config: "[worker]\nxcode_build = \"16E140\"\n")
        #expect(pinned.worker.name == "charlie")
        #expect(f.candidate(x, "alpha").reason == "Xcode build 16C5032a, the repository requires 16E140")
        // charlie has that Xcode but no iPhone 16: nobody is left, and the error lists every reason.
        #expect {
            _ = try f.select(config: "[worker]\nxcode_build = \"16E140\"\n")
        } throws: { e in
            let s = "\(e)"
            return (e as? LaneError)?.exitCode == 91 && s.contains("alpha: Xcode build")
                && s.contains("charlie: cannot run")
        }
    }

    @Test("an unreachable worker is skipped within the connect timeout and recorded")
    func unreachable() throws {
        let f = try Fleet()
        var text = try String(contentsOfFile: f.inventory, encoding: .utf8)
        text +=
            "[[workers]]\nname = \"aaa-down\"\nhost = \"10.255.255.1\"\nconnect_timeout_seconds = 2\npriority = 100\n"
        try text.write(toFile: f.inventory, atomically: true, encoding: .utf8)
        let started = Date()
        let (client, r) = try f.select()
        #expect(Date().timeIntervalSince(started) < 10)
        #expect(client.worker.name == "alpha")
        #expect(
            r.probeFailures.map(\.worker) == ["aaa-down"] && f.candidate(r, "aaa-down").reason.hasPrefix("probe failed")
        )
        let workers = try f.xcode(["workers", "--json"])
        let down = try JSONParser().parse(Array(workers.stdout.utf8))["workers"]?.arrayValue?.first {
            $0["name"]?.stringValue == "aaa-down"
        }
        #expect(down?["reachable"]?.boolValue == false, "\(workers.stdout)")
        // probe --all: every worker now, in parallel; one down is reported, not fatal.
        let all = try f.xcode(["probe", "--all", "--json"])
        let listed = try JSONParser().parse(Array(all.stdout.utf8))["workers"]?.arrayValue ?? []
        #expect(all.status == 0 && listed.count == 4, "\(all.stdout) \(all.stderr)")
        #expect(listed.filter { $0["reachable"]?.boolValue == true }.count == 3)
        #expect(listed.first { $0["name"]?.stringValue == "charlie" }?["xcode_build"]?.stringValue == "16E140")
        let table = try f.xcode(["workers"])
        #expect(table.stdout.hasPrefix("NAME") && table.stdout.contains("aaa-down: "), "\(table.stdout)")
    }

    @Test("snapshots: cached within probe_ttl_seconds, one re-probe after it")
    func ttl() throws {
        let f = try Fleet(extra: ["alpha": "probe_ttl_seconds = 2\n"])
        let first = try f.select().1
        #expect(first.snapshotSource == "fresh")
        let second = try f.select().1
        #expect(second.snapshotSource == "cached" && second.snapshotAgeSeconds < 2)
        usleep(2_100_000)
        let third = try f.select().1
        #expect(third.snapshotSource == "fresh" && f.candidate(third, "bravo").snapshotSource == "cached")
    }

    @Test("adaptive: a free slot first; on equal slots the worker holding the result, and the run is a hit")
    func adaptive() throws {
        let slow = "[executor]\nkind = \"recording\"\nduration_ms = 4000"
        let f = try Fleet(config: ["alpha": slow])
        try f.configure("[worker]\nselection_mode = \"adaptive\"\n")
        // Keep alpha's only slot busy (a test job of this very tree): adaptive goes to bravo, by name alpha would win.
        let busy = try f.workers["alpha"]!.job(f.repo, argv: iPhoneTest)
        _ = try busy.client.submit(busy.spec.json)
        let (free, r) = try f.select()
        #expect(free.worker.name == "bravo", "\(r.candidates.map(\.reason))")
        #expect(f.candidate(r, "alpha").metrics["free_slots"]?.intValue == 0)
        // Build on bravo (its result is cached there), wait for alpha to be free: slots tie, bravo has the result.
        let built = try f.xcode([
            "verify", f.repo, "--worker", "bravo", "--action", "build", "--scheme", "App", "--destination", iPhone[4],
        ])
        #expect(built.status == 0, "\(built.stderr)")
        for _ in 0..<100 where try busy.client.status(busy.spec.jobID)["state"]?.stringValue != "SUCCEEDED" {
            usleep(100_000)
        }
        let (hit, h) = try f.select(["build", "-scheme", "App", "-destination", iPhone[4]])
        #expect(hit.worker.name == "bravo", "\(h.json(runID: "run_0000000001").canonicalString)")
        #expect(f.candidate(h, "bravo").metrics["affinity"]?.stringValue == "result")
        #expect(f.candidate(h, "alpha").metrics["affinity"]?.stringValue == "source")
        // Through the command line without --worker: lands on bravo, served from its cache.
        let run = try f.xcode([
            "verify", f.repo, "--action", "build", "--scheme", "App", "--destination", iPhone[4], "--json",
        ])
        #expect(run.status == 0, "\(run.stderr)")
        let summary = try JSONParser().parse(Array(run.stdout.utf8))
        #expect(summary["steps"]?.arrayValue?.first?["cached"]?.boolValue == true, "\(run.stdout)")
        let dir = summary["directory"]!.stringValue!
        let sel = try JSONParser().parse(try DurableFile.read(dir + "/worker_selection.json"))
        #expect(sel["selected_worker"]?.stringValue == "bravo" && sel["selection_mode"]?.stringValue == "adaptive")
        for (file, schema) in [
            ("worker_selection.json", "worker_selection"), ("capabilities.json", "capabilities"),
            ("run_index.json", "run_index"),
        ] {
            let v = try Sub.validate(dir + "/" + file, schema: schema)
            #expect(v.status == 0, "\(file): \(v.output)")
        }
        #expect(run.stderr.contains("worker bravo chosen (adaptive"))
    }

    @Test("a run interrupted on one worker resumes there, whatever the selection would choose now")
    func resumeKeepsTheWorker() throws {
        let f = try Fleet(config: ["bravo": "[executor]\nkind = \"recording\"\nduration_ms = 3000"])
        try f.configure("[verify]\nscheme = \"App\"\nactions = [\"build\"]\n")
        let p = Process()
        p.executableURL = URL(fileURLWithPath: TestPaths.executable("rch-xcode"))
        p.arguments = [
            "verify", f.repo, "--worker", "bravo", "--destination", iPhone[4], "--inventory", f.inventory, "--store",
            f.hostStore, "--artifacts", f.artifacts, "-q",
        ]
        p.standardOutput = FileHandle.nullDevice
        p.standardError = FileHandle.nullDevice
        try p.run()
        // Kill the host once the step is running on bravo: the run is interrupted, its plan names bravo.
        var running = false
        for _ in 0..<200 where !running {
            usleep(50_000)
            let runs = (try? FileManager.default.contentsOfDirectory(atPath: f.artifacts)) ?? []
            running = runs.contains { r in
                (try? String(contentsOfFile: f.artifacts + "/" + r + "/run_state.json", encoding: .utf8))?
                    .contains("\"RUNNING\"") == true
            }
        }
        #expect(running)
        kill(p.processIdentifier, SIGKILL)
        p.waitUntilExit()
        let resumed = try f.xcode(["verify", f.repo, "--destination", iPhone[4], "--json"])
        #expect(resumed.status == 0, "\(resumed.stderr)")
        #expect(resumed.stderr.contains("resuming interrupted run"), "\(resumed.stderr)")
        let r = try JSONParser().parse(Array(resumed.stdout.utf8))
        #expect(r["resumed"]?.boolValue == true)
        let sel = try JSONParser().parse(try DurableFile.read(r["directory"]!.stringValue! + "/worker_selection.json"))
        #expect(sel["selected_worker"]?.stringValue == "bravo" && sel["selection_mode"]?.stringValue == "forced")
        // Nothing is left interrupted.
        #expect(RunWorkerChoice.interruptedRun(root: f.repo, artifactRoot: f.artifacts) == nil)
    }
}
