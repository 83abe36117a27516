import Foundation
import RCHBundle
import RCHCore
import RCHHost
import RCHStore
import RCHTestSupport
import Testing

/// The delta base of a push is chosen per repository, not "whatever this host pushed last".
@Suite("Push against what the worker has of the same repository")
struct PushBaseTests {
    @Test("two repositories pushed alternately: an edit of the first is a delta against its own last version")
    func alternateRepositories() throws {
        let f = try LaneFixture(ssh: true)
        let big = try f.tree("big", scale: 0.1)
        let other = try f.tree("other", scale: 0.02)
        Tree(other).file("Other/Unique.swift", "let unique = 1\n")  // another repository's content
        let first = try Pusher(client: try f.client()).push(root: big, options: BundleOptions())
        _ = try Pusher(client: try f.client()).push(root: other, options: BundleOptions())
        try f.edit(big)
        let c = try f.client()
        let edit = try Pusher(client: c).push(root: big, options: BundleOptions())
        #expect(edit.method == "upload_tree" && edit.base == first.sourceSHA256, "\(edit.json.canonicalString)")
        #expect(edit.blobsSent == 1 && edit.wire["round_trips"]?.intValue == 1, "\(edit.json.canonicalString)")
        #expect((edit.wire["bytes_total"]?.intValue ?? .max) < Int64(first.bundleBytes) / 20)
    }

    @Test("a large delta the worker already has (another host pushed it) is not sent: bytes_sent is what went out")
    func treeAnotherHostPushed() throws {
        let f = try LaneFixture(ssh: true)
        let repo = try f.tree("repo", scale: 0.05)
        // Host B pushes a first version; host A then pushes a version with 2 MiB of new content.
        _ = try Pusher(client: try f.client(hostStore: f.dir.sub("host-b"))).push(root: repo, options: BundleOptions())
        Tree(repo).bytes("Resources/big.bin", Self.noise(2 << 20))
        let a = try Pusher(client: try f.client(hostStore: f.dir.sub("host-a"))).push(
            root: repo, options: BundleOptions())
        #expect(a.method == "upload_source", "\(a.json.canonicalString)")
        // Host B knows only its old version as a base: the delta (over 1 MiB) is announced, not sent, and the
        // worker answers that it has the source already.
        let b = try Pusher(client: try f.client(hostStore: f.dir.sub("host-b"))).push(
            root: repo, options: BundleOptions())
        #expect(b.method == "present" && b.blobsSent == 0, "\(b.json.canonicalString)")
        #expect((b.wire["bytes_sent"]?.intValue ?? .max) < 64 << 10, "\(b.json.canonicalString)")
        // A large delta the worker lacks: asked first (2 round trips), then only the missing blobs go.
        Tree(repo).bytes("Resources/big2.bin", Self.noise(2 << 20))
        let c = try Pusher(client: try f.client(hostStore: f.dir.sub("host-b"))).push(
            root: repo, options: BundleOptions())
        #expect(
            c.method == "upload_tree" && c.blobsSent == 1 && c.wire["round_trips"]?.intValue == 2,
            "\(c.json.canonicalString)")
        let sent = c.wire["bytes_sent"]?.intValue ?? 0
        #expect(sent >= 2 << 20 && sent < (2 << 20) + (256 << 10), "\(c.json.canonicalString)")
    }

    @Test(
        "a blob of the base lost behind the worker store's back: the worker names it and the host sends it",
        arguments: ["A/Lost.swift", "zz/Lost.swift"])
    func baseBlobLost(_ lostPath: String) throws {
        // "A/…" sorts first: inside the prefix a resumed verification does not read, found by the publish's
        // check; "zz/…" sorts last: read by the rebuild.
        let f = try LaneFixture(ssh: true)
        let repo = try f.tree("repo", scale: 0.02)
        Tree(repo).file(lostPath, "let lost = 1\n")
        let first = try Pusher(client: try f.client()).push(root: repo, options: BundleOptions())
        let lost = SHA256Digest.of(Array("let lost = 1\n".utf8))
        let blobs = try LocalStore(root: f.workerStore).blobs
        #expect(unlink(blobs.path(lost)) == 0)
        Tree(repo).file("m-edited.swift", "let edited = \(lostPath.count)\n")
        let edit = try Pusher(client: try f.client()).push(root: repo, options: BundleOptions())
        // The first exchange carries the edit; the worker finds the lost base blob and names it; the second
        // exchange sends it and commits.
        #expect(edit.method == "upload_tree" && edit.base == first.sourceSHA256, "\(edit.json.canonicalString)")
        #expect(edit.blobsSent == 2 && edit.wire["round_trips"]?.intValue == 2, "\(edit.json.canonicalString)")
        #expect(blobs.has(lost))
    }

    /// Bytes zstd cannot shrink (the blob pack is compressed).
    static func noise(_ n: Int) -> [UInt8] {
        var g = SystemRandomNumberGenerator()
        return (0..<(n / 8)).flatMap { _ in withUnsafeBytes(of: g.next() as UInt64) { Array($0) } }
    }
}
