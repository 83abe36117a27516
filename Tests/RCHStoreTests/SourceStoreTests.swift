import Foundation
import RCHBundle
import RCHCore
import RCHStore
import RCHTestSupport
import Testing
import XcodeTreeGen

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

@Suite("Sources: ingest, completeness, materialise, export")
struct SourceStoreTests {
    @Test(
        "ingest → present → materialise into a job dir → the tree re-bundles to the same digest; export is byte-identical"
    )
    func roundTrip() throws {
        let d = TempDir()
        let (bundle, sha, _) = try StoreFixtures.bundle(d)
        let store = try LocalStore(root: d.sub("store"))
        let sources = SourceStore(store: store)
        let r = try sources.ingest(bundle: bundle, expected: sha)
        #expect(r.stored && r.sourceSHA256 == sha && r.newBlobs > 0)
        #expect(sources.has(sha))
        let v = try TestPaths.validate(sources.entryPath(sha), schema: "source_manifest")
        #expect(v.status == 0, "\(v.output)")
        let again = try sources.ingest(bundle: bundle, expected: sha)
        #expect(!again.stored && again.newBlobs == 0)
        _ = try sources.materialize(sha, jobID: "job_0000000001", into: d.sub("jobs/j1"))
        #expect(try Bundler.bundle(root: d.sub("jobs/j1"), output: nil).sourceSHA256 == sha)
        _ = try sources.export(sha, to: d.sub("export.tar.zst"))
        let a = try Run.shell("zstd -dc '\(bundle)' | sha256sum; zstd -dc '\(d.sub("export.tar.zst"))' | sha256sum")
        let lines = a.stdout.split(separator: "\n")
        #expect(lines.count == 2 && lines[0] == lines[1] && lines[0].hasPrefix(sha.hex))
        #expect(throws: StoreError.self) {
            _ = try sources.materialize(sha, jobID: "job_0000000002", into: d.sub("jobs/j1"))
        }  // never reused
        #expect(throws: IdentifierError.self) {
            _ = try sources.materialize(sha, jobID: "../../x", into: d.sub("jobs/x"))
        }
    }

    @Test("has_source's batch answer: present, absent in a shard that exists, absent in one that does not, empty store")
    func query() throws {
        let d = TempDir()
        let (bundle, sha, _) = try StoreFixtures.bundle(d)
        let store = try LocalStore(root: d.sub("store"))
        let sources = SourceStore(store: store)
        #expect(sources.query([sha, .of([1])]) == [false, false])  // no sources directory yet
        _ = try sources.ingest(bundle: bundle, expected: sha)
        var sameShard = sha.bytes
        sameShard[31] ^= 1
        var otherShard = sha.bytes
        otherShard[0] ^= 0x80
        let asked = [SHA256Digest(bytes: otherShard), sha, SHA256Digest(bytes: sameShard), sha]
        #expect(sources.query(asked) == [false, true, false, true])
        // Something in the sources directory that is not a shard does not make a digest present.
        try Syscalls.makeDirectories(store.sourcesDirectory + "/" + String(sha.hex.prefix(2)).uppercased() + "x")
        #expect(sources.query(asked) == [false, true, false, true])
    }

    @Test("bad input leaves nothing: wrong digest, wrong content_sha256, truncated stream, not a bundle")
    func refusals() throws {
        let d = TempDir()
        let (bundle, sha, _) = try StoreFixtures.bundle(d)
        let store = try LocalStore(root: d.sub("store"))
        let sources = SourceStore(store: store)
        let wrong = SHA256Digest.of([1])
        #expect(throws: BundleError.self) { _ = try sources.ingest(bundle: bundle, expected: wrong) }
        #expect(throws: BundleError.self) {
            _ = try sources.ingest(bundle: bundle, expected: sha, contentSHA256: wrong)
        }
        let data = try Data(contentsOf: URL(fileURLWithPath: bundle))
        try data.prefix(data.count / 2).write(to: URL(fileURLWithPath: d.sub("half.tar.zst")))
        #expect(throws: BundleError.self) { _ = try sources.ingest(bundle: d.sub("half.tar.zst"), expected: sha) }
        try Data("not a bundle".utf8).write(to: URL(fileURLWithPath: d.sub("junk.tar.zst")))
        #expect(throws: BundleError.self) { _ = try sources.ingest(bundle: d.sub("junk.tar.zst")) }
        #expect(!sources.has(sha))
        let visible = try Run.shell("find '\(store.root)' -type f ! -name store.json | wc -l")
        #expect(visible.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == "0", "files left behind")
    }

    @Test("a blob deleted or corrupted behind an entry: not present, never served, nothing left half-written")
    func damagedBlobs() throws {
        let d = TempDir()
        let (bundle, sha, _) = try StoreFixtures.bundle(d)
        let store = try LocalStore(root: d.sub("store"))
        let sources = SourceStore(store: store)
        try sources.ingest(bundle: bundle, expected: sha)
        let m = try #require(try sources.manifest(sha))
        let victim = try #require(m.entries.first { $0.type == .file && $0.size > 100 })
        let path = store.blobs.path(victim.sha256)
        // Corrupt one byte (same size): still "present", but serving it fails and leaves no job dir.
        chmod(path, 0o644)
        let fd = open(path, O_WRONLY)
        var byte: UInt8 = 0x5A
        pwrite(fd, &byte, 1, 10)
        close(fd)
        #expect(throws: StoreError.corruptBlob(victim.sha256)) {
            _ = try sources.materialize(sha, jobID: "job_0000000001", into: d.sub("jobs/j1"))
        }
        #expect(!FileManager.default.fileExists(atPath: d.sub("jobs/j1")))
        #expect(try FileManager.default.contentsOfDirectory(atPath: d.sub("jobs")).isEmpty)
        #expect(throws: (any Error).self) { _ = try sources.export(sha, to: d.sub("e.tar.zst")) }
        // Delete it: no longer present; ingest again repairs it.
        unlink(path)
        #expect(!sources.has(sha))
        #expect(sources.missingBlobs(m) == [victim.sha256])
        #expect(throws: StoreError.self) {
            _ = try sources.materialize(sha, jobID: "job_0000000002", into: d.sub("jobs/j2"))
        }
        _ = try sources.ingest(bundle: bundle)
        #expect(sources.has(sha) && store.blobs.verify(victim.sha256))
    }

    @Test("incremental commit: manifest + only the missing blobs, verified by rebuilding the tar")
    func incremental() throws {
        let d = TempDir()
        let (bundle, sha, root) = try StoreFixtures.bundle(d)
        let store = try LocalStore(root: d.sub("store"))
        let sources = SourceStore(store: store)
        try sources.ingest(bundle: bundle, expected: sha)
        let edited = try XcodeTreeGen(seed: 1, scale: 0.02).editTree(at: root, count: 2)
        Tree(root).file("Brand/New.swift", "let x = 1\n")
        let host = try Bundler.bundle(root: root, output: nil)
        let missing = sources.missingBlobs(host.manifest)
        #expect(missing.count == edited.count + 1)
        // A manifest that lies about its digest is refused even when every blob is present.
        let batch = try store.blobs.batch()
        for e in host.manifest.entries where e.type == .file && missing.contains(e.sha256) {
            let bytes = Array(try Data(contentsOf: URL(fileURLWithPath: root + "/" + e.path)))
            _ = try bytes.withUnsafeBytes { try batch.add($0) }
        }
        try batch.commit()
        var lying = host.manifest
        lying.sourceSHA256 = .of(Array("not this tree".utf8))
        #expect(throws: BundleError.self) { try sources.commit(lying) }
        #expect(!sources.has(lying.sourceSHA256))
        // Naming a source that is already present changes nothing and says so.
        var present = host.manifest
        present.sourceSHA256 = sha
        #expect(try sources.commit(present) == false)
        #expect(try sources.commit(host.manifest))
        #expect(sources.has(host.sourceSHA256))
        _ = try sources.materialize(host.sourceSHA256, jobID: "job_0000000003", into: d.sub("jobs/j3"))
        #expect(try Bundler.bundle(root: d.sub("jobs/j3"), output: nil).sourceSHA256 == host.sourceSHA256)
        // A manifest naming a blob the store lacks cannot commit.
        Tree(root).file("Another.swift", "let y = 2\n")
        let second = try Bundler.bundle(root: root, output: nil)
        #expect(throws: StoreError.self) { try sources.commit(second.manifest) }
    }

    @Test("concurrent ingest of the same and of different bundles from several processes")
    func concurrentProcesses() throws {
        let d = TempDir()
        var bundles: [(String, SHA256Digest)] = []
        for seed in 1...3 {
            let (b, s, _) = try StoreFixtures.bundle(d, name: "t\(seed)", seed: UInt64(seed))
            bundles.append((b, s))
        }
        let exe = TestPaths.executable("rch-worker")
        var procs: [Process] = []
        for i in 0..<9 {
            let (b, s) = bundles[i % 3]
            let p = Process()
            p.executableURL = URL(fileURLWithPath: exe)
            p.arguments = ["store", "ingest", b, "--expect", s.hex, "--store", d.sub("store")]
            p.standardOutput = FileHandle.nullDevice
            try p.run()
            procs.append(p)
        }
        for p in procs {
            p.waitUntilExit()
            #expect(p.terminationStatus == 0)
        }
        let store = try LocalStore(root: d.sub("store"))
        for (_, s) in bundles { #expect(SourceStore(store: store).has(s)) }
        #expect(try StoreFixtures.checkStoreInvariants(store).isEmpty)
    }
}

@Suite("Blobs")
struct BlobTests {
    @Test("a put with an expected digest refuses other content; duplicates are stored once; batches commit atomically")
    func put() throws {
        let d = TempDir()
        let store = try LocalStore(root: d.sub("store"))
        let data = Array("hello blob".utf8)
        let good = SHA256Digest.of(data)
        let batch = try store.blobs.batch()
        #expect(throws: StoreError.corruptBlob(.of([1]))) {
            _ = try data.withUnsafeBytes { try batch.add($0, expected: .of([1])) }
        }
        #expect(try data.withUnsafeBytes { try batch.add($0, expected: good) } == good)
        #expect(try data.withUnsafeBytes { try batch.add($0) } == good)
        let big = try batch.stream()
        try [UInt8](repeating: 3, count: 3 << 20).withUnsafeBytes { try big.write($0) }
        let bigDigest = SHA256Digest.of([UInt8](repeating: 3, count: 3 << 20))
        let wrong = try batch.stream()
        try [UInt8](repeating: 4, count: 10).withUnsafeBytes { try wrong.write($0) }
        #expect(throws: StoreError.self) { _ = try wrong.finish(expected: good) }
        #expect(try big.finish(expected: bigDigest) == bigDigest)
        #expect(store.blobs.missing([good, bigDigest]) == [good, bigDigest])  // nothing visible before commit
        try batch.commit()
        #expect(store.blobs.missing([good, bigDigest, .of([9])]) == [.of([9])])
        #expect(store.blobs.verify(good) && store.blobs.verify(bigDigest))
        #expect(batch.newBlobs == 2)
        let leftovers = try Run.shell("find '\(store.blobs.root)' -name '.staging-*'")
        #expect(leftovers.stdout.isEmpty)
    }
}
