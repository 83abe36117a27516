import Foundation
import RCHCore
import RCHStore
import RCHTestSupport
import Testing

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

@Suite("Host retention (rch-xcode gc)")
struct HostRetentionTests {
    /// A run directory with a run_state and one file of `bytes`, its mtime `age` seconds ago.
    static func run(_ root: String, _ id: String, state: String, bytes: Int = 1000, age: Int) throws {
        let dir = root + "/" + id
        Tree(dir).file("run_state.json", #"{"state":"\#(state)"}"#).bytes(
            "steps/0-build/artifacts/build.log", [UInt8](repeating: 1, count: bytes))
        var t = [timespec(tv_sec: time(nil) - age, tv_nsec: 0), timespec(tv_sec: time(nil) - age, tv_nsec: 0)]
        utimensat(AT_FDCWD, dir, &t, 0)
    }

    @Test("never removes an interrupted (not terminal) or locked run; removes old finished ones; keeps the newest")
    func protectsRuns() throws {
        let d = TempDir()
        let root = d.sub("artifacts")
        try Self.run(root, "run_old_done01", state: "SUCCEEDED", age: 90 * 86_400)
        try Self.run(root, "run_interrupt1", state: "RUNNING", age: 80 * 86_400)
        try Self.run(root, "run_locked0001", state: "SUCCEEDED", age: 70 * 86_400)
        try Self.run(root, "run_newest0001", state: "FAILED", age: 60 * 86_400)
        let fd = open(root + "/run_locked0001/.run.lock", O_RDWR | O_CREAT, 0o644)
        #expect(flock(fd, LOCK_EX | LOCK_NB) == 0)
        defer { close(fd) }
        var t = [
            timespec(tv_sec: time(nil) - 70 * 86_400, tv_nsec: 0),
            timespec(tv_sec: time(nil) - 70 * 86_400, tv_nsec: 0),
        ]
        utimensat(AT_FDCWD, root + "/run_locked0001", &t, 0)  // creating the lock file touched the directory
        var r = HostRetention(artifactRoot: root, store: nil)
        r.keepRuns = 1
        r.keepDays = 0
        let report = try r.run()
        #expect(report.removed == ["run run_old_done01"], "\(report.removed)")
        #expect(Set(report.running) == ["run_interrupt1", "run_locked0001"])
        for kept in ["run_interrupt1", "run_locked0001", "run_newest0001"] {
            #expect(FileManager.default.fileExists(atPath: root + "/" + kept))
        }
    }

    @Test(
        "a push's scratch bundle left by a crash is removed once an hour old; a fresh one (a push sending it) is kept")
    func scratchResidue() throws {
        let d = TempDir()
        let store = try LocalStore(root: d.sub("store"))
        try Syscalls.makeDirectories(store.bundlesDirectory)
        let old = store.bundlesDirectory + "/" + TempFile.prefix + "crashed"
        let fresh = store.bundlesDirectory + "/" + TempFile.prefix + "sending"
        for p in [old, fresh] { _ = try DurableFile.write([UInt8](repeating: 7, count: 4096), to: p) }
        var t = [timespec(tv_sec: time(nil) - 7200, tv_nsec: 0), timespec(tv_sec: time(nil) - 7200, tv_nsec: 0)]
        utimensat(AT_FDCWD, old, &t, 0)
        var dry = HostRetention(artifactRoot: d.sub("artifacts"), store: store)
        dry.dryRun = true
        #expect(try dry.run().removed == ["temp bundle \(TempFile.prefix)crashed"])
        #expect(FileManager.default.fileExists(atPath: old))
        let report = try HostRetention(artifactRoot: d.sub("artifacts"), store: store).run()
        #expect(report.removed == ["temp bundle \(TempFile.prefix)crashed"], "\(report.removed)")
        #expect(report.bytesFreed >= 4096)
        #expect(!FileManager.default.fileExists(atPath: old))
        #expect(FileManager.default.fileExists(atPath: fresh))
    }

    @Test("--max-size removes the oldest finished runs until the rest fit, never the newest")
    func sizeCap() throws {
        let d = TempDir()
        let root = d.sub("artifacts")
        for (i, id) in ["run_size_00001", "run_size_00002", "run_size_00003"].enumerated() {
            try Self.run(root, id, state: "SUCCEEDED", bytes: 1 << 20, age: 3000 - i * 1000)
        }
        var r = HostRetention(artifactRoot: root, store: nil)
        r.maxSize = 3 << 19  // 1.5 MiB: room for one run
        let report = try r.run()
        #expect(Set(report.removed) == ["run run_size_00001", "run run_size_00002"], "\(report.removed)")
        #expect(FileManager.default.fileExists(atPath: root + "/run_size_00003"))
        let cli = try Run.process(
            TestPaths.executable("rch-xcode"),
            [
                "gc", "--artifacts", root, "--max-size", "1KiB", "--dry-run", "--json",
                "--store", d.sub("store"),
            ])
        // the newest stays
        #expect(cli.status == 0 && cli.stdout.contains("\"removed\":[]"), "\(cli.stdout) \(cli.stderr)")
    }
}
