import Foundation
import RCHBundle
import RCHCore
import RCHHost
import RCHRun
import RCHStore
import RCHTestSupport
import Testing

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
}
