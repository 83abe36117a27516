import Foundation
import RCHCore
import RCHHost
import RCHJob
import RCHRun
import RCHTestSupport
import Testing

/// DerivedData and SwiftPM caches on the worker (`cache.derived_data`, `cache.spm`), through real runs.
@Suite("Worker caches: DerivedData and SwiftPM", .serialized)
struct WorkerCacheTests {
    static func driver(_ f: LaneFixture, cache: JSONObject) throws -> RunDriver {
        var d = RunDriver(client: try f.client(), artifactRoot: f.dir.sub("artifacts"))
        d.pollMillis = 50
        d.configFlags = ["cache": .object(cache)]
        return d
    }

    static func record(_ r: RunDriver.Outcome) throws -> JSONValue {
        try JSONParser().parse(try DurableFile.read(r.artifacts! + "/executor_record.json"))
    }

    static func metrics(_ r: RunDriver.Outcome) throws -> JSONValue {
        try JSONParser().parse(try DurableFile.read(r.artifacts! + "/metrics.json"))
    }

    @Test("shared: reused by the next job of the same toolchain, never across toolchains; SwiftPM alike")
    func shared() throws {
        let f = try LaneFixture(ssh: false)
        let root = try f.tree()
        let cache: JSONObject = ["derived_data": .string("shared"), "spm": .string("shared")]
        let first = try Self.driver(f, cache: cache).run(root: root, argv: iPhone)
        #expect(first.exitCode == 0)
        #expect(try Self.record(first)["derived_data_builds_before"]?.intValue == 0)
        try f.edit(root)
        let second = try Self.driver(f, cache: cache).run(root: root, argv: iPhone)
        #expect(!second.cached && second.jobKey != first.jobKey)
        #expect(try Self.record(second)["derived_data_builds_before"]?.intValue == 1)
        let m = try Self.metrics(second)
        #expect(
            m["cache"]?["derived_data_hit"]?.boolValue == true
                && m["cache"]?["derived_data_mode"]?.stringValue == "shared")
        #expect(m["cache"]?["spm_mode"]?.stringValue == "shared" && m["cache"]?["spm_hit"]?.boolValue == true)
        let path = m["cache_paths"]?["derived_data"]?.stringValue ?? ""
        #expect(path.hasSuffix("/caches/corpus-app/derived_data/shared/xcode_16C5032a__macos_15__arm64"), "\(path)")
        #expect(try Self.record(second)["source_packages"]?.stringValue == "xcode_16C5032a__macos_15__arm64")
        let v = try Sub.validate(second.artifacts! + "/metrics.json", schema: "metrics")
        #expect(v.status == 0, "\(v.output)")
        // Another Xcode build on the worker: another cache, nothing shared.
        try f.writeConfig("[toolchain]\nxcode_build = \"16E140\"\nxcode_version = \"16.3\"")
        try f.edit(root)
        let other = try Self.driver(f, cache: cache).run(root: root, argv: iPhone)
        #expect(other.exitCode == 0, "\(other.summary.canonicalString)")
        #expect(try Self.record(other)["derived_data_builds_before"]?.intValue == 0)
        #expect(try Self.metrics(other)["cache_paths"]?["derived_data"]?.stringValue?.contains("xcode_16E140") == true)
    }

    @Test("per_job: a re-run of the same job key reuses its DerivedData; off leaves nothing behind")
    func perJobAndOff() throws {
        let f = try LaneFixture(config: "[executor]\nkind = \"recording\"\nbehaviour = \"fail\"", ssh: false)
        let root = try f.tree()
        let perJob: JSONObject = ["derived_data": .string("per_job")]
        let first = try Self.driver(f, cache: perJob).run(root: root, argv: iPhone)
        #expect(first.exitCode == 50)  // failed: not cached, so the same key runs again
        let again = try Self.driver(f, cache: perJob).run(root: root, argv: iPhone)
        #expect(again.jobKey == first.jobKey && !again.cached)
        #expect(try Self.record(again)["derived_data_builds_before"]?.intValue == 1)
        let againMetrics = try Self.metrics(again)
        #expect(
            againMetrics["cache"]?["derived_data_mode"]?.stringValue == "per_job", "\(againMetrics.canonicalString)")
        try f.edit(root)
        let off = try Self.driver(f, cache: ["derived_data": .string("off")]).run(root: root, argv: iPhone)
        #expect(try Self.metrics(off)["cache"]?["derived_data_mode"]?.stringValue == "off")
        #expect(try Self.record(off)["derived_data_builds_before"]?.intValue == 0)
        // Removed by the runner right after it committed the job (which the fetch may beat): wait for it.
        let dd = f.workerStore + "/work/\(off.jobID)/DerivedData"
        for _ in 0..<100 where FileManager.default.fileExists(atPath: dd) { usleep(50_000) }
        #expect(!FileManager.default.fileExists(atPath: dd))
    }

    @Test("two concurrent jobs never share one DerivedData: the second uses a private one after the lock timeout")
    func concurrent() throws {
        let f = try LaneFixture(
            config:
                "max_concurrent_jobs = 2\n[executor]\nkind = \"recording\"\nduration_ms = 2500\n[cache]\nlock_timeout_seconds = 1",
            ssh: false)
        let root = try f.tree()
        let other = try f.tree("other")
        let cache: JSONObject = ["derived_data": .string("shared")]
        nonisolated(unsafe) var results: [RunDriver.Outcome] = []
        let lock = NSLock()
        let group = DispatchGroup()
        for r in [root, other] {
            group.enter()
            nonisolated(unsafe) let driver = try Self.driver(f, cache: cache)
            Thread.detachNewThread {
                defer { group.leave() }
                if let res = try? driver.run(root: r, argv: iPhone) { lock.withLock { results.append(res) } }
            }
            usleep(300_000)
        }
        group.wait()
        #expect(results.count == 2)
        let modes = try results.map { try Self.metrics($0)["cache"]?["derived_data_mode"]?.stringValue ?? "" }.sorted()
        #expect(modes == ["private (lock timeout)", "shared"], "\(modes)")
        let paths = Set(try results.map { try Self.metrics($0)["cache_paths"]?["derived_data"]?.stringValue ?? "" })
        #expect(paths.count == 2)
    }

    @Test("gc removes caches unused for longer than [cache] max_age; stats counts them")
    func gc() throws {
        let f = try LaneFixture(ssh: false)
        let root = try f.tree()
        _ = try Self.driver(f, cache: ["derived_data": .string("shared"), "spm": .string("off")]).run(
            root: root, argv: iPhone)
        let stats = try JSONParser().parse(Array(try f.worker(["stats", "--json"], config: false).stdout.utf8))
        #expect(
            stats["caches"]?["count"]?.intValue == 1 && (stats["caches"]?["bytes"]?.intValue ?? 0) > 0,
            "\(stats.canonicalString)")
        try (String(contentsOfFile: f.configPath, encoding: .utf8) + "\n[cache]\nmax_age = \"1s\"\n").write(
            toFile: f.configPath, atomically: true, encoding: .utf8)
        usleep(1_200_000)
        let dry = try f.worker(["gc", "--dry-run", "--json"])
        #expect(dry.stdout.contains("\"caches_removed\":[{") && dry.stdout.contains("max_age"), "\(dry.stdout)")
        let gc = try f.worker(["gc", "--json"])
        #expect(gc.status == 0 && gc.stdout.contains("derived_data/shared/xcode_16C5032a"), "\(gc.stdout) \(gc.stderr)")
        let after = try JSONParser().parse(Array(try f.worker(["stats", "--json"], config: false).stdout.utf8))
        #expect(after["caches"]?["count"]?.intValue == 0)
    }
}
