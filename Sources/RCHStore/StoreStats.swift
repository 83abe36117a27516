#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import RCHCore

/// Hit/miss counters since the store was created (`stats.json`, best effort: a lost update costs a count,
/// never correctness).
public enum StoreCounters {
    public static func add(_ store: LocalStore, sourceHits: Int = 0, sourceMisses: Int = 0, resultHits: Int = 0, resultMisses: Int = 0) {
        _ = try? FileLock.with(store, name: "counters") {
            var o = read(store)
            for (k, n) in [("source_hits", sourceHits), ("source_misses", sourceMisses), ("result_hits", resultHits), ("result_misses", resultMisses)] where n > 0 {
                o[k] = .int((o[k]?.intValue ?? 0) + Int64(n))
            }
            if o["since"] == nil { o["since"] = .string(Timestamp.now()) }
            _ = try DurableFile.write(JSONValue.object(o).canonicalBytes, to: store.root + "/stats.json", durable: false)
        }
    }

    public static func read(_ store: LocalStore) -> JSONObject {
        guard let bytes = try? DurableFile.read(store.root + "/stats.json"), let v = try? JSONParser().parse(bytes), let o = v.objectValue else {
            return JSONObject()
        }
        return o
    }
}

/// `rch-worker stats`: what the store holds.
public struct StoreStats: Sendable {
    public let store: LocalStore
    public init(store: LocalStore) { self.store = store }

    public func collect(now: Int64 = Timestamp.nowNanos()) -> JSONValue {
        let scan = StoreScan(store: store)
        let entries = scan.entries(withBlobs: false)
        let blobs = scan.blobTotals()
        var byNamespace: [String: Int] = [:]
        var sources = 0, broken = 0
        var logical: UInt64 = 0
        var oldest = Int64.max, newest = Int64.min
        for e in entries {
            switch e.kind {
            case .source: sources += 1
            case .result(let ns, _): byNamespace[ns, default: 0] += 1
            }
            if e.broken != nil { broken += 1 }
            logical += e.logicalBytes
            oldest = min(oldest, e.lastUse)
            newest = max(newest, e.lastUse)
        }
        let disk = blobs.diskBytes
        let leases = Leases(store: store).all()
        let active = leases.filter { $0.isActive(at: now) }.count
        var counters = StoreCounters.read(store)
        for k in ["source_hits", "source_misses", "result_hits", "result_misses"] where counters[k] == nil { counters[k] = .int(0) }
        return .obj([
            "store": .string(store.root),
            "entries": .obj([
                "sources": .int(Int64(sources)),
                "results": .object(JSONObject(byNamespace.sorted { $0.key < $1.key }.map { ($0.key, .int(Int64($0.value))) })),
                "unreadable": .int(Int64(broken)),
            ]),
            "blobs": .int(Int64(blobs.count)),
            "logical_bytes": .int(Int64(logical)),
            "disk_bytes": .int(Int64(disk)),
            "dedup_ratio": disk == 0 ? .null : .double((Double(logical) / Double(disk) * 1000).rounded() / 1000),
            "oldest_use": entries.isEmpty ? .null : .string(Timestamp.format(nanosSinceEpoch: oldest)),
            "newest_use": entries.isEmpty ? .null : .string(Timestamp.format(nanosSinceEpoch: newest)),
            "leases": .obj(["active": .int(Int64(active)), "expired": .int(Int64(leases.count - active))]),
            "counters": .object(counters),
        ])
    }
}
