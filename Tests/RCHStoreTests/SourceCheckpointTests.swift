import Foundation
import RCHBundle
import RCHCore
import RCHTestSupport
import Testing

@testable import RCHStore

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// A source committed against a base resumes the tar hash after their shared first entries (the base's
/// checkpoints); damaged checkpoints never refuse a valid source; gc removes them with the entry.
@Suite("Source checkpoints: resumed verification of a delta")
struct SourceCheckpointTests {
    /// The tree's manifest now, its edited file's content added to the store.
    static func edit(_ root: String, _ file: String, _ text: String, _ store: LocalStore) throws -> SourceManifest {
        try Data(text.utf8).write(to: URL(fileURLWithPath: root + "/" + file))
        let batch = try BlobBatch(blobs: store.blobs)
        _ = try Array(text.utf8).withUnsafeBytes { try batch.add($0) }
        try batch.commit()
        return try Bundler.bundle(root: root, output: nil).manifest
    }

    /// A generated tree ingested into a new store: the store, its sources, the stored manifest, the tree and
    /// its file paths in bundle order (dot files left out: editing `.rchignore` would change the selection).
    static func ingested(_ d: TempDir) throws -> (LocalStore, SourceStore, SourceManifest, String, [String]) {
        let (bundle, sha, root) = try StoreFixtures.bundle(d)
        let store = try LocalStore(root: d.sub("store"))
        let sources = SourceStore(store: store)
        _ = try sources.ingest(bundle: bundle, expected: sha)
        let base = try sources.manifest(sha)!
        let files = base.entries.filter { $0.type == .file && !$0.path.hasPrefix(".") }.map(\.path)
        return (store, sources, base, root, files)
    }

    @Test("commit against a base: resumed after the shared prefix, same digest and checkpoints as a whole hash")
    func resumed() throws {
        let d = TempDir()
        let (store, sources, base, root, files) = try Self.ingested(d)
        // An ingested source keeps its checkpoints (read from the uploaded stream): the first delta resumes too.
        let ingested = SourceCheckpoints(store: store).read(base.sourceSHA256, entries: base.entries.count)
        #expect(ingested == (try sources.rebuild(base, output: nil, verifyFiles: false)).checkpoints)
        let second = try Self.edit(root, files[files.count / 2], "second\n", store)
        #expect(
            sources.resume(second, base: base)?.entries.count
                == second.entries.firstIndex { $0.path == files[files.count / 2] })
        #expect(try sources.commit(second, base: base))
        let kept = SourceCheckpoints(store: store).read(second.sourceSHA256, entries: second.entries.count)
        #expect(kept?.count == second.entries.count)
        // The next delta resumes after the entries before its change.
        let changed = files[files.count * 3 / 4]
        let third = try Self.edit(root, changed, "third\n", store)
        let resume = sources.resume(third, base: second)
        #expect(resume?.entries.count == third.entries.firstIndex { $0.path == changed })
        #expect(try sources.commit(third, base: second))
        let whole = try sources.rebuild(third, output: nil, verifyFiles: false)
        #expect(whole.sourceSHA256 == third.sourceSHA256)
        #expect(
            SourceCheckpoints(store: store).read(third.sourceSHA256, entries: third.entries.count) == whole.checkpoints)
    }

    @Test("a damaged checkpoint file costs a whole hash, never a refusal; a malformed one is ignored")
    func damaged() throws {
        let d = TempDir()
        let (store, sources, base, root, files) = try Self.ingested(d)
        let second = try Self.edit(root, files[1], "second\n", store)
        #expect(try sources.commit(second, base: base))
        let ckpt = SourceCheckpoints(store: store).path(second.sourceSHA256)
        let third = try Self.edit(root, files[files.count - 1], "third\n", store)
        let k = try #require(sources.resume(third, base: second)).entries.count
        // The state the resume starts from, one bit off: still well-formed, so it is used — and gives another digest.
        var bytes = try DurableFile.read(ckpt)
        bytes[16 + 40 * (k - 1)] ^= 1
        _ = try DurableFile.write(bytes, to: ckpt, replace: true, durable: false)
        #expect(sources.resume(third, base: second)?.entries.count == k)
        #expect(try sources.commit(third, base: second))
        // Truncated: refused as a whole.
        _ = try DurableFile.write(Array(bytes.dropLast()), to: ckpt, replace: true, durable: false)
        #expect(SourceCheckpoints(store: store).read(second.sourceSHA256, entries: second.entries.count) == nil)
    }

    @Test("gc removes a source's checkpoints with its entry")
    func collected() throws {
        let d = TempDir()
        let (store, sources, base, root, files) = try Self.ingested(d)
        let second = try Self.edit(root, files[files.count - 1], "second\n", store)
        #expect(try sources.commit(second, base: base))
        let ckpt = SourceCheckpoints(store: store).path(second.sourceSHA256)
        #expect(access(ckpt, F_OK) == 0)
        let gc = try Run.process(
            TestPaths.executable("rch-worker"), ["gc", "--max-age", "0s", "--store", store.root, "--json"])
        #expect(gc.status == 0, "\(gc.stdout) \(gc.stderr)")
        #expect(!sources.has(second.sourceSHA256) && access(ckpt, F_OK) != 0)
    }
}
