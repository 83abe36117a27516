import Foundation
import RCHCore
import RCHStore
import RCHTestSupport
import Testing

@Suite("rch-worker store … as an operator runs it")
struct WorkerCLITests {
    let exe = TestPaths.executable("rch-worker")

    @Test("ingest, has-source, materialise-source, record-result, lookup, materialise-result")
    func flow() throws {
        let d = TempDir()
        let (bundle, sha, _) = try StoreFixtures.bundle(d)
        let st = ["--store", d.sub("store")]
        let ingest = try Run.process(exe, ["store", "ingest", bundle, "--expect", sha.hex, "--json"] + st)
        #expect(ingest.status == 0 && ingest.stdout.contains("\"stored\":true"), "\(ingest.stderr)")
        let has = try Run.process(exe, ["store", "has-source", sha.hex, SHA256Digest.of([1]).hex, "--json"] + st)
        #expect(has.status == 1 && has.stdout.contains("\"\(sha.hex)\":true") && has.stdout.contains(":false"))
        #expect(
            try Run.process(
                exe, ["store", "materialise-source", sha.hex, "--job-id", "job_0000000001", "--into", d.sub("j1")] + st
            ).status == 0)
        let key = SHA256Digest.of(Array("k".utf8))
        try StoreFixtures.artifacts(d.sub("art"), action: "build", jobKey: key)
        let rec = try Run.process(
            exe,
            [
                "store", "record-result", d.sub("art"), "--job-key", key.hex, "--namespace", "app", "--executor-class",
                "recording", "--json",
            ] + st)
        #expect(rec.status == 0 && rec.stdout.contains("\"artifact_profile\":\"minimal\""), "\(rec.stderr)")
        let miss = try Run.process(
            exe,
            [
                "store", "lookup", key.hex, "--namespace", "app", "--executor-class", "recording", "--profile", "rich",
                "--json",
            ] + st)
        #expect(miss.status == 1 && miss.stdout.contains("does not satisfy requested rich"))
        let hit = try Run.process(
            exe, ["store", "lookup", key.hex, "--namespace", "app", "--executor-class", "recording", "--json"] + st)
        #expect(hit.status == 0 && hit.stdout.contains("\"hit\":true"))
        let mat = try Run.process(
            exe,
            [
                "store", "materialise-result", key.hex, "--namespace", "app", "--executor-class", "recording",
                "--job-id", "job_0000000002", "--run-id", "run_0000000002",
                "--into", d.sub("j2"), "--json",
            ] + st)
        #expect(mat.status == 0 && mat.stdout.contains("\"cached_from_job_id\":\"job_0000000001\""), "\(mat.stderr)")
        #expect(try Run.process(TestPaths.executable("rch-xcode"), ["verify-artifacts", d.sub("j2")]).status == 0)
    }

    static let refusalCases: [([String], Int32)] = [
        (["store", "ingest", "/nonexistent.tar.zst"], 40),
        (
            [
                "store", "materialise-source", String(repeating: "a", count: 64), "--job-id", "job_0000000001",
                "--into", "/tmp/x-rch",
            ], 30
        ),
        (["store", "materialise-source", "ABC", "--job-id", "job_0000000001", "--into", "/tmp/x"], 64),
        (
            [
                "store", "materialise-source", String(repeating: "a", count: 64), "--job-id", "../etc", "--into",
                "/tmp/x",
            ], 64
        ),
        (["store", "lookup", String(repeating: "a", count: 64), "--namespace", "bad/ns"], 64),
        (["store", "lookup", String(repeating: "a", count: 64), "--profile", "gold"], 64),
    ]

    @Test(
        "refusals: bad digests, ids and namespaces are usage errors; failures use the stable codes",
        arguments: refusalCases)
    func refusals(args: [String], status: Int32) throws {
        let d = TempDir()
        _ = try LocalStore(root: d.sub("store"))  // an existing (empty) store: read-only commands refuse a missing one
        let r = try Run.process(exe, args + ["--store", d.sub("store")])
        #expect(r.status == status, "\(args): \(r.stderr)")
        #expect(!r.stderr.isEmpty)
    }
}
