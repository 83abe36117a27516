import Foundation
import RCHCore
import RCHHost
import RCHRun
import RCHStore
import RCHTestSupport
import Testing

/// What an operator runs on a worker, and `rch-xcode job list`.
@Suite("Operator commands: one store per worker, jobs, versions")
struct OperatorTests {
    @Test(
        "rch-worker finds its store by --store > $RCH_WORKER_STORE > [worker] store; read-only commands never create one"
    )
    func storeSelection() throws {
        let d = TempDir()
        let exe = TestPaths.executable("rch-worker")
        for args in [
            ["stats"], ["fsck"], ["gc", "--dry-run"], ["jobs"],
            ["store", "lookup", String(repeating: "a", count: 64), "--executor-class", "recording"],
        ] {
            let r = try Sub.run("/usr/bin/env", ["RCH_WORKER_STORE=" + d.sub("typo"), exe] + args)
            #expect(r.status == 78 && r.stderr.contains("is not a store"), "\(args): \(r.status) \(r.stderr)")
            #expect(!FileManager.default.fileExists(atPath: d.sub("typo")), "\(args) created a store")
        }
        // [worker] store in worker.toml; $RCH_WORKER_STORE wins over it; --store wins over both.
        try "[worker]\nstore = \"\(d.sub("from-config"))\"\n".write(
            toFile: d.sub("worker.toml"), atomically: true, encoding: .utf8)
        let initConfig = try Sub.run(exe, ["init", "--config", d.sub("worker.toml"), "--json"])
        #expect(
            initConfig.status == 0 && initConfig.stdout.contains(d.sub("from-config")),
            "\(initConfig.stdout) \(initConfig.stderr)")
        #expect(try Sub.run(exe, ["jobs", "--config", d.sub("worker.toml")]).status == 0)
        let env = try Sub.run(
            "/usr/bin/env",
            ["RCH_WORKER_STORE=" + d.sub("from-env"), exe, "init", "--config", d.sub("worker.toml"), "--json"])
        #expect(env.stdout.contains(d.sub("from-env")), "\(env.stdout)")
        let flag = try Sub.run(
            "/usr/bin/env",
            ["RCH_WORKER_STORE=" + d.sub("from-env"), exe, "init", "--store", d.sub("from-flag"), "--json"])
        #expect(flag.stdout.contains(d.sub("from-flag")), "\(flag.stdout)")
        for v in [try Sub.run(exe, ["--version"]), try Sub.run(TestPaths.executable("rch-xcode"), ["--version"])] {
            #expect(v.status == 0 && v.stdout.contains("protocol 1...1") && v.stdout.contains("bundle format v1"))
        }
    }

    @Test("jobs: rch-worker jobs and rch-xcode job list show running and recent jobs, newest first, filtered by state")
    func jobs() throws {
        let f = try LaneFixture(ssh: true)
        let root = try f.tree()
        var d = RunDriver(client: try f.client(), artifactRoot: f.dir.sub("artifacts"))
        d.pollMillis = 50
        let first = try d.run(root: root, argv: iPhone)
        let second = try d.run(root: root, argv: iPhone)  // a cache hit
        let local = try JSONParser().parse(Array(try f.worker(["jobs", "--json"]).stdout.utf8))
        let ids = local["jobs"]?.arrayValue?.compactMap { $0["job_id"]?.stringValue } ?? []
        #expect(ids == [second.jobID, first.jobID], "\(local.canonicalString)")
        #expect(local["jobs"]?.arrayValue?.first?["cached_from_job_id"]?.stringValue == first.jobID)
        let remote = try Sub.run(
            TestPaths.executable("rch-xcode"),
            ["job", "list", "--json", "--worker", "w", "--inventory", f.inventory, "--store", f.hostStore])
        #expect(remote.status == 0, "\(remote.stderr)")
        let rv = try JSONParser().parse(Array(remote.stdout.utf8))
        #expect(rv["jobs"]?.arrayValue?.compactMap { $0["job_id"]?.stringValue } == ids)
        let text = try Sub.run(
            TestPaths.executable("rch-xcode"),
            ["job", "list", "--state", "RUNNING", "--worker", "w", "--inventory", f.inventory, "--store", f.hostStore])
        #expect(text.stdout.contains("(no jobs)"), "\(text.stdout)")
    }

    @Test(
        "push/run from a subdirectory use the repository root (like git); an empty directory is refused; fetch never writes into a non-empty directory"
    )
    func repositoryRoot() throws {
        let f = try LaneFixture(ssh: false)
        let root = try f.tree()
        let exe = TestPaths.executable("rch-xcode")
        let cli = ["--worker", "w", "--inventory", f.inventory, "--store", f.hostStore]
        let whole = try JSONParser().parse(Array(try Sub.run(exe, ["push", root, "--json"] + cli).stdout.utf8))
        let sub = try Sub.run(exe, ["push", root + "/App", "--json"] + cli)
        #expect(
            sub.status == 0 && sub.stderr.contains("using repository root " + RepoPath.absolute(root)), "\(sub.stderr)")
        #expect(try JSONParser().parse(Array(sub.stdout.utf8))["source_sha256"] == whole["source_sha256"])
        let empty = f.dir.sub("empty-dir")
        try FileManager.default.createDirectory(atPath: empty, withIntermediateDirectories: true)
        let r = try Sub.run(
            exe, ["run", empty, "--artifacts", f.dir.sub("a")] + cli + ["--", "build", "-scheme", "App"])
        #expect(r.status == 92 && r.stderr.contains("nothing to bundle"), "\(r.status) \(r.stderr)")
        let busy = f.dir.sub("busy-dir")
        Tree(busy).file("keep.txt")
        let fetch = try Sub.run(
            exe,
            ["fetch", "job_0000000001", "--into", busy, "--worker", "nowhere", "--inventory", f.dir.sub("none.toml")])
        #expect(fetch.status == 64 && fetch.stderr.contains("not empty"), "\(fetch.status) \(fetch.stderr)")
        #expect(try FileManager.default.contentsOfDirectory(atPath: busy) == ["keep.txt"])
    }
}

@Suite("Text for people, --json for machines")
struct OutputFormTests {
    @Test("probe, job status and fetch print text by default and one JSON document with --json")
    func forms() throws {
        let f = try LaneFixture(ssh: false)
        let root = try f.tree()
        var d = RunDriver(client: try f.client(), artifactRoot: f.dir.sub("artifacts"))
        d.pollMillis = 50
        let r = try d.run(root: root, argv: iPhone)
        let exe = TestPaths.executable("rch-xcode")
        let w = ["--worker", "w", "--inventory", f.inventory, "--store", f.hostStore]
        let probe = try Sub.run(exe, ["probe"] + w)
        #expect(
            probe.status == 0 && probe.stdout.contains("executor: recording")
                && probe.stdout.contains("attestation key:"), "\(probe.stdout)")
        let probeJSON = try JSONParser().parse(Array(try Sub.run(exe, ["probe", "--json"] + w).stdout.utf8))
        #expect(probeJSON["capabilities"]?["executor"]?.stringValue == "recording")
        let status = try Sub.run(exe, ["job", "status", r.jobID] + w)
        #expect(status.stdout.hasPrefix("job \(r.jobID): SUCCEEDED"), "\(status.stdout)")
        let statusJSON = try JSONParser().parse(
            Array(try Sub.run(exe, ["job", "status", r.jobID, "--json"] + w).stdout.utf8))
        #expect(statusJSON["state"]?.stringValue == "SUCCEEDED")
        let fetch = try Sub.run(exe, ["fetch", r.jobID, "--into", f.dir.sub("fetched")] + w)
        #expect(
            fetch.status == 0 && fetch.stdout.contains("manifest and attestation verified"),
            "\(fetch.stdout) \(fetch.stderr)")
        let fetchJSON = try JSONParser().parse(
            Array(try Sub.run(exe, ["fetch", r.jobID, "--into", f.dir.sub("fetched2"), "--json"] + w).stdout.utf8))
        #expect(fetchJSON["attestation_verified"]?.boolValue == true)
        // tail: the log as text; with --json one document holding it and the cursor to go on from.
        let tail = try Sub.run(exe, ["job", "tail", r.jobID] + w)
        let tailJSON = try JSONParser().parse(
            Array(try Sub.run(exe, ["job", "tail", r.jobID, "--json"] + w).stdout.utf8))
        #expect(tail.status == 0 && !tail.stdout.isEmpty && tailJSON["log"]?.stringValue == tail.stdout)
        #expect(
            tailJSON["next_cursor"]?.intValue == Int64(tail.stdout.utf8.count) && tailJSON["eof"]?.boolValue == true)
        // -v: each worker call with its time and bytes, on stderr; stdout unchanged.
        let verbose = try Sub.run(exe, ["job", "status", r.jobID, "-v"] + w)
        #expect(verbose.stdout == status.stdout && verbose.stderr.contains("rch-xcode: rpc status to worker w"))
        #expect(verbose.stderr.contains(" ms: sent "), "\(verbose.stderr)")
    }
}

@Suite("Error exit codes of the command line")
struct CommandExitTests {
    @Test("configuration errors exit 78, an unknown job 66, usage 64; messages say what is wrong first")
    func codes() throws {
        let f = try LaneFixture(ssh: false)
        let exe = TestPaths.executable("rch-xcode")
        try "[[workers]\nname = ".write(toFile: f.dir.sub("bad.toml"), atomically: true, encoding: .utf8)
        let bad = try Sub.run(
            exe, ["probe", "--worker", "w", "--inventory", f.dir.sub("bad.toml"), "--store", f.hostStore])
        #expect(bad.status == 78 && bad.stderr.contains("cannot be read"), "\(bad.status) \(bad.stderr)")
        let missing = try Sub.run(
            exe, ["probe", "--worker", "w", "--inventory", f.dir.sub("missing.toml"), "--store", f.hostStore])
        #expect(
            missing.status == 78 && missing.stderr.contains("does not exist"), "\(missing.status) \(missing.stderr)")
        let unknown = try Sub.run(
            exe,
            ["job", "status", "job_9999999999", "--worker", "w", "--inventory", f.inventory, "--store", f.hostStore])
        #expect(
            unknown.status == 66 && unknown.stderr.contains("no job job_9999999999"),
            "\(unknown.status) \(unknown.stderr)")
        let usage = try Sub.run(exe, ["job", "frobnicate"])
        #expect(usage.status == 64)
        let root = try f.tree()
        let argv = try Sub.run(
            exe,
            [
                "run", root, "--worker", "w", "--inventory", f.inventory, "--store", f.hostStore, "--artifacts",
                f.dir.sub("a"),
                "--", "build", "-scheme", "App", "-destination", "platform=iOS Simulator,name=iPhone 99",
            ])
        #expect(argv.status == 10 && argv.stderr.contains("it has: iPhone 16"), "\(argv.status) \(argv.stderr)")
        #expect(!argv.stderr.contains("error: /"), "a JSON pointer came first: \(argv.stderr)")
        let noScheme = try Sub.run(
            exe, ["verify", root, "--worker", "w", "--inventory", f.inventory, "--store", f.hostStore])
        #expect(
            noScheme.status == 78 && noScheme.stderr.contains("[verify] scheme"),
            "\(noScheme.status) \(noScheme.stderr)")
    }
}
