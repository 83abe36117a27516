import Foundation
import RCHCore
import RCHHost
import RCHRun
import RCHS3
import RCHShared
import RCHStore
import RCHTestSupport
import Testing

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Two workers with separate stores sharing one bucket of a real Ceph RGW (scripts/rgw), each reached through
/// its own loopback sshd.
final class SharedPair {
    let a: LaneFixture
    let b: LaneFixture
    let prefix = TestRGW.uniquePrefix("pair")
    let rgw: TestRGW.Endpoint
    let dir = TempDir()
    var fingerprints: [String: String] = [:]

    /// `trust`: which fingerprints each worker trusts besides its own ("a", "b"); `endpoint` per worker.
    init(trust: [String: [String]] = ["a": ["b"], "b": ["a"]], endpoint: [String: String] = [:], extra: String = "")
        throws
    {
        rgw = try TestRGW.shared()
        a = try LaneFixture(ssh: true)
        b = try LaneFixture(ssh: true)
        let creds = dir.sub("credentials")
        try "AWS_ACCESS_KEY_ID=\(rgw.accessKey)\nAWS_SECRET_ACCESS_KEY=\(rgw.secretKey)\n".write(
            toFile: creds, atomically: true, encoding: .utf8)
        chmod(creds, 0o600)
        for (name, f) in [("a", a), ("b", b)] {
            let r = try f.worker(["identity", "--json"])
            fingerprints[name] = try JSONParser().parse(Array(r.stdout.utf8))["attestation_key_fingerprint"]?
                .stringValue
        }
        for (name, f) in [("a", a), ("b", b)] {
            let trusted = (trust[name] ?? []).map { "\"\(fingerprints[$0]!)\"" }.joined(separator: ", ")
            try f.writeConfig(
                """
                [shared]
                endpoint = "\(endpoint[name] ?? rgw.endpoint)"
                bucket = "\(rgw.bucket)"
                prefix = "\(prefix)"
                credentials_file = "\(creds)"
                trusted_keys = [\(trusted)]
                timeout_seconds = 5
                max_attempts = 2
                retry_after_seconds = 0
                \(extra)
                """)
        }
    }

    /// Waits until `f`'s publish queue is empty (the background drainer), then drains once more in the
    /// foreground (a drainer that was already running when the last item was queued exits at once).
    func drained(_ f: LaneFixture) throws {
        for _ in 0..<300 {
            let q = (try? FileManager.default.contentsOfDirectory(atPath: f.workerStore + "/shared/queue")) ?? []
            if q.isEmpty { break }
            _ = try f.worker(["shared", "drain", "--json"])
            usleep(100_000)
        }
        let left = (try? FileManager.default.contentsOfDirectory(atPath: f.workerStore + "/shared/queue")) ?? []
        #expect(left.isEmpty, "publish queue not drained: \(left)")
    }

    func counters(_ f: LaneFixture) throws -> JSONValue {
        let r = try f.worker(["shared", "stats", "--json"])
        return try JSONParser().parse(Array(r.stdout.utf8))["worker"] ?? .null
    }

    func driver(_ f: LaneFixture) throws -> RunDriver {
        var d = RunDriver(client: try f.client(), artifactRoot: f.dir.sub("artifacts"))
        d.pollMillis = 50
        return d
    }

    /// A client of the bucket with the pair's prefix (to inspect and damage the tier).
    func s3() throws -> S3Client {
        try S3Client(
            S3Location(
                endpoint: rgw.endpoint, bucket: rgw.bucket, region: rgw.region,
                credentials: .init(accessKeyID: rgw.accessKey, secretAccessKey: rgw.secretKey)))
    }
}

@Suite("Shared tier: two workers, one Ceph RGW bucket")
struct SharedTierTests {
    @Test("a job on A is a verified hit on B; the source pushed to A is never uploaded by the host to B")
    func crossWorkerHit() throws {
        let p = try SharedPair()
        let root = try p.a.tree()
        let first = try p.driver(p.a).run(root: root, argv: iPhoneTest)
        #expect(first.exitCode == 0 && !first.cached)
        try p.drained(p.a)
        #expect(try p.counters(p.a)["results_published"]?.intValue == 1)
        #expect(try p.counters(p.a)["sources_published"]?.intValue == 1)

        // B has neither the source nor the result: has_source pulls the source, submit pulls the result.
        let second = try p.driver(p.b).run(root: root, argv: iPhoneTest)
        #expect(second.push.method == "present" && second.push.blobsSent == 0 && second.push.bundleBytes == 0)
        #expect(second.exitCode == 0 && second.cached, "\(second.summary)")
        #expect(second.jobKey == first.jobKey)
        let dir = try #require(second.artifacts)
        #expect(ArtifactManifest.verify(dir).isEmpty)
        let att = try JSONParser().parse(Array(try Data(contentsOf: URL(fileURLWithPath: dir + "/attestation.json"))))
        #expect(att["worker"]?["fingerprint"]?.stringValue == p.fingerprints["b"])
        #expect(att["origin"]?["publisher"]?["fingerprint"]?.stringValue == p.fingerprints["a"])
        let c = try p.counters(p.b)
        #expect(c["hits"]?.intValue == 1 && c["sources_pulled"]?.intValue == 1, "\(c)")
        // `rch-worker stats` shows the tier counters too (no bucket listing needed).
        let stats = try JSONParser().parse(Array(try p.b.worker(["stats", "--json"], config: false).stdout.utf8))
        #expect(stats["shared"]?["hits"]?.intValue == 1, "\(stats)")
        // The documents follow their schemas: the served attestation (with origin), B's local entry, the tier's.
        let attCheck = try Sub.validate(dir + "/attestation.json", schema: "attestation")
        #expect(attCheck.status == 0, "\(attCheck.output)")
        let entryFile = try #require(
            FileManager.default.enumerator(atPath: p.b.workerStore + "/results")?.compactMap { $0 as? String }
                .first { $0.hasSuffix(first.jobKey.hex + ".json") })
        let entryCheck = try Sub.validate(p.b.workerStore + "/results/" + entryFile, schema: "result_entry")
        #expect(entryCheck.status == 0, "\(entryCheck.output)")
        let namespace = String(entryFile.split(separator: "/")[0])
        let tierDoc = try #require(try p.s3().get(TierLayout(prefix: p.prefix).result(namespace, first.jobKey))).bytes
        let tierFile = p.dir.sub("shared_result.json")
        FileManager.default.createFile(atPath: tierFile, contents: Data(tierDoc))
        let tierCheck = try Sub.validate(tierFile, schema: "shared_result")
        #expect(tierCheck.status == 0, "\(tierCheck.output)")
        // B's local store now serves it without the tier; B publishes nothing new (the tier has both).
        try p.drained(p.b)
        #expect(try p.counters(p.b)["results_published"]?.intValue == 0)
    }

    @Test("a result signed by a key B does not trust is ignored: B runs the job itself")
    func untrusted() throws {
        let p = try SharedPair(trust: ["a": [], "b": []])
        let root = try p.a.tree()
        _ = try p.driver(p.a).run(root: root, argv: iPhoneTest)
        try p.drained(p.a)
        let second = try p.driver(p.b).run(root: root, argv: iPhoneTest)
        #expect(second.exitCode == 0 && !second.cached)
        let c = try p.counters(p.b)
        #expect(c["rejected"]?.intValue == 1 && c["hits"]?.intValue == 0, "\(c)")
        let log = try String(contentsOfFile: p.b.workerStore + "/shared/tier.log", encoding: .utf8)
        #expect(log.contains("not a trusted key"))
    }

    @Test("a flipped byte in a tier blob is never served: B counts it corrupt and builds locally")
    func corruptBlob() throws {
        let p = try SharedPair()
        let root = try p.a.tree()
        let first = try p.driver(p.a).run(root: root, argv: iPhoneTest)
        try p.drained(p.a)
        // Damage the build log's blob in the tier (same key, one byte changed).
        let namespace = try #require(
            try FileManager.default.contentsOfDirectory(atPath: p.a.workerStore + "/results").first)
        let entry = try #require(
            try ResultStore(store: LocalStore(root: p.a.workerStore)).entry(namespace: namespace, jobKey: first.jobKey))
        let log = try #require(entry.entries.first { $0.path == "build.log" }?.sha256)
        let s3 = try p.s3()
        let key = TierLayout(prefix: p.prefix).blob(log)
        var bytes = try #require(try s3.get(key)).bytes
        bytes[bytes.count / 2] ^= 0x20
        _ = try s3.put(key, bytes)
        let second = try p.driver(p.b).run(root: root, argv: iPhoneTest)
        #expect(second.exitCode == 0 && !second.cached)
        #expect(try p.counters(p.b)["corrupt"]?.intValue == 1)
        #expect(!(try LocalStore(root: p.b.workerStore)).blobs.has(.of(bytes)))
    }

    @Test("the gateway stopped mid-run: jobs succeed locally, publishes wait in the queue and go out when it is back")
    func outage() throws {
        // Below the test cluster's ports (RGW 7480, mon 7580–7581, daemons 7680–7779: scripts/rgw).
        let port = 7380 + Int.random(in: 0..<100)
        let endpoint = try TestRGW.startGateway(port)
        defer { try? TestRGW.stopGateway(port) }
        let p = try SharedPair(endpoint: ["a": endpoint])
        try TestRGW.stopGateway(port)
        let root = try p.a.tree()
        let run = try p.driver(p.a).run(root: root, argv: iPhoneTest)
        #expect(run.exitCode == 0 && !run.cached)
        let queued = try FileManager.default.contentsOfDirectory(atPath: p.a.workerStore + "/shared/queue")
        #expect(queued.count == 2, "\(queued)")  // the source and the result
        for q in queued {
            let check = try Sub.validate(p.a.workerStore + "/shared/queue/" + q, schema: "shared_publish")
            #expect(check.status == 0, "\(check.output)")
        }
        // A background drainer may hold the lock for a moment; ask until this one runs.
        var drain = try p.a.worker(["shared", "drain", "--json"])
        for _ in 0..<100 where drain.stdout.contains("\"ran\":false") {
            usleep(100_000)
            drain = try p.a.worker(["shared", "drain", "--json"])
        }
        let counters = try p.counters(p.a)
        #expect(drain.status == 30, "\(drain.stdout) \(drain.stderr) \(counters)")
        #expect(try p.counters(p.a)["unavailable"]?.intValue ?? 0 >= 1)
        // Back: the next drain publishes both; B hits.
        _ = try TestRGW.startGateway(port)
        try p.drained(p.a)
        let second = try p.driver(p.b).run(root: root, argv: iPhoneTest)
        #expect(second.exitCode == 0 && second.cached)
    }
}
