import RCHCore

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Hit/miss counters since the store was created (`stats.json`, best effort: a lost update costs a count,
/// never correctness).
public enum StoreCounters {
    public static func add(
        _ store: LocalStore, sourceHits: Int = 0, sourceMisses: Int = 0, resultHits: Int = 0, resultMisses: Int = 0
    ) {
        _ = try? FileLock.with(store, name: "counters") {
            var o = read(store)
            for (k, n) in [
                ("source_hits", sourceHits), ("source_misses", sourceMisses), ("result_hits", resultHits),
                ("result_misses", resultMisses),
            ] where n > 0 {
                o[k] = .int((o[k]?.intValue ?? 0) + Int64(n))
            }
            if o["since"] == nil { o["since"] = .string(Timestamp.now()) }
            _ = try DurableFile.write(
                JSONValue.object(o).canonicalBytes, to: store.root + "/stats.json", durable: false)
        }
    }

    public static func read(_ store: LocalStore) -> JSONObject {
        guard let bytes = try? DurableFile.read(store.root + "/stats.json"), let v = try? JSONParser().parse(bytes),
            let o = v.objectValue
        else {
            return JSONObject()
        }
        return o
    }
}

/// `rch-worker stats`: what the store holds.
///
/// Blob and entry totals come per shard directory: from `cache/shard-summaries.bin` when the shard is
/// unchanged since a quiet earlier scan (see `ShardSummaries` for the rules), else from a scan of the shard,
/// whose totals are then remembered. Entry files are `fstatat`ed every time (last use is their mtime).
public struct StoreStats: Sendable {
    public let store: LocalStore
    /// Shards changed more recently than this before the run are scanned but not remembered.
    let racyWindowNanos: Int64

    public init(store: LocalStore) { self.init(store: store, racyWindowNanos: ShardSummaries.racyWindowNanos) }
    init(store: LocalStore, racyWindowNanos: Int64) {
        self.store = store
        self.racyWindowNanos = racyWindowNanos
    }

    public func collect(now: Int64 = Timestamp.nowNanos()) -> JSONValue {
        let startedAt = Timestamp.nowNanos()
        let scan = StoreScan(store: store)
        let cached = ShardSummaries.load(store)
        let shards: [(path: String, kind: ShardKind)] =
            scan.blobShardNames().map { ("blobs/sha256/" + $0, .blobs) }
            + scan.shardDirectories(namespace: nil).map {
                (String($0.dir.dropFirst(store.root.count + 1)), $0.namespace.map { .results($0) } ?? .sources)
            }
        let me = self
        let parts = parallelMap(shards.count) { i in
            me.part(
                shards[i].path, shards[i].kind, cached: cached.records[shards[i].path], scan: scan, startedAt: startedAt
            )
        }

        var summaries = ShardSummaries()
        var blobs = ShardSummaries.Totals()
        var sources = ShardSummaries.Totals()
        var results: [String: ShardSummaries.Totals] = [:]
        var oldest = Int64.max
        var newest = Int64.min
        for p in parts {
            if let r = p.record { summaries.records[p.path] = r }
            oldest = min(oldest, p.oldest)
            newest = max(newest, p.newest)
            switch p.kind {
            case .blobs: blobs.add(p.totals)
            case .sources: sources.add(p.totals)
            case .results(let ns): results[ns, default: .init()].add(p.totals)
            }
        }
        if summaries.records != cached.records { summaries.save(store) }

        let entryCount = sources.count + results.values.reduce(0) { $0 + $1.count }
        let logical = sources.bytes + results.values.reduce(0) { $0 + $1.bytes }
        let broken = sources.broken + results.values.reduce(0) { $0 + $1.broken }
        let disk = blobs.bytes
        let leases = Leases(store: store).all()
        let active = leases.filter { $0.isActive(at: now) }.count
        var counters = StoreCounters.read(store)
        for k in ["source_hits", "source_misses", "result_hits", "result_misses"] where counters[k] == nil {
            counters[k] = .int(0)
        }
        return .obj([
            "store": .string(store.root),
            "entries": .obj([
                "sources": .int(Int64(sources.count)),
                "results": .object(
                    JSONObject(
                        results.filter { $0.value.count > 0 }.sorted { $0.key < $1.key }.map {
                            ($0.key, .int(Int64($0.value.count)))
                        })),
                "unreadable": .int(Int64(broken)),
            ]),
            "blobs": .int(Int64(blobs.count)),
            "logical_bytes": .int(Int64(logical)),
            "disk_bytes": .int(Int64(disk)),
            "dedup_ratio": disk == 0 ? .null : .double((Double(logical) / Double(disk) * 1000).rounded() / 1000),
            "oldest_use": entryCount == 0 ? .null : .string(Timestamp.format(nanosSinceEpoch: oldest)),
            "newest_use": entryCount == 0 ? .null : .string(Timestamp.format(nanosSinceEpoch: newest)),
            "leases": .obj(["active": .int(Int64(active)), "expired": .int(Int64(leases.count - active))]),
            "counters": .object(counters),
            "shards": .obj([
                "total": .int(Int64(parts.count)), "rescanned": .int(Int64(parts.filter(\.rescanned).count)),
            ]),
        ])
    }
}
