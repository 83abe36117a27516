import RCHCore
import RCHS3

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// `rch-worker shared gc`: removes tier entries unused for longer than `max-age`, then blobs no remaining
/// entry references that are older than `grace`.
///
/// Protocol (all times are the object store's clock):
/// 1. take the fence: create-only `gc/running.json` {started_at_ms, expires_at_ms = start + 1 h, by}; a
///    live fence of another gc refuses this one, an expired one (a crashed gc) is replaced with `If-Match`;
/// 2. last use of an entry = the later of its `LastModified` and the newest `uses/<day>/…` marker naming it;
///    entries older than `max-age` by last use are deleted, and so are use markers older than `max-age`;
/// 3. *after* the deletions, every remaining entry is listed and read: the blobs they name are kept;
/// 4. only then are blobs listed: one not referenced and last modified more than `grace` ago is deleted;
/// 5. `gc/last.json` {started_at_ms, finished_at_ms, by} is written and the fence removed.
/// A publisher uploads its blobs before its entry and afterwards, if a gc ran at any time since it started
/// (fence present, or `finished_at_ms` ≥ its start), re-checks its blobs and uploads any that were removed
/// (``SharedTier/publishResult(namespace:jobKey:)``). Step 3 sees every entry visible before it; blobs of
/// entries that appear later are either young (kept by `grace`) or re-uploaded by their publisher — so a
/// visible entry ends up complete. A reader that meets a missing blob treats the entry as a miss.
public struct TierGC {
    public var maxAgeSeconds: Int64 = 30 * 86400
    public var graceSeconds: Int64 = 3600
    public var dryRun = false

    public init() {}

    public struct Report: Sendable {
        public var removedResults: [String] = []
        public var removedSources: [String] = []
        public var removedUses = 0
        public var removedBlobs = 0
        public var bytesFreed: UInt64 = 0
        public var keptEntries = 0
        public var keptBlobs = 0
        public var dryRun = false

        public var json: JSONValue {
            .obj([
                "dry_run": .bool(dryRun), "removed_results": .array(removedResults.map { .string($0) }),
                "removed_sources": .array(removedSources.map { .string($0) }), "removed_uses": .int(Int64(removedUses)),
                "removed_blobs": .int(Int64(removedBlobs)), "bytes_freed": .int(Int64(bytesFreed)),
                "kept_entries": .int(Int64(keptEntries)), "kept_blobs": .int(Int64(keptBlobs)),
            ])
        }
    }

    public struct Busy: Error, CustomStringConvertible {
        public var description: String
    }

    public func run(_ tier: SharedTier) throws -> Report {
        let c = tier.client
        let l = tier.layout
        let started = try c.serverTimeMs()
        if !dryRun { try takeFence(tier, started) }
        var report = Report()
        report.dryRun = dryRun
        do {
            // 2. Last use per entry, from the use markers.
            var lastUse: [String: Int64] = [:]
            var oldUses: [String] = []
            try c.listAll(prefix: l.uses) { page in
                for o in page {
                    guard case .use(let day, let target) = l.classify(o.key), let dayStart = Self.dayMs(day) else {
                        continue
                    }
                    let end = dayStart + 86_400_000
                    lastUse[target] = max(lastUse[target] ?? 0, end)
                    if started - end > maxAgeSeconds * 1000 { oldUses.append(o.key) }
                }
            }
            var doomed: [String] = []
            for prefix in [l.results, l.sources] {
                try c.listAll(prefix: prefix) { page in
                    for o in page {
                        let target: String
                        switch l.classify(o.key) {
                        case .result(let ns, let k): target = "results/\(ns)/\(k.hex)"
                        case .source(let d): target = "sources/\(d.hex)"
                        default: continue
                        }
                        let used = max(Self.isoMs(o.lastModified) ?? started, lastUse[target] ?? 0)
                        if started - used > maxAgeSeconds * 1000 {
                            doomed.append(o.key)
                            if prefix == l.results {
                                report.removedResults.append(o.key)
                            } else {
                                report.removedSources.append(o.key)
                            }
                        }
                    }
                }
            }
            report.removedUses = oldUses.count
            if !dryRun {
                _ = try c.delete(keys: doomed)
                _ = try c.delete(keys: oldUses)
            }
            // 3. What the remaining entries reference (listed after the deletions).
            var referenced = Set<String>()
            let gone = Set(doomed)
            for prefix in [l.results, l.sources] {
                try c.listAll(prefix: prefix) { page in
                    for o in page where !gone.contains(o.key) {
                        guard let (bytes, _) = try c.get(o.key, limit: 256 << 20),
                            let v = try? JSONParser().parse(bytes)
                        else { continue }
                        report.keptEntries += 1
                        let entries = (v["entry"]?["entries"] ?? v["entries"])?.arrayValue ?? []
                        for e in entries { if let s = e["sha256"]?.stringValue { referenced.insert(s) } }
                    }
                }
            }
            // 4. Blobs, listed only now.
            var unreferenced: [String] = []
            try c.listAll(prefix: l.blobs) { page in
                for o in page {
                    guard case .blob(let d) = l.classify(o.key) else { continue }
                    let age = started - (Self.isoMs(o.lastModified) ?? started)
                    if referenced.contains(d.hex) || age <= graceSeconds * 1000 {
                        report.keptBlobs += 1
                    } else {
                        unreferenced.append(o.key)
                        report.bytesFreed += o.size
                    }
                }
            }
            report.removedBlobs = unreferenced.count
            if !dryRun {
                _ = try c.delete(keys: unreferenced)
                let done: JSONObject = [
                    "started_at_ms": .int(started), "finished_at_ms": .int(try c.serverTimeMs()),
                    "by": .string(tier.worker.name),
                ]
                _ = try c.put(l.gcLast, JSONValue.object(done).canonicalBytes, contentType: "application/json")
                try c.delete(l.gcRunning)
            }
        } catch {
            if !dryRun { try? c.delete(l.gcRunning) }
            throw error
        }
        return report
    }

    func takeFence(_ tier: SharedTier, _ now: Int64) throws {
        let c = tier.client
        let fence: JSONObject = [
            "started_at_ms": .int(now), "expires_at_ms": .int(now + 3_600_000), "by": .string(tier.worker.name),
        ]
        let bytes = JSONValue.object(fence).canonicalBytes
        if case .stored = try c.put(tier.layout.gcRunning, bytes, createOnly: true, contentType: "application/json") {
            return
        }
        guard let (old, etag) = try c.get(tier.layout.gcRunning) else { return try takeFence(tier, now) }
        let o = try? JSONParser().parse(old)
        let expires = o?["expires_at_ms"]?.intValue ?? 0
        guard now >= expires,
            case .stored = try c.put(tier.layout.gcRunning, bytes, ifMatch: etag, contentType: "application/json")
        else {
            throw Busy(
                description:
                    "another tier gc is running (by \(o?["by"]?.stringValue ?? "?"), fence \(tier.layout.gcRunning)); try again later"
            )
        }
    }

    /// `yyyymmdd` → the day's start (UTC, ms).
    static func dayMs(_ day: String) -> Int64? {
        let b = Array(day.utf8)
        guard b.count == 8, b.allSatisfy({ $0 >= 48 && $0 <= 57 }) else { return nil }
        return isoMs("\(day.prefix(4))-\(day.dropFirst(4).prefix(2))-\(day.suffix(2))T00:00:00.000Z")
    }

    /// `2026-11-30T14:12:51.000Z` (ListObjects' LastModified) → ms.
    static func isoMs(_ s: String) -> Int64? {
        guard Timestamp.isValid(s) else { return nil }
        let b = Array(s.utf8)
        func n(_ r: Range<Int>) -> Int32 { b[r].reduce(0) { $0 * 10 + Int32($1 - 48) } }
        var t = tm()
        t.tm_year = n(0..<4) - 1900
        t.tm_mon = n(5..<7) - 1
        t.tm_mday = n(8..<10)
        t.tm_hour = n(11..<13)
        t.tm_min = n(14..<16)
        t.tm_sec = n(17..<19)
        var ms: Int64 = 0
        if b.count > 21 { ms = Int64(b[20..<min(23, b.count - 1)].reduce(0) { $0 * 10 + Int32($1 - 48) }) }
        return Int64(timegm(&t)) * 1000 + ms
    }
}
