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

@Suite("Residue of killed processes: leases of dead owners, stale staging directories")
struct ResidueTests {
    @Test("a lease stops protecting its subject as soon as its owner process is gone; gc removes it")
    func deadOwner() throws {
        let d = TempDir()
        let store = try LocalStore(root: d.sub("store"))
        let pid = try Spawn.start("/bin/sleep", ["30"], stdin: 0, stdout: 1, stderr: 2)
        let owner = ProcessIdentity(pid: pid, start: ProcessIdentity.startToken(pid))
        #expect(owner.start != nil)
        let subject = LeaseSubject.source(.of([1]))
        let leases = Leases(store: store)
        _ = try leases.acquire(subject, jobID: "job_0000000001", ttlSeconds: 3600, owner: owner)
        let mine = try leases.acquire(.source(.of([2])), jobID: "job_0000000002", ttlSeconds: 3600)
        #expect(leases.active(on: subject).count == 1)
        kill(pid, SIGKILL)
        _ = Spawn.wait(pid)
        #expect(leases.active(on: subject).isEmpty, "a dead process's lease still protects its subject")
        #expect(leases.active(on: .source(.of([2]))).count == 1)  // this live process's lease
        // A pid reused by another process does not revive it: another start token is another process.
        #expect(!ProcessIdentity(pid: getpid(), start: "0@other-boot").isAlive)
        var gc = GarbageCollector(store: store)
        gc.graceSeconds = 0
        let r = try gc.run()
        #expect(r.expiredLeases == 1)
        #expect(leases.all().map(\.id) == [mine.id])
    }

    @Test("gc removes the staging directory a killed materialisation left under work/<job_id>/")
    func staleStaging() throws {
        let d = TempDir()
        let store = try LocalStore(root: d.sub("store"))
        let staging = store.root + "/work/job_0000000001/.rch-staging-abc123"
        Tree(staging).file("half/written.txt", "partial")
        let fresh = store.root + "/work/job_0000000002/.rch-staging-def456"
        Tree(fresh).file("busy.txt")
        var old = [timespec(tv_sec: time(nil) - 7200, tv_nsec: 0), timespec(tv_sec: time(nil) - 7200, tv_nsec: 0)]
        utimensat(AT_FDCWD, staging, &old, 0)
        let gc = GarbageCollector(store: store)  // default grace: 1 h
        let r = try gc.run()
        #expect(r.residue == 1)
        #expect(!FileManager.default.fileExists(atPath: staging))
        #expect(
            FileManager.default.fileExists(atPath: fresh + "/busy.txt"), "a materialisation in progress was removed")
    }
}
