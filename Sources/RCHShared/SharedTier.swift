import Foundation
import RCHBundle
import RCHCore
import RCHS3
import RCHStore

/// The fleet's shared tier on an S3-compatible object store (PLAN §18): the entry point the worker uses.
///
/// - ``pullResult(namespace:jobKey:profile:executorClass:)``: on a local miss, find a signed, trusted result
///   of this worker's executor class in the tier, download its missing blobs (each verified against its
///   digest), ingest them and the entry into the local store — it is then served exactly like a local hit.
/// - ``pullSource(_:)``: a source the worker lacks but the tier has is pulled and committed (the canonical tar
///   rebuilt from the blobs must hash to `source_sha256`), so the host never uploads it.
/// - ``publishResult(namespace:jobKey:)`` / ``publishSource(_:)``: blobs first (create-only), then the entry;
///   run by the publish queue's drainer, never on a job's critical path.
///
/// Failure rule: nothing here fails a job. Every S3 error makes the tier unavailable for
/// `retry_after_seconds` (``TierHealth``), counted and logged once per interval; a corrupt object is
/// counted, logged and never served.
public final class SharedTier: @unchecked Sendable {
    public let config: SharedConfig
    public let store: LocalStore
    public let layout: TierLayout
    public let health: TierHealth
    public let client: S3Client
    let worker: WorkerIdentity
    /// Tests only: runs between a publish's blob uploads and its entry write (to stage a gc in that window).
    var beforeEntryWrite: (() -> Void)?

    public init(config: SharedConfig, store: LocalStore, worker: WorkerIdentity) throws {
        self.config = config
        self.store = store
        self.worker = worker
        layout = TierLayout(prefix: config.prefix)
        health = TierHealth(store: store, retryAfterSeconds: config.retryAfterSeconds)
        client = try S3Client(config.location)
    }

    /// Fingerprints whose results are served: `trusted_keys` and this worker's own key.
    public var trusted: Set<String> { config.trustedKeys.union([worker.fingerprint]) }

    public enum Pull: Sendable, Equatable {
        /// Ingested into the local store (`blobs` downloaded, `bytes` of them).
        case pulled(blobs: Int, bytes: UInt64)
        /// Not usable from the tier, and why (absent, untrusted, other class, poorer profile, corrupt).
        case miss(String)
        /// The tier was not asked (backing off after a failure) or failed now.
        case unavailable(String)
    }

    /// Runs `body` against the tier; an S3 error marks it unavailable and becomes `.unavailable`.
    func guarded(_ body: () throws -> Pull) -> Pull {
        guard health.available() else { return .unavailable("backing off after a failure (shared/health.json)") }
        do {
            let r = try body()
            health.succeeded()
            return r
        } catch let e as S3Error {
            health.failed(e)
            return .unavailable("\(e)")
        } catch {
            health.log("local error while using the tier: \(error)")
            return .miss("\(error)")
        }
    }

    public func pullResult(namespace: String, jobKey: SHA256Digest, profile: ArtifactProfile, executorClass: String)
        -> Pull
    {
        guarded {
            health.add(.lookups)
            guard let (bytes, _) = try client.get(layout.result(namespace, jobKey)) else {
                health.add(.misses)
                return .miss("the shared tier has no result for \(jobKey.hex)")
            }
            let shared: SharedResult
            do { shared = try SharedResult(bytes, namespace: namespace, jobKey: jobKey, trusted: trusted) } catch {
                health.add([(.rejected, 1), (.misses, 1)])
                health.log("ignored \(layout.result(namespace, jobKey)): \(error)")
                return .miss("\(error)")
            }
            var entry = shared.entry
            guard entry.producer.executorClass == executorClass else {
                health.add(.misses)
                return .miss("the shared result was produced by the \(entry.producer.executorClass) executor")
            }
            guard entry.profile >= profile else {
                health.add(.misses)
                return .miss("the shared result's profile \(entry.profile.rawValue) is below \(profile.rawValue)")
            }
            let batch = try store.blobs.batch()
            let got = try download(entry.entries.compactMap(\.sha256), into: batch, what: "result \(jobKey.hex)")
            guard case .pulled(let n, let b) = got else {
                batch.discard()
                return got
            }
            entry.origin = .init(publisherName: shared.publisherName, publisherFingerprint: shared.publisherFingerprint)
            _ = try ResultStore(store: store).publish(entry, batch: batch)
            recordUse(layout.resultUse(day: TierLayout.day(ms: Timestamp.nowNanos() / 1_000_000), namespace, jobKey))
            health.add([(.hits, 1), (.blobsDownloaded, Int64(n)), (.bytesDownloaded, Int64(b))])
            return got
        }
    }

    public func pullSource(_ sha: SHA256Digest) -> Pull {
        guarded {
            guard let (bytes, _) = try client.get(layout.source(sha), limit: 256 << 20) else {
                return .miss("the shared tier has no source \(sha.hex)")
            }
            let manifest: SourceManifest
            do {
                manifest = try SourceManifest(json: try JSONParser().parse(bytes))
                guard manifest.sourceSHA256 == sha else {
                    throw StoreError.corrupt("it names \(manifest.sourceSHA256.hex)")
                }
            } catch {
                health.add(.corrupt)
                health.log("ignored \(layout.source(sha)): not a valid source manifest for it (\(error))")
                return .miss("the shared source manifest is invalid")
            }
            let sources = SourceStore(store: store)
            let batch = try store.blobs.batch()
            let got = try download(sources.missingBlobs(manifest), into: batch, what: "source \(sha.hex)")
            guard case .pulled(let n, let b) = got else {
                batch.discard()
                return got
            }
            try batch.commit()
            do { try sources.commit(manifest) } catch {
                // The blobs verified one by one but do not rebuild the source: the manifest lies.
                health.add(.corrupt)
                health.log("ignored \(layout.source(sha)): its blobs do not rebuild the source (\(error))")
                return .miss("the shared source does not rebuild to its digest")
            }
            recordUse(layout.sourceUse(day: TierLayout.day(ms: Timestamp.nowNanos() / 1_000_000), sha))
            health.add([(.sourcesPulled, 1), (.blobsDownloaded, Int64(n)), (.bytesDownloaded, Int64(b))])
            return got
        }
    }

    /// Records a use for the tier's gc (create-only, at most one object per key and day; failures ignored).
    func recordUse(_ key: String) {
        guard config.mode == .readWrite else { return }
        _ = try? client.put(key, [], createOnly: true)
    }
}
