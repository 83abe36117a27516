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

/// Bounded worker disk: finished job directories are collected by age and size budget.
@Suite("Worker job retention")
struct JobRetentionTests {
    static func age(_ path: String, days: Int) {
        var t = [
            timespec(tv_sec: time(nil) - days * 86_400, tv_nsec: 0),
            timespec(tv_sec: time(nil) - days * 86_400, tv_nsec: 0),
        ]
        utimensat(AT_FDCWD, path, &t, 0)
    }

    @Test(
        "old finished jobs go (never a running one or one being fetched); stats counts them; fetch then says ARTIFACTS_GONE"
    )
    func retention() throws {
        let f = try LaneFixture(ssh: false)
        let root = try f.tree()
        var d = RunDriver(client: try f.client(), artifactRoot: f.dir.sub("artifacts"))
        d.pollMillis = 50
        let a = try d.run(root: root, argv: iPhone)
        let b = try d.run(root: root, argv: iPhoneTest)
        var rich = d
        rich.profile = .rich
        let c = try rich.run(root: root, argv: iPhoneTest)
        // Each runner removes old finished jobs after its job: let them all end before ageing jobs.
        let jobs = WorkerJobs(store: try LocalStore(root: f.workerStore))
        for job in [a.jobID, b.jobID, c.jobID] {
            for _ in 0..<400 {
                guard let pid = jobs.runnerPID(job), kill(pid, 0) == 0 else { break }
                usleep(25_000)
            }
        }
        for job in [a.jobID, b.jobID] { Self.age(f.workerStore + "/work/\(job)/artifacts/job_state.json", days: 2) }
        // b is being fetched (a fetch holds control/fetch.lock shared while it streams).
        let hold = open(f.workerStore + "/work/\(b.jobID)/control/fetch.lock", O_RDWR | O_CREAT, 0o644)
        #expect(flock(hold, LOCK_SH) == 0)
        let stats = try JSONParser().parse(Array(try f.worker(["stats", "--json"], config: false).stdout.utf8))
        #expect(
            stats["jobs"]?["finished"]?.intValue == 3 && (stats["jobs"]?["bytes"]?.intValue ?? 0) > 0,
            "\(stats.canonicalString)")
        let dry = try f.worker(["gc", "--dry-run", "--json"])
        #expect(
            dry.stdout.contains(a.jobID) && dry.stdout.contains(b.jobID) && !dry.stdout.contains(c.jobID),
            "\(dry.stdout)")
        #expect(FileManager.default.fileExists(atPath: f.workerStore + "/work/\(a.jobID)"))
        let gc = try f.worker(["gc", "--json"])
        #expect(gc.status == 0, "\(gc.stderr)")
        #expect(!FileManager.default.fileExists(atPath: f.workerStore + "/work/\(a.jobID)"))
        #expect(
            FileManager.default.fileExists(atPath: f.workerStore + "/work/\(b.jobID)"),
            "a job being fetched was removed")
        #expect(FileManager.default.fileExists(atPath: f.workerStore + "/work/\(c.jobID)"))
        close(hold)
        do {
            _ = try f.client().fetch(a.jobID, into: f.dir.sub("refetch"))
            Issue.record("fetched a removed job")
        } catch let e as RPCError {
            #expect(e.code == .artifactsGone && e.failureKind.exitCode == 70)
        }
        // The size budget: over it, the oldest finished jobs go first.
        try f.writeConfig("\n[jobs]\nmax_size = \"1\"")
        _ = try f.worker(["gc"])
        let left = try FileManager.default.contentsOfDirectory(atPath: f.workerStore + "/work").filter {
            Identifier.isValid($0, .jobID)
        }
        #expect(left.isEmpty, "\(left)")
    }

    @Test("a running job is never collected, whatever its age")
    func running() throws {
        let f = try LaneFixture(
            config: "[executor]\nbehaviour = \"hang\"\n[jobs]\nmax_size = \"1\"\nretention = \"1s\"", ssh: false)
        let root = try f.tree()
        let (c, _, _, spec) = try f.job(root)
        _ = try c.submit(spec.json)
        usleep(1_500_000)
        _ = try f.worker(["gc"])
        #expect(FileManager.default.fileExists(atPath: f.workerStore + "/work/\(spec.jobID)/artifacts/job_state.json"))
        _ = try c.cancel(spec.jobID)
    }
}
