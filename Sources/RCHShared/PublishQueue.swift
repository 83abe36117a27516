import RCHCore
import RCHS3
import RCHStore

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// The durable queue of publishes to the tier: `<store>/shared/queue/<name>.json`
/// (`rch-xcode/shared_publish@1`: `kind` result|source, `namespace` (results), `key`, `enqueued_at_ms`,
/// `attempts`, `not_before_ms`, `last_error`).
///
/// Protocol: a finished job (or a source received from a host, or a local hit) *enqueues* with a durable
/// no-replace write — an item already queued stays as it is — and the reply never waits for the tier.
/// A *drainer* (`rch-worker shared drain`, started in the background after requests that enqueue or while
/// the queue is not empty; one at a time under `locks/shared-drain.lock`) publishes items oldest first and
/// removes each only after its publish completed. A transient tier failure stops the drain and leaves the
/// item (so a crash or an outage delays a publish, never loses it); another error is retried up to
/// ``maxAttempts`` times with growing delays, then dropped with a log line and counted.
public struct PublishQueue: Sendable {
    public static let schemaID = "rch-xcode/shared_publish@1"
    public static let maxAttempts: Int64 = 5
    public let store: LocalStore

    public init(store: LocalStore) { self.store = store }

    public var directory: String { store.root + "/shared/queue" }

    public enum Item: Sendable, Equatable {
        case result(namespace: String, jobKey: SHA256Digest)
        case source(SHA256Digest)

        var name: String {
            switch self {
            case .result(let ns, let k): "result-\(ns)-\(k.hex)"
            case .source(let d): "source-\(d.hex)"
            }
        }
    }

    /// Queues `item` unless it is queued already.
    public func enqueue(_ item: Item) throws {
        try Syscalls.makeDirectories(directory)
        var o: JSONObject = [
            "schema_version": .int(1), "schema_id": .string(Self.schemaID),
            "enqueued_at_ms": .int(Timestamp.nowNanos() / 1_000_000), "attempts": .int(0), "not_before_ms": .int(0),
            "last_error": .null,
        ]
        switch item {
        case .result(let ns, let k):
            o["kind"] = .string("result")
            o["namespace"] = .string(ns)
            o["key"] = .string(k.hex)
        case .source(let d):
            o["kind"] = .string("source")
            o["namespace"] = .null
            o["key"] = .string(d.hex)
        }
        _ = try DurableFile.write(JSONValue.object(o).canonicalBytes + [10], to: path(item), replace: false)
    }

    func path(_ item: Item) -> String { directory + "/" + item.name + ".json" }

    struct Queued {
        var item: Item
        var doc: JSONObject
        var enqueuedAt: Int64
    }

    /// Every queued item, oldest first (unreadable files are reported by `fsck`-like callers; skipped here).
    func items() -> [Queued] {
        guard let names = try? Directory.list(directory) else { return [] }
        var out: [Queued] = []
        for n in names where n.hasSuffix(".json") {
            guard let b = try? DurableFile.read(directory + "/" + n), let o = (try? JSONParser().parse(b))?.objectValue,
                o["schema_id"]?.stringValue == Self.schemaID,
                let k = o["key"]?.stringValue.flatMap({ SHA256Digest(hex: $0) }),
                let at = o["enqueued_at_ms"]?.intValue
            else { continue }
            switch o["kind"]?.stringValue {
            case "result":
                guard let ns = o["namespace"]?.stringValue, Identifier.isValid(ns, .namespace) else { continue }
                out.append(Queued(item: .result(namespace: ns, jobKey: k), doc: o, enqueuedAt: at))
            case "source": out.append(Queued(item: .source(k), doc: o, enqueuedAt: at))
            default: continue
            }
        }
        return out.sorted { $0.enqueuedAt < $1.enqueuedAt }
    }

    /// How many items are queued.
    public var count: Int { (try? Directory.list(directory).filter { $0.hasSuffix(".json") }.count) ?? 0 }

    public struct DrainReport: Sendable, Equatable {
        public var published = 0
        public var present = 0
        public var dropped = 0
        public var deferred = 0
        /// False when another drainer held the lock (nothing was done).
        public var ran = true
        /// The tier failed and the drain stopped early (items stay queued).
        public var stoppedBy: String?
    }

    /// Publishes queued items (see the type's protocol).
    public func drain(_ tier: SharedTier, nowMs: () -> Int64 = { Timestamp.nowNanos() / 1_000_000 }) throws
        -> DrainReport
    {
        let r = try FileLock.ifFree(store, name: "shared-drain") { () -> DrainReport in
            var report = DrainReport()
            var tried = Set<String>()
            while true {
                let ready = items().filter {
                    !tried.contains($0.item.name) && ($0.doc["not_before_ms"]?.intValue ?? 0) <= nowMs()
                }
                guard let next = ready.first else { return report }
                tried.insert(next.item.name)
                guard tier.health.available() else {
                    report.stoppedBy = "the tier is backing off after a failure"
                    return report
                }
                do {
                    let outcome: SharedTier.Published
                    switch next.item {
                    case .result(let ns, let k): outcome = try tier.publishResult(namespace: ns, jobKey: k)
                    case .source(let d): outcome = try tier.publishSource(d)
                    }
                    tier.health.succeeded()
                    switch outcome {
                    case .published: report.published += 1
                    case .present: report.present += 1
                    case .gone: report.dropped += 1
                    }
                    unlink(path(next.item))
                } catch let e as S3Error {
                    tier.health.failed(e)
                    // The tier's fault, not the item's: retried without counting an attempt.
                    try defer_(
                        next, error: e, nowMs: nowMs(), delayMs: tier.config.retryAfterSeconds * 1000, count: false)
                    report.deferred += 1
                    report.stoppedBy = "\(e)"
                    return report
                } catch {
                    let attempts = (next.doc["attempts"]?.intValue ?? 0) + 1
                    if attempts >= Self.maxAttempts {
                        tier.health.add(.publishFailures)
                        tier.health.log("dropped publish of \(next.item.name) after \(attempts) attempts: \(error)")
                        unlink(path(next.item))
                        report.dropped += 1
                    } else {
                        try defer_(next, error: error, nowMs: nowMs(), delayMs: 10_000 << attempts)
                        report.deferred += 1
                    }
                }
            }
        }
        return r ?? DrainReport(ran: false)
    }

    func defer_(_ q: Queued, error: Error, nowMs: Int64, delayMs: Int64, count: Bool = true) throws {
        var o = q.doc
        if count { o["attempts"] = .int((o["attempts"]?.intValue ?? 0) + 1) }
        o["not_before_ms"] = .int(nowMs + delayMs)
        o["last_error"] = .string("\(error)")
        _ = try DurableFile.write(JSONValue.object(o).canonicalBytes + [10], to: path(q.item), replace: true)
    }
}
