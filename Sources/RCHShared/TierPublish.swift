import Foundation
import RCHBundle
import RCHCore
import RCHS3
import RCHStore

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Publishing to the tier (run by the publish queue's drainer).
///
/// Protocol, per entry: note the server's time `T0` → if the tier already holds an entry at least as good
/// (trusted, same class, profile ≥), stop → upload every blob the entry names (create-only) → write the entry
/// (create-only; a poorer, untrusted or other-class entry is replaced with `If-Match` on its ETag) → the gc
/// check: if a tier gc was running at any time since `T0` (`gc/running.json` present, or `gc/last.json`
/// `finished_at_ms ≥ T0 − 1 s`), wait for that gc to end (its fence gone, replaced by a later gc's, or
/// expired) and re-check that every blob exists, uploading any it removed. A gc that started after the entry became visible sees the entry and keeps its blobs, so after
/// this check the entry is complete (PLAN §18, "gc and racing publishers").
extension SharedTier {
    public enum Published: Sendable, Equatable {
        case published(blobs: Int, bytes: UInt64)
        /// The tier already had an entry at least as good.
        case present
        /// The local entry is gone (gc'd or never recorded): nothing to publish.
        case gone
    }

    public func publishResult(namespace: String, jobKey: SHA256Digest) throws -> Published {
        guard let entry = try ResultStore(store: store).entry(namespace: namespace, jobKey: jobKey) else {
            return .gone
        }
        let key = layout.result(namespace, jobKey)
        let t0 = try client.serverTimeMs()
        var etag: String? = nil
        if let (bytes, tag) = try client.get(key) {
            if let theirs = try? SharedResult(bytes, namespace: namespace, jobKey: jobKey, trusted: trusted),
                theirs.entry.producer.executorClass == entry.producer.executorClass,
                theirs.entry.profile >= entry.profile
            {
                return .present
            }
            etag = tag
        }
        let digests = entry.entries.compactMap(\.sha256)
        let (n, bytes) = try upload(digests)
        let doc = try SharedResult.document(entry, by: worker)
        beforeEntryWrite?()
        switch try client.put(key, doc, createOnly: etag == nil, ifMatch: etag, contentType: "application/json") {
        case .stored: break
        case .preconditionFailed:
            // Another worker wrote it between our read and our write: theirs stands; the next publish of a
            // richer result retries.
            return .present
        }
        try afterGC(since: t0, digests)
        health.add([(.resultsPublished, 1), (.blobsUploaded, Int64(n)), (.bytesUploaded, Int64(bytes))])
        return .published(blobs: n, bytes: bytes)
    }

    public func publishSource(_ sha: SHA256Digest) throws -> Published {
        guard let manifest = try SourceStore(store: store).manifest(sha) else { return .gone }
        let key = layout.source(sha)
        let t0 = try client.serverTimeMs()
        if try client.head(key) != nil { return .present }
        let digests = manifest.entries.filter { $0.type == .file }.map(\.sha256)
        let (n, bytes) = try upload(digests)
        guard
            case .stored = try client.put(
                key, manifest.canonicalBytes() + [10], createOnly: true, contentType: "application/json")
        else { return .present }
        try afterGC(since: t0, digests)
        health.add([(.sourcesPublished, 1), (.blobsUploaded, Int64(n)), (.bytesUploaded, Int64(bytes))])
        return .published(blobs: n, bytes: bytes)
    }

    /// The gc check of the protocol above.
    func afterGC(since t0: Int64, _ digests: [SHA256Digest]) throws {
        var overlapped = false
        var waited = 0
        var seen: Int64? = nil
        // Wait for the gc seen running to end: its fence gone, or replaced by a later gc's (which started after
        // this entry was visible, so it keeps the entry's blobs), or expired (a crashed gc).
        while let (bytes, _) = try client.get(layout.gcRunning) {
            let fence = try? JSONParser().parse(bytes)
            let started = fence?["started_at_ms"]?.intValue ?? 0
            if let seen, started != seen { break }
            seen = started
            overlapped = true
            let expires = fence?["expires_at_ms"]?.intValue ?? 0
            if try client.serverTimeMs() >= expires || waited >= 6000 { break }
            usleep(100_000)
            waited += 1
        }
        if !overlapped, let (bytes, _) = try client.get(layout.gcLast),
            let finished = (try? JSONParser().parse(bytes))?["finished_at_ms"]?.intValue, finished >= t0 - 1000
        {
            overlapped = true
        }
        guard overlapped else { return }
        let gone = Mutex<[SHA256Digest]>([])
        let unique = Array(Set(digests))
        parallel(unique.count) { i in
            // Missing, or not known to exist (an error): upload again (create-only, so idempotent).
            let info = (try? self.client.head(self.layout.blob(unique[i]))) ?? nil
            if info == nil { gone.withLock { $0.append(unique[i]) } }
        }
        let missing = gone.withLock { $0 }
        if !missing.isEmpty {
            health.log("re-uploading \(missing.count) blob(s) a concurrent tier gc removed")
            _ = try upload(missing)
        }
    }
}
