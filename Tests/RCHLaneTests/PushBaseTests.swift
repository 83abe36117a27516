import Foundation
import RCHBundle
import RCHCore
import RCHHost
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
}
