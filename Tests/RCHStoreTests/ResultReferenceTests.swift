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

/// Cache hits served by reference: nothing copied, the blobs pinned while the job directory exists.
@Suite("Result cache: hits served by reference")
struct ResultReferenceTests {
    static let key = SHA256Digest.of(Array("ref-key".utf8))
    static let worker = WorkerIdentity(name: "mini-1", key: .generate())

    /// A store with one recorded rich test result; returns the store and its job directory for `jobID`.
    static func recorded(_ d: TempDir) throws -> LocalStore {
        let store = try LocalStore(root: d.sub("store"))
        try StoreFixtures.artifacts(d.sub("a"), action: "test", rich: true, jobKey: key)
        Tree(d.sub("a")).bytes("result.xcresult/Data/big.bin", [UInt8](repeating: 7, count: 300_000))
        try ResultStore(store: store).record(d.sub("a"), jobKey: key, namespace: "app", producer: .recording)
        return store
    }

    static func serve(_ store: LocalStore, _ jobID: String) throws -> ResultStore.Materialized {
        try ResultStore(store: store).materialize(
            jobKey: key, namespace: "app", profile: .rich, executorClass: "recording", jobID: jobID,
            runID: "run_0000000002", into: store.root + "/work/" + jobID + "/artifacts", worker: worker,
            byReference: true)
    }

    /// Reads every file of a job directory's manifest as a fetch does: the directory's copy, else the blob.
    static func resolved(_ store: LocalStore, _ dir: String) throws -> [String: [UInt8]] {
        let manifest = try JSONParser().parse(try DurableFile.read(dir + "/manifest.json"))
        var out: [String: [UInt8]] = [:]
        for e in manifest["entries"]?.arrayValue ?? [] where e["type"]?.stringValue == "file" {
            let path = try #require(e["path"]?.stringValue)
            let sha = try #require(e["sha256"]?.stringValue.flatMap { SHA256Digest(hex: $0) })
            let own = dir + "/" + path
            let bytes = try DurableFile.read(access(own, F_OK) == 0 ? own : store.blobs.path(sha))
            #expect(SHA256Digest.of(bytes) == sha, "\(path)")
            out[path] = bytes
        }
        return out
    }

    @Test("a hit by reference writes only the rewritten records and the commit files; every file resolves")
    func layout() throws {
        let d = TempDir()
        let store = try Self.recorded(d)
        let m = try Self.serve(store, "job_0000000002")
        let dir = store.root + "/work/job_0000000002/artifacts"
        #expect(m.cachedFromJobID == "job_0000000001" && m.profile == .rich)
        let written = Set(try FileManager.default.contentsOfDirectory(atPath: dir))
        #expect(!written.contains("result.xcresult") && !written.contains("build.log"), "\(written.sorted())")
        #expect(written.isSuperset(of: ["manifest.json", "attestation.json", "job_index.json", "summary.json"]))
        let files = try Self.resolved(store, dir)
        #expect(files["result.xcresult/Data/big.bin"] == [UInt8](repeating: 7, count: 300_000))
        let summary = try JSONParser().parse(try #require(files["summary.json"]))
        #expect(
            summary["job_id"] == .string("job_0000000002") && summary["cached_from_job_id"] == .string("job_0000000001")
        )
        // The same answer as an export by copy (same manifest entries, same root digest).
        let export = try ResultStore(store: store).materialize(
            jobKey: Self.key, namespace: "app", profile: .rich, executorClass: "recording", jobID: "job_0000000003",
            runID: "run_0000000002", into: d.sub("export"), worker: Self.worker)
        #expect(ArtifactManifest.verify(d.sub("export")).isEmpty)
        #expect(Set(try Self.resolved(store, d.sub("export")).keys) == Set(files.keys))
        _ = export
        let record = try ResultReferences(store: store).read("job_0000000002")
        #expect(record.jobKey == Self.key && record.namespace == "app" && record.cachedFromJobID == "job_0000000001")
        // Written directly, it is exactly the JCS text of its value.
        let bytes = try DurableFile.read(ResultReferences(store: store).path("job_0000000002"))
        #expect(try JSONParser().parse(bytes).canonicalBytes == bytes)
        let v = try TestPaths.validate(
            ResultReferences(store: store).path("job_0000000002"), schema: "result_reference")
        #expect(v.status == 0, "\(v.output)")
    }

    @Test("a miss or a wrong directory leaves nothing behind")
    func nothingPartial() throws {
        let d = TempDir()
        let store = try Self.recorded(d)
        #expect(throws: StoreError.self) {
            _ = try ResultStore(store: store).materialize(
                jobKey: .of([1]), namespace: "app", profile: .minimal, executorClass: "recording",
                jobID: "job_0000000004", runID: "run_0000000002", into: store.root + "/work/job_0000000004/artifacts",
                worker: Self.worker, byReference: true)
        }
        #expect(throws: StoreError.self) {
            _ = try ResultStore(store: store).materialize(
                jobKey: Self.key, namespace: "app", profile: .minimal, executorClass: "recording",
                jobID: "job_0000000005", runID: "run_0000000002", into: d.sub("elsewhere"), worker: Self.worker,
                byReference: true)
        }
        // A blob gone behind the store's back: a miss found after the record was written; nothing is left.
        let big = SHA256Digest.of([UInt8](repeating: 7, count: 300_000))
        unlink(store.blobs.path(big))
        #expect(
            throws: StoreError.resultMiss(
                "blob \(big.hex) for 'result.xcresult/Data/big.bin' is missing (incomplete entry)")
        ) {
            _ = try Self.serve(store, "job_0000000006")
        }
        #expect(!FileManager.default.fileExists(atPath: store.root + "/work/job_0000000006"))
        #expect(ResultReferences(store: store).jobIDs().isEmpty)
        #expect(!FileManager.default.fileExists(atPath: d.sub("elsewhere")))
        #expect(!FileManager.default.fileExists(atPath: store.root + "/work/job_0000000004"))
    }

    @Test("gc keeps a referenced result's blobs after evicting its entry, and collects them once the job is gone")
    func gcPins() throws {
        let d = TempDir()
        let store = try Self.recorded(d)
        _ = try Self.serve(store, "job_0000000002")
        let big = SHA256Digest.of([UInt8](repeating: 7, count: 300_000))
        _ = try Run.shell("find '\(store.blobs.root)' -type f -exec touch -d '-2 hours' {} +")
        var gc = GarbageCollector(store: store)
        gc.maxAgeSeconds = 0
        let first = try gc.run()
        #expect(first.entries.count == 1 && first.blobs == 0, "\(first.json)")
        #expect(store.blobs.has(big))
        let files = try Self.resolved(store, store.root + "/work/job_0000000002/artifacts")
        #expect(files["result.xcresult/Data/big.bin"]?.count == 300_000)
        let fsck = try Fsck(store: store).run()
        #expect(fsck.clean && fsck.referencesChecked == 1 && fsck.orphanBlobs == 0, "\(fsck.json)")
        // Job retention removes the job directory: nothing pins the blobs any more.
        try FileManager.default.removeItem(atPath: store.root + "/work/job_0000000002")
        let second = try gc.run()
        #expect(second.blobs > 0 && !store.blobs.has(big), "\(second.json)")
    }

    @Test("fsck reports a job served by reference whose blob is gone")
    func fsckDangling() throws {
        let d = TempDir()
        let store = try Self.recorded(d)
        _ = try Self.serve(store, "job_0000000002")
        let big = SHA256Digest.of([UInt8](repeating: 7, count: 300_000))
        unlink(store.blobs.path(big))
        let r = try Fsck(store: store).run()
        #expect(!r.clean && r.brokenReferences.map(\.jobID) == ["job_0000000002"], "\(r.json)")
        #expect(r.brokenReferences.first?.reason == "blob \(big.hex) is missing")
    }

    struct Damage: Sendable, CustomTestStringConvertible {
        var name: String
        var edit: @Sendable (inout String) -> Void
        var testDescription: String { name }
    }

    static let damages: [Damage] = [
        Damage(name: "an extra member") { $0 = $0.replacingOccurrences(of: "{", with: "{\"extra\":1,") },
        Damage(name: "another job's id") { $0 = $0.replacingOccurrences(of: "job_0000000002", with: "job_0000000009") },
        Damage(name: "blobs out of order") {
            let o = try! JSONParser().parse(Array($0.utf8))
            var list = o["blobs"]!.arrayValue!
            list.reverse()
            var obj = o.objectValue!
            obj["blobs"] = .array(list)
            $0 = String(decoding: JSONValue.object(obj).canonicalBytes, as: UTF8.self)
        },
        Damage(name: "a short digest") {
            $0 = $0.replacingOccurrences(of: "\"blobs\":[\"", with: "\"blobs\":[\"ab\",\"")
        },
        Damage(name: "schema version 2") {
            $0 = $0.replacingOccurrences(of: "\"schema_version\":1", with: "\"schema_version\":2")
        },
    ]

    @Test("a reference record our writer would not produce is refused and pins nothing", arguments: damages)
    func strict(_ damage: Damage) throws {
        let d = TempDir()
        let store = try Self.recorded(d)
        _ = try Self.serve(store, "job_0000000002")
        let refs = ResultReferences(store: store)
        var text = try String(contentsOfFile: refs.path("job_0000000002"), encoding: .utf8)
        damage.edit(&text)
        try text.write(toFile: refs.path("job_0000000002"), atomically: true, encoding: .utf8)
        #expect(throws: StoreError.self) { _ = try refs.read("job_0000000002") }
        let r = try Fsck(store: store).run()
        #expect(r.brokenReferences.map(\.jobID) == ["job_0000000002"], "\(r.json)")
    }
}
