import Foundation
import RCHCore
import RCHIdentity
import RCHJob
import RCHProtocol
import RCHShared

/// The worker's own configuration (`worker.toml`: `[worker]`, `[executor]`, `[toolchain]`; `[gc]` is read
/// by the gc settings). Every key has a default, so a worker runs without a file.
///
/// | key | default | meaning |
/// | --- | --- | --- |
/// | `worker.name` | host name | reported in capabilities and attestations |
/// | `worker.store` | (see `WorkerStoreOptions`) | the worker's store when no `--store` / `$RCH_WORKER_STORE` is given |
/// | `worker.max_concurrent_jobs` | 1 | more running jobs → `BUSY` with `retry_after_seconds` |
/// | `worker.max_upload_bytes` | `"1GiB"` | larger `content_length` → `PAYLOAD_TOO_LARGE` before reading |
/// | `worker.max_header_bytes` | `"16MiB"` | a longer request header line → `INVALID_REQUEST` |
/// | `worker.protocol_min` / `protocol_max` | 1 / 1 | the protocol range spoken (narrowed only to test fleets) |
/// | `worker.disabled_features` | `[]` | features not advertised (and refused with `FEATURE_MISSING`) |
/// | `worker.read_timeout` | `"5m"` | longest silence while reading a request; then it is abandoned (partial upload discarded) |
/// | `executor.kind` | see below | `recording` (the mock) or `xcodebuild` |
/// | `executor.behaviour` | `"succeed"` | recording executor: `succeed`, `fail` or `hang` |
/// | `executor.duration_ms` | 0 | recording executor: time spread over its log lines |
/// | `executor.timeout` | `"1h"` | overall job timeout (`TIMEOUT_OVERALL`) |
/// | `executor.env_allowlist` | PATH, HOME, LANG, … | environment names passed to the backend |
/// | `executor.xcodebuild` | `xcodebuild` on PATH | the binary the `xcodebuild` executor runs |
/// | `cache.lock_timeout_seconds` | 300 | how long a job waits for a shared DerivedData/SwiftPM cache before using a private one |
/// | `toolchain.developer_dir` | none | pins one of several Xcodes (detection reads that one) |
/// | `toolchain.identity_ttl_seconds` | 300 | how long a detected identity may be reused (see `IdentityCache`) |
/// | `toolchain.tool_timeout_seconds` | 60 | time limit of each detection command |
/// | `toolchain.*` (other keys) | an Xcode 16.2 / macOS 15.2 identity | the *declared* identity: recording executor only |
/// | `shared.*` | no tier | the fleet's shared tier on an S3-compatible store (``SharedConfig``, PLAN §18) |
///
/// Without `executor.kind` a worker runs `xcodebuild` if an `xcodebuild` is on its PATH (every Mac with
/// Xcode) and otherwise refuses submits (``ExecutorSelection/unconfigured``): the mock is never chosen
/// silently.
public struct WorkerConfig: Sendable {
    public var name: String = ProcessInfo.processInfo.hostName.split(separator: ".").first.map(String.init) ?? "worker"
    public var maxConcurrentJobs = 1
    public var maxUploadBytes: UInt64 = 1 << 30
    public var maxHeaderBytes = LaneProtocol.defaultMaxHeaderBytes
    public var protocolMin = LaneProtocol.minVersion
    public var protocolMax = LaneProtocol.maxVersion
    public var disabledFeatures: Set<String> = []
    public var readTimeoutSeconds: Int64 = 300
    /// `executor.kind` as configured (nil: not set; see ``ExecutorSelection``).
    public var executorKind: String?
    public var behaviour = "succeed"
    public var durationMs = 0
    public var timeoutSeconds: Int64 = 3600
    public var envAllowlist = ["PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "USER", "LOGNAME", "SHELL"]
    /// `executor.xcodebuild` (nil: `xcodebuild` on PATH).
    public var xcodebuildPath: String?
    public var identityTTLSeconds: Int64 = 300
    public var toolTimeoutSeconds = 60
    public var cacheLockTimeoutSeconds: Int64 = 300
    public var toolchain = Toolchain()
    public var path: String?
    /// `[shared]`: the fleet's shared tier (nil: none; see ``SharedConfig``).
    public var shared: SharedConfig?

    public struct Simulator: Sendable {
        public var platform: String, name: String, osVersion: String, runtime: String, runtimeBuild: String,
            deviceType: String
        /// Optional: lets a host address this declared device as `id=<UDID>`.
        public var udid: String? = nil
    }

    public struct Toolchain: Sendable {
        public var xcodeVersion = "16.2"
        public var xcodeBuild = "16C5032a"
        public var developerDir = "/Applications/Xcode.app/Contents/Developer"
        /// `[toolchain] developer_dir` when set (pins detection to that Xcode).
        public var pinnedDeveloperDir: String?
        public var macosVersion = "15.2"
        public var macosBuild = "24C101"
        public var arch = "arm64"
        public var simulators: [Simulator] = [
            Simulator(
                platform: "iOS Simulator", name: "iPhone 16", osVersion: "18.2",
                runtime: "com.apple.CoreSimulator.SimRuntime.iOS-18-2",
                runtimeBuild: "22C150", deviceType: "com.apple.CoreSimulator.SimDeviceType.iPhone-16")
        ]
    }

    public init() {}

    public static func defaultPath(environment: [String: String] = ProcessInfo.processInfo.environment) -> String {
        UserDirectories.configHome(environment) + "/rch/worker.toml"
    }

    /// Loads `path` (or the default file if it exists). An explicit path must exist.
    public static func load(_ path: String?) throws -> WorkerConfig {
        var c = WorkerConfig()
        let file = path ?? defaultPath()
        guard let layer = try Config.load(.host, path: file) else {
            if path != nil { throw ConfigError("config file \(file) does not exist") }
            return c
        }
        c.path = file
        let w = layer.value["worker"]?.objectValue ?? JSONObject()
        let e = layer.value["executor"]?.objectValue ?? JSONObject()
        let t = layer.value["toolchain"]?.objectValue ?? JSONObject()
        let cache = layer.value["cache"]?.objectValue ?? JSONObject()
        func int(_ o: JSONObject, _ k: String, _ d: Int) throws -> Int {
            guard let v = o[k] else { return d }
            guard let i = v.intValue, i >= 0 else { throw ConfigError("\(file): \(k) must be a non-negative integer") }
            return Int(i)
        }
        func size(_ o: JSONObject, _ k: String, _ d: UInt64) throws -> UInt64 {
            guard let v = o[k] else { return d }
            if let i = v.intValue, i >= 0 { return UInt64(i) }
            guard let s = v.stringValue, let n = parseSize(s) else {
                throw ConfigError("\(file): \(k) must be a size such as 1GiB")
            }
            return n
        }
        func str(_ o: JSONObject, _ k: String, _ d: String) throws -> String {
            guard let v = o[k] else { return d }
            guard let s = v.stringValue, !s.isEmpty else {
                throw ConfigError("\(file): \(k) must be a non-empty string")
            }
            return s
        }
        c.name = try str(w, "name", c.name)
        if let s = layer.value["shared"] {
            guard let table = s.objectValue else { throw ConfigError("\(file): [shared] must be a table") }
            do {
                c.shared = try SharedConfig.parse(table, file: file, environment: ProcessInfo.processInfo.environment)
            } catch { throw ConfigError("\(error)") }
        }
        c.cacheLockTimeoutSeconds = Int64(try int(cache, "lock_timeout_seconds", Int(c.cacheLockTimeoutSeconds)))
        c.maxConcurrentJobs = max(1, try int(w, "max_concurrent_jobs", c.maxConcurrentJobs))
        c.maxUploadBytes = try size(w, "max_upload_bytes", c.maxUploadBytes)
        c.maxHeaderBytes = Int(try size(w, "max_header_bytes", UInt64(c.maxHeaderBytes)))
        c.protocolMin = try int(w, "protocol_min", c.protocolMin)
        c.protocolMax = try int(w, "protocol_max", c.protocolMax)
        guard c.protocolMin <= c.protocolMax else {
            throw ConfigError("\(file): protocol_min must not exceed protocol_max")
        }
        c.disabledFeatures = Set((w["disabled_features"]?.arrayValue ?? []).compactMap(\.stringValue))
        if let t = w["read_timeout"] {
            guard let s = t.stringValue, let secs = parseDuration(s), secs > 0 else {
                throw ConfigError("\(file): worker.read_timeout must be a duration such as 5m")
            }
            c.readTimeoutSeconds = secs
        }
        if e["kind"] != nil {
            let kind = try str(e, "kind", "")
            guard ["recording", "xcodebuild"].contains(kind) else {
                throw ConfigError("\(file): executor.kind must be recording or xcodebuild")
            }
            c.executorKind = kind
        }
        c.behaviour = try str(e, "behaviour", c.behaviour)
        guard ["succeed", "fail", "hang"].contains(c.behaviour) else {
            throw ConfigError("\(file): executor.behaviour must be succeed, fail or hang")
        }
        c.durationMs = try int(e, "duration_ms", c.durationMs)
        if let t = e["timeout"]?.stringValue {
            guard let s = parseDuration(t) else {
                throw ConfigError("\(file): executor.timeout must be a duration such as 1h")
            }
            c.timeoutSeconds = s
        }
        if let list = e["env_allowlist"]?.arrayValue { c.envAllowlist = list.compactMap(\.stringValue) }
        if e["xcodebuild"] != nil { c.xcodebuildPath = try str(e, "xcodebuild", "") }
        c.toolchain.xcodeVersion = try str(t, "xcode_version", c.toolchain.xcodeVersion)
        c.toolchain.xcodeBuild = try str(t, "xcode_build", c.toolchain.xcodeBuild)
        if t["developer_dir"] != nil {
            let dir = try str(t, "developer_dir", "")
            guard dir.hasPrefix("/") else {
                throw ConfigError("\(file): toolchain.developer_dir must be an absolute path")
            }
            c.toolchain.developerDir = dir
            c.toolchain.pinnedDeveloperDir = dir
        }
        c.identityTTLSeconds = Int64(try int(t, "identity_ttl_seconds", Int(c.identityTTLSeconds)))
        c.toolTimeoutSeconds = max(1, try int(t, "tool_timeout_seconds", c.toolTimeoutSeconds))
        c.toolchain.macosVersion = try str(t, "macos_version", c.toolchain.macosVersion)
        c.toolchain.macosBuild = try str(t, "macos_build", c.toolchain.macosBuild)
        c.toolchain.arch = try str(t, "arch", c.toolchain.arch)
        if let sims = t["simulators"]?.arrayValue {
            c.toolchain.simulators = try sims.map { s in
                guard let o = s.objectValue else {
                    throw ConfigError("\(file): toolchain.simulators entries must be tables")
                }
                return Simulator(
                    platform: try str(o, "platform", ""), name: try str(o, "name", ""),
                    osVersion: try str(o, "os_version", ""),
                    runtime: try str(o, "runtime", ""), runtimeBuild: try str(o, "runtime_build", ""),
                    deviceType: try str(o, "device_type", ""),
                    udid: try o["udid"].map { u in
                        guard let s = u.stringValue, ToolchainIdentity.DeviceUDID.isUDID(s) else {
                            throw ConfigError(
                                "\(file): toolchain.simulators udid must be a UDID (8-4-4-4-12 hex digits)")
                        }
                        return s
                    })
            }
        }
        return c
    }

    /// The features this worker advertises.
    public var features: [String] { LaneProtocol.allFeatures.filter { !disabledFeatures.contains($0) } }
}

public struct ConfigError: Error, LaneError {
    public let message: String
    public init(_ m: String) { message = m }
    public var failureKind: FailureKind { .executor }
    public var failureSubkind: String? { "CONFIG" }
    public var exitCode: Int32 { CommandExit.config }
    public var description: String { message }
}
