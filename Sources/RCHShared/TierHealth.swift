import RCHCore
import RCHStore

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// The worker's view of the tier's health and its counters, in `<store>/shared/`:
///
/// - `health.json` — `{unavailable_until_ms, last_error, last_logged_ms}`: after a transient failure
///   (unreachable, 5xx, SlowDown, timeouts) the tier is skipped until `unavailable_until_ms`, so jobs never
///   wait on a dead tier more than once per `retry_after_seconds`; the first failure of an interval is
///   appended to `shared/tier.log` (one line), later ones only counted.
/// - `counters.json` — monotonic counters (``Counter``) since the store was created, updated under
///   `locks/shared-counters.lock`; `rch-worker shared stats` and `rch-worker stats` print them.
///
/// Both are best effort: a damaged file reads as empty and is rewritten; neither can fail a job.
public struct TierHealth: Sendable {
    public let store: LocalStore
    public let retryAfterSeconds: Int64

    public init(store: LocalStore, retryAfterSeconds: Int64) {
        self.store = store
        self.retryAfterSeconds = retryAfterSeconds
    }

    var directory: String { store.root + "/shared" }

    public enum Counter: String, CaseIterable, Sendable {
        case lookups, hits, misses, rejected, corrupt, unavailable
        case sourcesPulled = "sources_pulled"
        case resultsPublished = "results_published"
        case sourcesPublished = "sources_published"
        case publishFailures = "publish_failures"
        case blobsDownloaded = "blobs_downloaded"
        case bytesDownloaded = "bytes_downloaded"
        case blobsUploaded = "blobs_uploaded"
        case bytesUploaded = "bytes_uploaded"
    }

    /// Whether the tier may be tried now (not inside a back-off interval).
    public func available(nowMs: Int64 = Timestamp.nowNanos() / 1_000_000) -> Bool {
        guard let h = read("health.json"), let until = h["unavailable_until_ms"]?.intValue else { return true }
        return nowMs >= until
    }

    public func state() -> JSONObject { read("health.json") ?? [:] }

    /// A transient failure: skip the tier for `retryAfterSeconds`, log once per interval.
    public func failed(_ error: Error, nowMs: Int64 = Timestamp.nowNanos() / 1_000_000) {
        add(.unavailable)
        var h = read("health.json") ?? [:]
        let lastLogged = h["last_logged_ms"]?.intValue ?? 0
        h["unavailable_until_ms"] = .int(nowMs + retryAfterSeconds * 1000)
        h["last_error"] = .string("\(error)")
        if nowMs - lastLogged >= retryAfterSeconds * 1000 {
            h["last_logged_ms"] = .int(nowMs)
            log("shared tier unavailable, using the local store for \(retryAfterSeconds) s: \(error)")
        }
        save("health.json", h)
    }

    /// A success after failures clears the back-off.
    public func succeeded() {
        guard var h = read("health.json"), h["unavailable_until_ms"] != nil else { return }
        h["unavailable_until_ms"] = nil
        log("shared tier reachable again")
        save("health.json", h)
    }

    /// One line in `shared/tier.log` (corrupt objects, rejected entries, outages).
    public func log(_ message: String) {
        try? Syscalls.makeDirectories(directory)
        let fd = open(directory + "/tier.log", O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o644)
        guard fd >= 0 else { return }
        defer { close(fd) }
        let line = Array("\(Timestamp.now()) \(message)\n".utf8)
        _ = line.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
    }

    public func add(_ c: Counter, _ n: Int64 = 1) { add([(c, n)]) }

    public func add(_ changes: [(Counter, Int64)]) {
        let changes = changes.filter { $0.1 != 0 }
        guard !changes.isEmpty else { return }
        try? Syscalls.makeDirectories(directory)
        try? FileLock.with(store, name: "shared-counters") {
            var c = read("counters.json") ?? [:]
            for (k, n) in changes { c[k.rawValue] = .int((c[k.rawValue]?.intValue ?? 0) + n) }
            save("counters.json", c)
        }
    }

    /// Every counter (0 when never counted).
    public func counters() -> [(String, Int64)] {
        let c = read("counters.json") ?? [:]
        return Counter.allCases.map { ($0.rawValue, c[$0.rawValue]?.intValue ?? 0) }
    }

    func read(_ name: String) -> JSONObject? {
        guard let b = try? DurableFile.read(directory + "/" + name) else { return nil }
        return (try? JSONParser().parse(b))?.objectValue
    }

    func save(_ name: String, _ o: JSONObject) {
        try? Syscalls.makeDirectories(directory)
        _ = try? DurableFile.write(
            JSONValue.object(o).canonicalBytes + [10], to: directory + "/" + name, durable: false)
    }
}
