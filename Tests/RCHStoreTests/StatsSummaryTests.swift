import Foundation
import RCHCore
import RCHTestSupport
import Testing

@testable import RCHStore

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// `stats` reuses per-shard totals while a shard directory is unchanged; every figure must stay what a
/// full scan reports.
@Suite("stats shard summaries")
struct StatsSummaryTests {
    /// Three results and one source; every directory's mtime an hour back, so a change gets a new mtime
    /// whatever the filesystem's timestamp granularity.
    static func store(_ d: TempDir) throws -> (LocalStore, [SHA256Digest], SHA256Digest) {
        let (store, keys) = try GCTests.populated(d)
        let (bundle, sha, _) = try StoreFixtures.bundle(d)
        try SourceStore(store: store).ingest(bundle: bundle, expected: sha)
        _ = try Run.shell("find '\(store.root)' -type d -exec touch -d '-1 hour' {} +")
        return (store, keys, sha)
    }

    /// Stats with a zero racy window (the directories were back-dated instead), split into the figures and
    /// the number of shards rescanned.
    static func stats(_ store: LocalStore, window: Int64 = 0) -> (figures: JSONValue, rescanned: Int, total: Int) {
        let v = StoreStats(store: store, racyWindowNanos: window).collect()
        guard case .object(var o) = v else { return (v, -1, -1) }
        let shards = o["shards"]
        o["shards"] = nil
        return (.object(o), Int(shards?["rescanned"]?.intValue ?? -1), Int(shards?["total"]?.intValue ?? -1))
    }

    /// What a full scan reports now (the summaries set aside for one run, then restored).
    static func fullScan(_ store: LocalStore) throws -> JSONValue {
        let path = ShardSummaries.path(store)
        let aside = path + ".aside"
        try FileManager.default.moveItem(atPath: path, toPath: aside)
        defer {
            _ = try? FileManager.default.removeItem(atPath: path)
            _ = try? FileManager.default.moveItem(atPath: aside, toPath: path)
        }
        let s = stats(store, window: Int64.max / 2)  // records nothing
        #expect(s.rescanned == s.total)
        return s.figures
    }

    @Test("an unchanged store is answered from the summaries with the figures of a full scan")
    func reuse() throws {
        let d = TempDir()
        let (store, _, _) = try Self.store(d)
        let first = Self.stats(store)
        #expect(first.rescanned == first.total && first.total > 2)
        let second = Self.stats(store)
        #expect(second.rescanned == 0 && second.figures == first.figures)
        #expect(try Self.fullScan(store) == first.figures)
        #expect(first.figures["blobs"]?.intValue ?? 0 > 3 && first.figures["entries"]?["sources"] == .int(1))
    }

    enum Change: String, CaseIterable {
        case addBlob, removeBlob, removeResult, addResult, rewriteResultInPlace, unreadableResult, useResult,
            quarantineSource
    }

    @Test("a change is seen by the next run; only the changed shards are rescanned", arguments: Change.allCases)
    func changes(_ change: Change) throws {
        let d = TempDir()
        let (store, keys, sha) = try Self.store(d)
        let before = Self.stats(store)
        let results = ResultStore(store: store)
        var expectRescanned = 1
        switch change {
        case .addBlob:
            let bytes = Array("a blob nobody references yet".utf8)
            let p = store.blobs.path(.of(bytes))
            try Syscalls.makeDirectories(String(p[..<p.lastIndex(of: "/")!]))
            try Data(bytes).write(to: URL(fileURLWithPath: p))
        case .removeBlob:
            let shard = try #require(
                try FileManager.default.contentsOfDirectory(atPath: store.blobs.root).filter { $0.count == 2 }.sorted()
                    .first)
            let blob = try #require(
                try FileManager.default.contentsOfDirectory(atPath: store.blobs.root + "/" + shard).first)
            try FileManager.default.removeItem(atPath: store.blobs.root + "/" + shard + "/" + blob)
        case .removeResult:
            try FileManager.default.removeItem(atPath: results.entryPath(namespace: "app", jobKey: keys[1]))
        case .addResult:
            let key = SHA256Digest.of(Array("new result".utf8))
            try StoreFixtures.artifacts(d.sub("new"), action: "build", jobKey: key, jobID: "job_0000000077")
            try results.record(d.sub("new"), jobKey: key, namespace: "other", producer: .recording)
            expectRescanned = -1  // a new namespace, new shards and new blobs
        case .rewriteResultInPlace:
            // Same inode, same directory: only the entry's size changed (the entry fingerprint notices).
            let fd = open(results.entryPath(namespace: "app", jobKey: keys[2]), O_WRONLY | O_TRUNC)
            #expect(fd >= 0)
            _ = write(fd, "{}", 2)
            close(fd)
        case .unreadableResult:
            let p = results.entryPath(namespace: "app", jobKey: keys[2])
            try FileManager.default.removeItem(atPath: p)
            try FileManager.default.createDirectory(atPath: p, withIntermediateDirectories: false)
        case .useResult:
            guard
                case .hit = results.lookup(
                    jobKey: keys[0], namespace: "app", profile: .minimal, executorClass: "recording")
            else {
                Issue.record("no hit")
                return
            }
            expectRescanned = 0  // last use is read from the entry's mtime, not remembered
        case .quarantineSource:
            // What `fsck --repair` does to a broken entry: a rename out of its shard.
            let entry = SourceStore(store: store).entryPath(sha)
            try Syscalls.makeDirectories(store.root + "/quarantine/entries")
            try FileManager.default.moveItem(atPath: entry, toPath: store.root + "/quarantine/entries/x.json")
        }
        let after = Self.stats(store)
        #expect(after.figures == (try Self.fullScan(store)), "\(change)")
        #expect(after.figures != before.figures, "\(change) changed nothing visible")
        if expectRescanned >= 0 {
            #expect(after.rescanned == expectRescanned, "\(change)")
        } else {
            #expect(after.rescanned > 0 && after.rescanned < after.total)
        }
        if change == .useResult { #expect(after.figures["newest_use"] != before.figures["newest_use"]) }
        if change == .rewriteResultInPlace || change == .unreadableResult {
            #expect(after.figures["entries"]?["results"]?["app"] == .int(3))
            #expect(after.figures["entries"]?["unreadable"] == .int(1))
        }
    }

    @Test("recently changed shards are scanned but not remembered")
    func racy() throws {
        let d = TempDir()
        let (store, _) = try GCTests.populated(d)  // directories modified just now
        let first = Self.stats(store, window: ShardSummaries.racyWindowNanos)
        let second = Self.stats(store, window: ShardSummaries.racyWindowNanos)
        #expect(first.rescanned == first.total && second.rescanned == second.total)
        #expect(second.figures == first.figures)
    }

    @Test("a damaged or foreign summary file is ignored", arguments: ["flip", "truncate", "garbage"])
    func damaged(_ how: String) throws {
        let d = TempDir()
        let (store, _, _) = try Self.store(d)
        let good = Self.stats(store)
        let path = ShardSummaries.path(store)
        var bytes = try DurableFile.read(path)
        switch how {
        case "flip": bytes[bytes.count / 2] ^= 1
        case "truncate": bytes.removeLast(40)
        default: bytes = Array("not a summary file at all".utf8)
        }
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        #expect(ShardSummaries(decoding: bytes) == nil)
        let again = Self.stats(store)
        #expect(again.rescanned == again.total && again.figures == good.figures)
        #expect(ShardSummaries.load(store).records.count == again.total)  // rewritten whole
    }
}
