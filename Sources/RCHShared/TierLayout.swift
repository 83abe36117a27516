import RCHCore

/// Keys in the bucket (all under the configured `prefix`; normative copy in store-layout.md, "Shared tier"):
///
/// ```
/// blobs/<ab>/<sha256>                       raw bytes whose SHA-256 is <sha256> (create-only)
/// sources/<ab>/<source_sha256>.json         a source manifest (source_manifest@1), written after its blobs (create-only)
/// results/<namespace>/<ab>/<job_key>.json   a signed result (shared_result@1), written after its blobs
///                                           (create-only; replaced only by a richer one, If-Match on its ETag)
/// uses/<yyyymmdd>/results/<namespace>/<job_key>   empty: the result was served on that UTC day (create-only)
/// uses/<yyyymmdd>/sources/<source_sha256>         empty: the source was pulled on that UTC day (create-only)
/// gc/running.json                           present while a tier gc runs {started_at_ms, expires_at_ms, by} (create-only)
/// gc/last.json                              the last finished gc {started_at_ms, finished_at_ms, by} (server clock)
/// ```
///
/// Invariants: a visible entry's blobs were all written before it (so a visible entry is complete unless a
/// gc removed a blob — see ``TierGC`` for the protocol that repairs that race); every object read back is
/// verified (blobs by digest, manifests by rebuilding the source, results by signature, trust and strict
/// parsing) before anything is stored locally.
public struct TierLayout: Sendable {
    public let prefix: String

    public init(prefix: String) { self.prefix = prefix }

    public func blob(_ d: SHA256Digest) -> String { prefix + "blobs/" + d.hex.prefix(2) + "/" + d.hex }
    public var blobs: String { prefix + "blobs/" }
    public func source(_ d: SHA256Digest) -> String { prefix + "sources/" + d.hex.prefix(2) + "/" + d.hex + ".json" }
    public var sources: String { prefix + "sources/" }
    public func result(_ namespace: String, _ key: SHA256Digest) -> String {
        prefix + "results/" + namespace + "/" + key.hex.prefix(2) + "/" + key.hex + ".json"
    }
    public var results: String { prefix + "results/" }
    public var uses: String { prefix + "uses/" }
    public func resultUse(day: String, _ namespace: String, _ key: SHA256Digest) -> String {
        prefix + "uses/" + day + "/results/" + namespace + "/" + key.hex
    }
    public func sourceUse(day: String, _ d: SHA256Digest) -> String { prefix + "uses/" + day + "/sources/" + d.hex }
    public var gcRunning: String { prefix + "gc/running.json" }
    public var gcLast: String { prefix + "gc/last.json" }

    /// What kind of object a listed key is, and its identity.
    public enum Object: Equatable {
        case blob(SHA256Digest)
        case source(SHA256Digest)
        case result(namespace: String, SHA256Digest)
        case use(day: String, target: String)
        case other
    }

    public func classify(_ key: String) -> Object {
        guard key.hasPrefix(prefix) else { return .other }
        let parts = key.dropFirst(prefix.count).split(separator: "/", omittingEmptySubsequences: false).map(String.init)
        switch parts.first {
        case "blobs" where parts.count == 3:
            return SHA256Digest(hex: parts[2]).map { .blob($0) } ?? .other
        case "sources" where parts.count == 3 && parts[2].hasSuffix(".json"):
            return SHA256Digest(hex: parts[2].dropLast(5)).map { .source($0) } ?? .other
        case "results" where parts.count == 4 && parts[3].hasSuffix(".json"):
            guard Identifier.isValid(parts[1], .namespace), let d = SHA256Digest(hex: parts[3].dropLast(5)) else {
                return .other
            }
            return .result(namespace: parts[1], d)
        case "uses" where parts.count >= 4 && parts[1].count == 8:
            return .use(day: parts[1], target: parts[2...].joined(separator: "/"))
        default:
            return .other
        }
    }

    /// `yyyymmdd` (UTC) of a time in milliseconds.
    public static func day(ms: Int64) -> String {
        String(Timestamp.format(nanosSinceEpoch: ms * 1_000_000).prefix(10).filter { $0 != "-" })
    }
}
