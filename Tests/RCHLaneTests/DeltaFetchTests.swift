import Foundation
import RCHBundle
import RCHCore
import RCHHost
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

/// Fetch sends only the blobs the host lacks (feature `fetch_blobs`); older workers keep the whole archive.
@Suite("Delta fetch and the host's artifact store")
struct DeltaFetchTests {
    @Test("a cached result fetched again: only the rewritten job files come over; host gc collects")
    func consecutiveRuns() throws {
        let f = try LaneFixture(ssh: true)
        let root = try f.tree()
        var d = RunDriver(client: try f.client(), artifactRoot: f.dir.sub("artifacts"))
        d.pollMillis = 50
        let first = try d.run(root: root, argv: iPhoneTest)
        d.fetch = false
        let second = try d.run(root: root, argv: iPhoneTest)
        #expect(second.cached)
        let c = try f.client()
        let fetched = try c.fetch(second.jobID, into: f.dir.sub("second"))
        // The log, the result bundle and the records are the same bytes as the first run's: reused from the host
        // store; the job-scoped JSON files (new job id) and the fresh attestation come over.
        #expect((fetched.blobsReused ?? 0) > 0 && (fetched.blobsFetched ?? 0) > 0, "\(fetched)")
        #expect(ArtifactManifest.verify(fetched.directory).isEmpty)
        #expect(FileManager.default.fileExists(atPath: fetched.directory + "/attestation_verification.json"))
        let whole = first.artifacts!
        #expect(ArtifactManifest.verify(whole).isEmpty)
        // Host gc: the fetched set (one entry per job key) unused for --keep-days 0 goes (its blobs after the grace period).
        let gc = try Sub.run(
            TestPaths.executable("rch-xcode"),
            ["gc", "--keep-days", "0", "--store", f.hostStore, "--artifacts", f.dir.sub("artifacts"), "--json"])
        let report = try JSONParser().parse(Array(gc.stdout.utf8))
        #expect(gc.status == 0 && report["fetched_sets_removed"]?.intValue == 1, "\(gc.stdout) \(gc.stderr)")
    }

    @Test("a worker without fetch_blobs is fetched whole, verified the same way")
    func olderWorker() throws {
        let f = try LaneFixture(config: "disabled_features = [\"fetch_blobs\"]", ssh: true)
        var d = RunDriver(client: try f.client(), artifactRoot: f.dir.sub("artifacts"))
        d.pollMillis = 50
        d.fetch = false
        let r = try d.run(root: try f.tree(), argv: iPhone)
        let fetched = try f.client().fetch(r.jobID, into: f.dir.sub("whole"))
        #expect(
            fetched.blobsFetched == nil && fetched.streamBytes > 0 && ArtifactManifest.verify(fetched.directory).isEmpty
        )
    }

    @Test(
        "a hit served by reference: no copy on the worker, fetched whole or by blobs, tailed; a damaged blob is never sent",
        arguments: [true, false])
    func servedByReference(blobs: Bool) throws {
        let f = try LaneFixture(config: blobs ? "" : "disabled_features = [\"fetch_blobs\"]", ssh: false)
        let root = try f.tree()
        var d = RunDriver(client: try f.client(), artifactRoot: f.dir.sub("artifacts"))
        d.pollMillis = 50
        d.fetch = false
        let first = try d.run(root: root, argv: iPhoneTest)
        let second = try d.run(root: root, argv: iPhoneTest)
        #expect(!first.cached && second.cached)
        // The worker wrote only the new job's records: the result bundle and the log stay blobs.
        let job = f.workerStore + "/work/" + second.jobID
        let written = Set(try FileManager.default.contentsOfDirectory(atPath: job + "/artifacts"))
        #expect(!written.contains("result.xcresult") && !written.contains("build.log"), "\(written.sorted())")
        #expect(FileManager.default.fileExists(atPath: job + "/reference.json"))
        // A blob of the result damaged on the worker's disk (the host has none of it yet): the fetch fails with
        // nothing partial on the host, the blob is quarantined, and the job then runs again instead of hitting.
        let manifest = try JSONParser().parse(try DurableFile.read(job + "/artifacts/manifest.json"))
        let entry = try #require(
            manifest["entries"]?.arrayValue?.first {
                $0["path"]?.stringValue?.hasPrefix("result.xcresult/") == true && $0["type"]?.stringValue == "file"
            })
        let digest = try #require(entry["sha256"]?.stringValue.flatMap { SHA256Digest(hex: $0) })
        let store = try LocalStore(root: f.workerStore)
        chmod(store.blobs.path(digest), 0o644)
        try Data("damaged".utf8).write(to: URL(fileURLWithPath: store.blobs.path(digest)))
        let c = try f.client()
        #expect {
            _ = try c.fetch(second.jobID, into: f.dir.sub("second"))
        } throws: { error in
            (error as? RPCError)?.code == .artifactsGone
        }
        #expect(!FileManager.default.fileExists(atPath: f.dir.sub("second")))
        #expect(!store.blobs.has(digest))
        let quarantined = try FileManager.default.contentsOfDirectory(atPath: f.workerStore + "/quarantine/blobs")
        #expect(quarantined.map { String($0.prefix(64)) } == [digest.hex])
        let third = try d.run(root: root, argv: iPhoneTest)
        #expect(!third.cached)
        // Recorded again: the next hit is served by reference and fetched whole or by blobs, verified; its log
        // is tailed from the store.
        let fourth = try d.run(root: root, argv: iPhoneTest)
        #expect(fourth.cached)
        let fetched = try c.fetch(fourth.jobID, into: f.dir.sub("fourth"))
        #expect(ArtifactManifest.verify(fetched.directory).isEmpty)
        #expect((fetched.blobsFetched == nil) == !blobs)
        let log = try c.tail(fourth.jobID, cursor: 0, maxBytes: 1 << 20)
        let original = try String(contentsOfFile: fetched.directory + "/build.log", encoding: .utf8)
        #expect(log["log_chunk"]?.stringValue == original && log["eof"]?.boolValue == true)
    }
}
