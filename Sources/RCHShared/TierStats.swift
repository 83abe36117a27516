import RCHCore
import RCHS3

/// `rch-worker shared stats`: what the tier holds (one listing of the prefix: object counts and bytes per
/// kind) and what this worker did with it (``TierHealth`` counters, back-off state, queued publishes).
public enum TierStats {
    public static func collect(_ tier: SharedTier, queue: PublishQueue) throws -> JSONValue {
        var counts: [String: (Int64, Int64)] = [:]
        var listError: String?
        do {
            try listing(tier, &counts)
        } catch let e as S3Error {
            // The worker's own side is still worth showing when the tier is down.
            listError = "\(e)"
        }
        let health = tier.health.state()
        return .obj([
            "endpoint": .string(tier.config.location.endpoint), "bucket": .string(tier.config.location.bucket),
            "prefix": .string(tier.config.prefix), "mode": .string(tier.config.mode.rawValue),
            "tier": listError != nil
                ? .null
                : .object(
                    JSONObject(
                        ["blobs", "sources", "results", "uses", "other"].map { k in
                            (k, .obj(["objects": .int(counts[k]?.0 ?? 0), "bytes": .int(counts[k]?.1 ?? 0)]))
                        })),
            "tier_error": listError.map { .string($0) } ?? .null,
            "worker": .object(JSONObject(tier.health.counters().map { ($0.0, JSONValue.int($0.1)) })),
            "queued_publishes": .int(Int64(queue.count)),
            "unavailable_until_ms": health["unavailable_until_ms"] ?? .null,
            "last_error": health["last_error"] ?? .null,
        ])
    }

    static func listing(_ tier: SharedTier, _ counts: inout [String: (Int64, Int64)]) throws {
        try tier.client.listAll(prefix: tier.layout.prefix) { page in
            for o in page {
                let kind: String
                switch tier.layout.classify(o.key) {
                case .blob: kind = "blobs"
                case .source: kind = "sources"
                case .result: kind = "results"
                case .use: kind = "uses"
                case .other: kind = "other"
                }
                let c = counts[kind] ?? (0, 0)
                counts[kind] = (c.0 + 1, c.1 + Int64(o.size))
            }
        }
    }
}
