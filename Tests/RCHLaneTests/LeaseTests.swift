import Foundation
import RCHBundle
import RCHCore
import RCHHost
import RCHJob
import RCHProtocol
import RCHRun
import RCHStore
import RCHTestSupport
import Testing

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Slot reservations for multi-step runs (feature `lease`).
@Suite("Slot reservations: reserve, renew, release, LEASE_EXPIRED")
struct LeaseTests {
    /// A job spec (`argv` defaults to the build; the other host uses the test action so it never hits the cache).
    static func spec(_ c: WorkerClient, _ sha: SHA256Digest, argv: [String] = iPhone) throws -> JSONValue {
        let inputs = try JobInputsBuilder.build(argv: argv, sourceSHA256: sha, capabilities: c.capabilities!)
        return try JobSpec(
            runID: Identifier.generate(), jobID: Identifier.generate(), inputs: inputs, effectiveConfig: [:]
        ).json
    }

    @Test("a reserved slot: other submits are BUSY, the run's submits use it; after release the slot is free")
    func reservedSlot() throws {
        let f = try LaneFixture(ssh: false)
        let root = try f.tree()
        let mine = try f.client()
        let other = try f.client(hostStore: f.dir.sub("other-host"))
        let push = try Pusher(client: mine).push(root: root, options: BundleOptions())
        try other.negotiate()
        #expect(mine.has("lease"))
        let r = try mine.reserve(runID: Identifier.generate(), ttlSeconds: 30)
        let lease = try #require(r["lease_id"]?.stringValue)
        do {
            _ = try other.submit(try Self.spec(other, push.sourceSHA256, argv: iPhoneTest))
            Issue.record("a submit took the reserved slot")
        } catch let e as RPCError { #expect(e.code == .busy) }
        let first = try mine.submit(try Self.spec(mine, push.sourceSHA256), leaseID: lease)
        #expect(first["state"]?.stringValue == "QUEUED")
        _ = try RunDriver(client: mine, artifactRoot: f.dir.sub("a")).waitForEnd(
            first["job_id"]!.stringValue!, cached: false)
        // Between the run's steps the slot stays reserved.
        do {
            _ = try other.submit(try Self.spec(other, push.sourceSHA256, argv: iPhoneTest))
            Issue.record("a submit slipped in between two steps")
        } catch let e as RPCError { #expect(e.code == .busy) }
        let second = try mine.submit(try Self.spec(mine, push.sourceSHA256), leaseID: lease)
        _ = try RunDriver(client: mine, artifactRoot: f.dir.sub("a")).waitForEnd(
            second["job_id"]!.stringValue!, cached: false)
        #expect(try mine.release(leaseID: lease)["released"]?.boolValue == true)
        let free = try other.submit(try Self.spec(other, push.sourceSHA256, argv: iPhoneTest))
        #expect(free["state"]?.stringValue == "QUEUED")
    }

    @Test("a run that reserves again (resumed after its host died) gets its own reservation back, not BUSY")
    func sameRun() throws {
        let f = try LaneFixture(ssh: false)
        let c = try f.client()
        try c.negotiate()
        let run = Identifier.generate()
        let first = try #require(try c.reserve(runID: run, ttlSeconds: 60)["lease_id"]?.stringValue)
        let again = try #require(try c.reserve(runID: run, ttlSeconds: 60)["lease_id"]?.stringValue)
        #expect(again == first)
        do {
            _ = try c.reserve(runID: Identifier.generate(), ttlSeconds: 60)
            Issue.record("another run got a second slot on a one-slot worker")
        } catch let e as RPCError { #expect(e.code == .busy) }
    }

    @Test("an expired lease frees its slot; renew and submit with it answer LEASE_EXPIRED")
    func expiry() throws {
        let f = try LaneFixture(ssh: false)
        let root = try f.tree()
        let c = try f.client()
        let push = try Pusher(client: c).push(root: root, options: BundleOptions())
        let lease = try #require(try c.reserve(runID: Identifier.generate(), ttlSeconds: 1)["lease_id"]?.stringValue)
        usleep(1_500_000)
        do {
            _ = try c.submit(try Self.spec(c, push.sourceSHA256), leaseID: lease)
            Issue.record("an expired lease was accepted")
        } catch let e as RPCError { #expect(e.code == .leaseExpired) }
        do {
            _ = try c.renew(leaseID: lease, ttlSeconds: 30)
            Issue.record("an expired lease was renewed")
        } catch let e as RPCError { #expect(e.code == .leaseExpired) }
        // the slot is free
        #expect(try c.submit(try Self.spec(c, push.sourceSHA256))["state"]?.stringValue == "QUEUED")
    }

    @Test("a run whose reservation expires mid-run reserves again and finishes; nothing stays reserved")
    func expiresMidRun() throws {
        let f = try LaneFixture(config: "[executor]\nduration_ms = 2500", ssh: true)
        let root = try RunTests.repo(f)
        var o = RunOptions()
        o.pollMillis = 50
        o.leaseTTLSeconds = 1
        o.renewLease = false
        var notices: [String] = []
        o.onNotice = { notices.append($0) }
        let r = try RunCoordinator(client: try f.client(), artifactRoot: f.dir.sub("artifacts"), options: o).start(
            root: root, steps: [iPhone, iPhoneTest])
        #expect(r.exitCode == 0 && r.outcomes.map(\.status) == [.success, .success], "\(r.outcomes.map(\.message))")
        #expect(notices.contains { $0.contains("reservation expired") }, "\(notices)")
        let left = (try? FileManager.default.contentsOfDirectory(atPath: f.workerStore + "/work/reservations")) ?? []
        #expect(left.isEmpty, "reservations left: \(left)")
    }
}
