import Foundation
import RCHCore
import RCHJob
import RCHStore

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// The `[gc]` table of the worker configuration (`$XDG_CONFIG_HOME/rch/worker.toml`, else
/// `~/.config/rch/worker.toml`, or `--config FILE`), with defaults.
///
/// | key | default | meaning |
/// | --- | --- | --- |
/// | `max_size` | `"80%"` | size budget for the store (bytes, `50GiB`, or a percentage of the store's filesystem) |
/// | `max_age` | `"30d"` | entries unused for longer are evicted (`s`, `m`, `h`, `d` suffixes) |
/// | `grace` | `"1h"` | unreferenced blobs and crash residue younger than this are kept (in-flight uploads) |
/// | `min_free` | `"5%"` | hard limit: writes fail fast (STORE_FULL) rather than leave less free space than this |
/// | `auto_gc_at` | `"90%"` | after a write, start a background gc when the filesystem is fuller than this (`""` disables) |
///
/// And `[jobs]` (finished job directories under `work/`, removed by the same gc):
///
/// | key | default | meaning |
/// | --- | --- | --- |
/// | `retention` | `"24h"` | finished jobs older than this are removed (their artifacts; fetch then answers ARTIFACTS_GONE) |
/// | `max_size` | `"20%"` | size budget for finished jobs (bytes, `50GiB`, or a percentage of the filesystem); oldest go first |
/// | `record_retention` | `"30d"` | how long a removed job's id stays known (`jobs/<job_id>.json`) |
///
/// And `[cache]` (the DerivedData and SwiftPM caches under `caches/`, removed by the same gc):
///
/// | key | default | meaning |
/// | --- | --- | --- |
/// | `max_age` | `"14d"` | a cache unused for longer is removed |
/// | `max_size` | `"20%"` | size budget for all caches; least recently used go first |
/// | `lock_timeout_seconds` | 300 | (read by the runner) how long a job waits for a busy cache before using a private one |
public struct GCSettings: Sendable {
    public var maxSize: UInt64
    public var maxAgeSeconds: Int64?
    public var graceSeconds: Int64
    public var minFreeBytes: UInt64
    public var autoGCAtFraction: Double?
    public var jobRetentionSeconds: Int64 = 86_400
    public var jobMaxBytes: UInt64 = 0
    public var jobRecordRetentionSeconds: Int64 = 30 * 86_400
    public var cacheMaxAgeSeconds: Int64 = 14 * 86_400
    public var cacheMaxBytes: UInt64 = 0

    public init(
        maxSize: UInt64, maxAgeSeconds: Int64?, graceSeconds: Int64, minFreeBytes: UInt64, autoGCAtFraction: Double?
    ) {
        self.maxSize = maxSize
        self.maxAgeSeconds = maxAgeSeconds
        self.graceSeconds = graceSeconds
        self.minFreeBytes = minFreeBytes
        self.autoGCAtFraction = autoGCAtFraction
    }

    public static func load(
        configPath: String?, store: LocalStore, environment: [String: String] = ProcessInfo.processInfo.environment
    ) throws -> GCSettings {
        let path = configPath ?? UserDirectories.configHome(environment) + "/rch/worker.toml"
        let config = try Config.load(.host, path: path)?.value ?? JSONObject()  // read once: [gc], [jobs], [cache]
        let gc = config["gc"]?.objectValue ?? JSONObject()
        if configPath != nil && !FileManager.default.fileExists(atPath: path) {
            throw StoreError.invalid("config file \(path) does not exist")
        }
        let fs = FilesystemSpace(path: store.root)
        /// `[table] key` as text (a number counts as bytes or seconds), else the default.
        func text(_ table: String, _ key: String, _ def: String?) -> String? {
            let t = config[table]?.objectValue ?? JSONObject()
            return t[key]?.stringValue ?? t[key]?.intValue.map { String($0) } ?? def
        }
        func size(_ key: String, _ def: String, in table: String = "gc") throws -> UInt64 {
            let text = text(table, key, def)!
            guard let v = fs.bytes(text) else {
                throw StoreError.invalid("[\(table)] \(key) = \"\(text)\" is not a size (bytes, 50GiB, or 80%)")
            }
            return v
        }
        func duration(_ key: String, _ def: String?, in table: String = "gc") throws -> Int64? {
            guard let text = text(table, key, def) else { return nil }
            guard let v = parseDuration(text) else {
                throw StoreError.invalid("[\(table)] \(key) = \"\(text)\" is not a duration (30d, 12h, 90m, 3600s)")
            }
            return v
        }
        let auto = gc["auto_gc_at"]?.stringValue ?? "90%"
        var autoFraction: Double? = nil
        if !auto.isEmpty {
            guard auto.hasSuffix("%"), let p = Double(auto.dropLast()), p > 0, p <= 100 else {
                throw StoreError.invalid("[gc] auto_gc_at must be a percentage such as \"90%\" or \"\"")
            }
            autoFraction = p / 100
        }
        var s = GCSettings(
            maxSize: try size("max_size", "80%"), maxAgeSeconds: try duration("max_age", "30d"),
            graceSeconds: try duration("grace", "1h") ?? 3600, minFreeBytes: try size("min_free", "5%"),
            autoGCAtFraction: autoFraction)
        s.jobRetentionSeconds = try duration("retention", "24h", in: "jobs")!
        s.jobRecordRetentionSeconds = try duration("record_retention", "30d", in: "jobs")!
        s.jobMaxBytes = try size("max_size", "20%", in: "jobs")
        s.cacheMaxAgeSeconds = try duration("max_age", "14d", in: "cache")!
        s.cacheMaxBytes = try size("max_size", "20%", in: "cache")
        return s
    }
}

/// Size and free space of the filesystem holding a path (statvfs).
public struct FilesystemSpace {
    public let total: UInt64
    public let free: UInt64

    public init(path: String) {
        var s = statvfs()
        if statvfs(path, &s) == 0 {
            total = UInt64(s.f_blocks) * UInt64(s.f_frsize)
            free = UInt64(s.f_bavail) * UInt64(s.f_frsize)
        } else {
            total = 0
            free = 0
        }
    }

    public var usedFraction: Double { total == 0 ? 0 : 1 - Double(free) / Double(total) }

    /// A byte count, a size with a unit, or a percentage of this filesystem.
    public func bytes(_ text: String) -> UInt64? {
        if text.hasSuffix("%"), let p = Double(text.dropLast()), p >= 0, p <= 100 {
            return UInt64(Double(total) * p / 100)
        }
        return parseSize(text)
    }
}

/// Opens the store with the configured hard limit; after a successful write, starts a background
/// `rch-worker gc --if-idle` when the filesystem is fuller than `auto_gc_at` (the request that triggered it
/// does not wait for it).
public enum ConfiguredStore {
    public static func open(_ options: WorkerStoreOptions, config: String? = nil, existing: Bool = false) throws -> (
        LocalStore, GCSettings
    ) {
        var store = existing ? try options.openExisting(config: config) : try options.open(config: config)
        let settings = try GCSettings.load(configPath: config, store: store)
        store.minFreeBytes = settings.minFreeBytes
        return (store, settings)
    }

    public static func maybeStartGC(_ store: LocalStore, _ settings: GCSettings, config: String? = nil) {
        guard let at = settings.autoGCAtFraction, FilesystemSpace(path: store.root).usedFraction >= at else { return }
        let devnull = openDevNull()
        guard devnull >= 0 else { return }
        defer { close(devnull) }
        // Own session and no inherited stdio: it outlives this process and never holds an SSH channel open.
        _ = try? Spawn.start(
            Bundle.main.executablePath ?? CommandLine.arguments[0],
            ["gc", "--if-idle", "--store", store.root] + (config.map { ["--config", $0] } ?? []),
            stdin: devnull, stdout: devnull, stderr: devnull, newSession: true)
    }
}

private func openDevNull() -> Int32 { open("/dev/null", O_RDWR | O_CLOEXEC) }
