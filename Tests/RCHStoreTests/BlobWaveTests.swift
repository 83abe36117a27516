import Foundation
import RCHBundle
import RCHCore
import RCHTestSupport
import Testing

@testable import RCHStore

/// A batch published in waves while it is still being staged: each wave durable before it is visible, the
/// rest at commit, the same store as a one-shot commit; a failed ingest leaves only orphans for gc.
@Suite("Blob batches published in waves")
struct BlobWaveTests {
    static func content(_ i: Int) -> [UInt8] { Array("blob \(i) ".utf8) + [UInt8](repeating: UInt8(i & 255), count: i) }

    /// Waits (up to 10 s) until `condition` holds.
    static func eventually(_ condition: () -> Bool) -> Bool {
        for _ in 0..<1000 {
            if condition() { return true }
            usleep(10_000)
        }
        return condition()
    }

    @Test("a wave's blobs are visible before commit; commit publishes the rest; counts as a one-shot commit")
    func waves() throws {
        let d = TempDir()
        let store = try LocalStore(root: d.sub("store"))
        let old = try store.blobs.batch()
        let present = try Self.content(0).withUnsafeBytes { try old.add($0) }
        try old.commit()

        let batch = try store.blobs.batch()
        batch.publishInWaves(everyBytes: 1 << 30, everyBlobs: 10)
        var digests: [SHA256Digest] = []
        for i in 0..<10 { digests.append(try Self.content(i + 1).withUnsafeBytes { try batch.add($0) }) }
        // The tenth blob handed the first ten over: they appear under their final names before any commit.
        #expect(Self.eventually { store.blobs.missing(digests).isEmpty })
        #expect(batch.wavesPublished == 1)
        // Already stored, staged twice, streamed (large): none is counted or staged twice.
        #expect(try Self.content(0).withUnsafeBytes { try batch.add($0) } == present)
        #expect(try Self.content(5).withUnsafeBytes { try batch.add($0) } == digests[4])
        let big = try batch.stream()
        let bigBytes = [UInt8](repeating: 7, count: 3 << 20)
        try bigBytes.withUnsafeBytes { try big.write($0) }
        digests.append(try big.finish(expected: .of(bigBytes)))
        for i in 11..<25 { digests.append(try Self.content(i).withUnsafeBytes { try batch.add($0) }) }
        try batch.commit()
        #expect(store.blobs.missing(digests + [present]).isEmpty)
        #expect(digests.allSatisfy { store.blobs.verify($0) })
        #expect(batch.newBlobs == 25 && batch.wavesPublished >= 2, "\(batch.newBlobs) \(batch.wavesPublished)")
        let leftovers = try Run.shell("find '\(store.blobs.root)' -name '.staging-*'")
        #expect(leftovers.stdout.isEmpty)
    }

    @Test("an ingest refused at its end publishes no entry; its waves' blobs are orphans that verify and gc removes")
    func refusedIngest() throws {
        let d = TempDir()
        let (bundle, sha, _) = try StoreFixtures.bundle(d)
        let store = try LocalStore(root: d.sub("store"))
        var sources = SourceStore(store: store)
        sources.waveBlobs = 8
        let wrong = SHA256Digest.of(Array("another source".utf8))
        #expect(throws: BundleError.self) { try sources.ingest(bundle: bundle, expected: wrong) }
        #expect(!sources.has(wrong) && !sources.has(sha))
        let leftovers = try Run.shell("find '\(store.root)' -name '.staging-*' -o -name '*.json' -path '*sources*'")
        #expect(leftovers.stdout.isEmpty, "\(leftovers.stdout)")
        let report = try Fsck(store: store).run()
        #expect(report.clean && report.orphanBlobs >= 8 && report.corruptBlobs.isEmpty, "\(report.json)")
        var gc = GarbageCollector(store: store)
        gc.graceSeconds = 0
        #expect(try gc.run().blobs == report.orphanBlobs)
        #expect(try Fsck(store: store).run().orphanBlobs == 0)
        // The same bundle with the right digest: stored whole, in waves, and it rebuilds to its digest.
        let r = try sources.ingest(bundle: bundle, expected: sha)
        #expect(r.stored && sources.has(sha))
        _ = try sources.materialize(sha, jobID: "job_0000000001", into: d.sub("jobs/j1"))
        #expect(try Bundler.bundle(root: d.sub("jobs/j1"), output: nil).sourceSHA256 == sha)
    }
}
