import Foundation
import RCHAttestation
import RCHCore
import RCHStore
import RCHTestSupport
import Testing

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

@Suite("Result cache: record, profile-aware lookup, materialise")
struct ResultStoreTests {
    static let key = SHA256Digest.of(Array("job-key".utf8))
    static let worker = WorkerIdentity(name: "mini-1", key: .generate())

    struct ProfileCase: Sendable, CustomTestStringConvertible {
        var action: String, entryRich: Bool, requested: ArtifactProfile
        var testDescription: String {
            "\(action) entry=\(entryRich ? "rich" : "minimal") requested=\(requested.rawValue)"
        }
    }

    static let matrix: [ProfileCase] = ["build", "test"].flatMap { a in
        [false, true].flatMap { r in
            ArtifactProfile.allCases.map { ProfileCase(action: a, entryRich: r, requested: $0) }
        }
    }

    @Test("profile matrix: hit iff the entry's computed profile ≥ the requested one", arguments: matrix)
    func profiles(_ c: ProfileCase) throws {
        let d = TempDir()
        try StoreFixtures.artifacts(d.sub("a"), action: c.action, rich: c.entryRich, jobKey: Self.key)
        let results = ResultStore(store: try LocalStore(root: d.sub("store")))
        let r = try results.record(d.sub("a"), jobKey: Self.key, namespace: "app", producer: .recording)
        #expect(r.profile == (c.entryRich ? .rich : .minimal))
        let hit = results.lookup(jobKey: Self.key, namespace: "app", profile: c.requested, executorClass: "recording")
        if c.entryRich || c.requested == .minimal {
            guard case .hit = hit else {
                Issue.record("expected a hit, got \(hit)")
                return
            }
        } else {
            #expect(hit == .miss("cached profile minimal does not satisfy requested rich"))
        }
        #expect(
            results.lookup(jobKey: Self.key, namespace: "other", profile: .minimal, executorClass: "recording")
                != results.lookup(jobKey: Self.key, namespace: "app", profile: .minimal, executorClass: "recording"))
    }

    @Test("only successful, complete results are cached", arguments: ["failed", "cancelled", "rejected"])
    func notCacheable(status: String) throws {
        let d = TempDir()
        try StoreFixtures.artifacts(d.sub("a"), status: status, jobKey: Self.key)
        let results = ResultStore(store: try LocalStore(root: d.sub("store")))
        #expect(throws: StoreError.self) {
            _ = try results.record(d.sub("a"), jobKey: Self.key, namespace: "app", producer: .recording)
        }
        guard
            case .miss = results.lookup(
                jobKey: Self.key, namespace: "app", profile: .minimal, executorClass: "recording")
        else {
            Issue.record("cached a \(status) result")
            return
        }
    }

    @Test("a test result without result.xcresult is not even minimal")
    func missingXcresult() throws {
        let d = TempDir()
        try StoreFixtures.artifacts(d.sub("a"), action: "test", jobKey: Self.key)
        try FileManager.default.removeItem(atPath: d.sub("a/result.xcresult"))
        let results = ResultStore(store: try LocalStore(root: d.sub("store")))
        #expect(
            throws: StoreError.notCacheable(
                "the artifact set lacks result.xcresult/ (needed even for the minimal profile)")
        ) {
            _ = try results.record(d.sub("a"), jobKey: Self.key, namespace: "app", producer: .recording)
        }
    }

    @Test("a richer record replaces a poorer entry; a poorer one never replaces a richer")
    func upgrade() throws {
        let d = TempDir()
        let results = ResultStore(store: try LocalStore(root: d.sub("store")))
        try StoreFixtures.artifacts(d.sub("min"), jobKey: Self.key)
        try StoreFixtures.artifacts(d.sub("rich"), rich: true, jobKey: Self.key, jobID: "job_0000000002")
        #expect(try results.record(d.sub("min"), jobKey: Self.key, namespace: "app", producer: .recording).stored)
        #expect(try results.record(d.sub("rich"), jobKey: Self.key, namespace: "app", producer: .recording).stored)
        let again = try results.record(d.sub("min"), jobKey: Self.key, namespace: "app", producer: .recording)
        #expect(!again.stored && again.profile == .rich)
        #expect(try results.entry(namespace: "app", jobKey: Self.key)?.jobID == "job_0000000002")
    }

    @Test("a hit becomes a miss when a blob vanishes; corrupted bytes are never served")
    func completeness() throws {
        let d = TempDir()
        let store = try LocalStore(root: d.sub("store"))
        let results = ResultStore(store: store)
        try StoreFixtures.artifacts(d.sub("a"), jobKey: Self.key)
        try results.record(d.sub("a"), jobKey: Self.key, namespace: "app", producer: .recording)
        let entry = try #require(try results.entry(namespace: "app", jobKey: Self.key))
        let log = try #require(entry.entries.first { $0.path == "build.log" }?.sha256)
        let data = try #require(entry.entries.first { $0.path == "result.xcresult/Data/data.0001" }?.sha256)
        chmod(store.blobs.path(data), 0o644)
        try Data([UInt8](repeating: 8, count: 5000)).write(to: URL(fileURLWithPath: store.blobs.path(data)))
        #expect(throws: StoreError.corruptBlob(data)) {
            _ = try results.materialize(
                jobKey: Self.key, namespace: "app", profile: .minimal, executorClass: "recording",
                jobID: "job_0000000009", runID: "run_0000000009",
                into: d.sub("jobs/j9"), worker: Self.worker)
        }
        #expect(!FileManager.default.fileExists(atPath: d.sub("jobs/j9")))
        unlink(store.blobs.path(log))
        #expect(
            results.lookup(jobKey: Self.key, namespace: "app", profile: .minimal, executorClass: "recording")
                == .miss("blob \(log.hex) for 'build.log' is missing (incomplete entry)"))
    }

    @Test(
        "materialise a hit: ids rewritten, cached_from_job_id, regenerated manifest verified by the host and by the schemas"
    )
    func materialise() throws {
        let d = TempDir()
        let store = try LocalStore(root: d.sub("store"))
        let results = ResultStore(store: store)
        try StoreFixtures.artifacts(d.sub("a"), action: "test", rich: true, jobKey: Self.key)
        try results.record(d.sub("a"), jobKey: Self.key, namespace: "app", producer: .recording)
        let m = try results.materialize(
            jobKey: Self.key, namespace: "app", profile: .rich, executorClass: "recording", jobID: "job_0000000002",
            runID: "run_0000000002",
            into: d.sub("jobs/j2"), worker: Self.worker)
        #expect(m.cachedFromJobID == "job_0000000001" && m.profile == .rich)
        #expect(ArtifactManifest.verify(d.sub("jobs/j2")).isEmpty)
        let summary = try JSONParser().parse(
            Array(try Data(contentsOf: URL(fileURLWithPath: d.sub("jobs/j2/summary.json")))))
        #expect(summary["job_id"] == .string("job_0000000002") && summary["run_id"] == .string("run_0000000002"))
        #expect(
            summary["cached_from_job_id"] == .string("job_0000000001")
                && summary["created_at"] != .string("2026-11-22T00:00:00.000Z"))
        let toolchain = try JSONParser().parse(
            Array(try Data(contentsOf: URL(fileURLWithPath: d.sub("jobs/j2/toolchain.json")))))
        #expect(toolchain["job_id"] == .string("job_0000000002") && toolchain["cached_from_job_id"] == nil)
        let attestation = try JSONParser().parse(
            Array(try Data(contentsOf: URL(fileURLWithPath: d.sub("jobs/j2/attestation.json")))))
        let manifestBytes = Array(try Data(contentsOf: URL(fileURLWithPath: d.sub("jobs/j2/manifest.json"))))
        #expect(attestation["manifest_sha256"] == .string(SHA256Digest.of(manifestBytes).hex))
        #expect(attestation["job_key"] == .string(Self.key.hex) && attestation["worker"]?["name"] == .string("mini-1"))
        for (file, schema) in [
            ("manifest.json", "manifest"), ("attestation.json", "attestation"), ("job_index.json", "job_index"),
            ("summary.json", "summary"),
        ] {
            let v = try TestPaths.validate(d.sub("jobs/j2/" + file), schema: schema)
            #expect(v.status == 0, "\(file): \(v.output)")
        }
        // Every file the store wrote validates against its schema.
        let entryFile = results.entryPath(namespace: "app", jobKey: Self.key)
        let jobRecord = store.jobsDirectory + "/job_0000000002.json"
        for (file, schema) in [
            (entryFile, "result_entry"), (jobRecord, "job_record"), (store.root + "/store.json", "store"),
        ] {
            let v = try TestPaths.validate(file, schema: schema)
            #expect(v.status == 0, "\(file): \(v.output)")
        }
        // The original artifact directory was not touched.
        #expect(ArtifactManifest.verify(d.sub("a")).first?.path == "manifest.json")
        // The same job id cannot be reused for another key.
        try StoreFixtures.artifacts(d.sub("b"), jobKey: .of([9]), jobID: "job_0000000003")
        try results.record(d.sub("b"), jobKey: .of([9]), namespace: "app", producer: .recording)
        #expect(throws: StoreError.self) {
            _ = try results.materialize(
                jobKey: .of([9]), namespace: "app", profile: .minimal, executorClass: "recording",
                jobID: "job_0000000002", runID: "run_0000000002",
                into: d.sub("jobs/j2b"), worker: Self.worker)
        }
    }

    @Test(
        "the host verifier reports every kind of damage with its path", arguments: ["flip", "extra", "missing", "root"])
    func verifier(damage: String) throws {
        let d = TempDir()
        let results = ResultStore(store: try LocalStore(root: d.sub("store")))
        try StoreFixtures.artifacts(d.sub("a"), jobKey: Self.key)
        try results.record(d.sub("a"), jobKey: Self.key, namespace: "app", producer: .recording)
        _ = try results.materialize(
            jobKey: Self.key, namespace: "app", profile: .minimal, executorClass: "recording", jobID: "job_0000000002",
            runID: "run_0000000002",
            into: d.sub("j"), worker: Self.worker)
        switch damage {
        case "flip":
            let fd = open(d.sub("j/build.log"), O_WRONLY)
            var b: UInt8 = 0x41
            pwrite(fd, &b, 1, 0)
            close(fd)
            #expect(ArtifactManifest.verify(d.sub("j")).map(\.path) == ["build.log"])
        case "extra":
            Tree(d.sub("j")).file("result.xcresult/sneaky", "x")
            #expect(ArtifactManifest.verify(d.sub("j")).map(\.path) == ["result.xcresult/sneaky"])
        case "missing":
            unlink(d.sub("j/toolchain.json"))
            #expect(ArtifactManifest.verify(d.sub("j")).map(\.path) == ["toolchain.json"])
        default:
            var text = try String(contentsOfFile: d.sub("j/manifest.json"), encoding: .utf8)
            text = text.replacingOccurrences(of: "\"size\":16", with: "\"size\":17")
            try Data(text.utf8).write(to: URL(fileURLWithPath: d.sub("j/manifest.json")))
            let errs = ArtifactManifest.verify(d.sub("j"))
            #expect(errs.contains { $0.path == "manifest.json" && $0.reason.contains("artifact_root_sha256") })
        }
        let cli = try Run.process(TestPaths.executable("rch-xcode"), ["verify-artifacts", d.sub("j"), "--json"])
        #expect(cli.status == 70 && cli.stdout.contains("INTEGRITY_MISMATCH"))
    }
}

@Suite("Leases")
struct LeaseTests {
    @Test("acquire, renew, release, expiry")
    func lifecycle() throws {
        let d = TempDir()
        let leases = Leases(store: try LocalStore(root: d.sub("store")))
        let subject = LeaseSubject.source(.of([1]))
        let a = try leases.acquire(subject, jobID: "job_0000000001", ttlSeconds: 60)
        #expect(leases.active(on: subject).map(\.id) == [a.id])
        let short = try leases.acquire(
            .result(namespace: "app", jobKey: .of([2])), jobID: "job_0000000002", ttlSeconds: 0)
        #expect(leases.active(on: short.subject).isEmpty)  // expired at once: crash-safe by construction
        let renewed = try leases.renew(short, ttlSeconds: 60)
        #expect(leases.active(on: short.subject).map(\.id) == [renewed.id])
        for l in [a, renewed] {
            let v = try TestPaths.validate(leases.store.leasesDirectory + "/\(l.id).json", schema: "lease")
            #expect(v.status == 0, "\(v.output)")
        }
        leases.release(a)
        #expect(leases.active(on: subject).isEmpty)
        #expect(throws: IdentifierError.self) { _ = try leases.acquire(subject, jobID: "bad id", ttlSeconds: 1) }
    }
}
