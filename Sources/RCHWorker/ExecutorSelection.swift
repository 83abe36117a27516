import Foundation
import RCHCore
import RCHIdentity
import RCHProtocol
import RCHStore

/// Which executor a worker runs and where its identity comes from.
///
/// Rules (PLAN §13.6):
/// - `executor.kind = "recording"`: the mock; identity *declared* by `[toolchain]`; results of class
///   `recording`.
/// - `executor.kind = "xcodebuild"`, or no kind and an `xcodebuild` on PATH: the real backend; identity
///   *detected* from Apple's tools (``IdentityCache``); results of class `xcodebuild`.
/// - no kind and no `xcodebuild`: ``unconfigured`` — probes answer (with `executor: "unconfigured"`), every
///   submit is refused with `EXECUTOR_UNAVAILABLE`. The mock is never chosen by default.
public enum ExecutorSelection: Sendable, Equatable {
    case recording
    case xcodebuild(path: String)
    case unconfigured(String)

    public init(config: WorkerConfig, environment: [String: String] = ProcessInfo.processInfo.environment) {
        switch config.executorKind {
        case "recording":
            self = .recording
        case "xcodebuild":
            self = .xcodebuild(path: Self.xcodebuild(config, environment) ?? config.xcodebuildPath ?? "xcodebuild")
        default:
            if let path = Self.xcodebuild(config, environment) {
                self = .xcodebuild(path: path)
            } else {
                self = .unconfigured(
                    "this worker has no executor: no xcodebuild was found on PATH and worker.toml sets no [executor] kind. "
                        + "On a Mac install Xcode (kind = \"xcodebuild\" is then the default); for tests and demos set "
                        + "[executor] kind = \"recording\" (the mock, whose results never count as real builds)")
            }
        }
    }

    static func xcodebuild(_ config: WorkerConfig, _ env: [String: String]) -> String? {
        if let p = config.xcodebuildPath { return p.hasPrefix("/") ? p : ToolchainDetector.which(p, environment: env) }
        return ToolchainDetector.which("xcodebuild", environment: env)
    }

    /// The class recorded with results and matched by lookups (`unconfigured` never looks anything up).
    public var executorClass: String {
        switch self {
        case .recording: "recording"
        case .xcodebuild: "xcodebuild"
        case .unconfigured: "unconfigured"
        }
    }
}

/// The worker's current identity, as its executor defines it.
public struct WorkerIdentityProvider: Sendable {
    public let store: LocalStore
    public let config: WorkerConfig
    public let selection: ExecutorSelection
    public var environment: [String: String]

    public init(
        store: LocalStore, config: WorkerConfig, environment: [String: String] = ProcessInfo.processInfo.environment
    ) {
        self.store = store
        self.config = config
        self.environment = environment
        self.selection = ExecutorSelection(config: config, environment: environment)
    }

    public var cache: IdentityCache {
        IdentityCache(
            path: store.cacheDirectory + "/identity.json", ttlSeconds: config.identityTTLSeconds,
            detector: ToolchainDetector(
                environment: environment, pinnedDeveloperDir: config.toolchain.pinnedDeveloperDir,
                timeoutSeconds: Double(config.toolTimeoutSeconds)))
    }

    /// The identity jobs run under now (cached for detected identities). Throws `EXECUTOR_UNAVAILABLE`
    /// (as an ``RPCError``) when there is no executor or detection fails.
    public func current(fresh: Bool = false) throws -> ToolchainIdentity {
        switch selection {
        case .recording:
            return Self.declared(config.toolchain)
        case .xcodebuild:
            do {
                return fresh ? try cache.refresh() : try cache.current()
            } catch let e as DetectionError {
                throw RPCError(
                    .executorUnavailable, e.description,
                    data: ["failure_subkind": .string("TOOLCHAIN_DETECTION"), "command": .string(e.command)])
            }
        case .unconfigured(let why):
            throw RPCError(.executorUnavailable, why, data: ["failure_subkind": .string("EXECUTOR_UNCONFIGURED")])
        }
    }

    static func declared(_ t: WorkerConfig.Toolchain) -> ToolchainIdentity {
        var runtimes: [ToolchainIdentity.Runtime] = []
        for s in t.simulators where !runtimes.contains(where: { $0.identifier == s.runtime }) {
            runtimes.append(
                .init(
                    identifier: s.runtime, platform: s.platform, version: s.osVersion, build: s.runtimeBuild,
                    name: s.platform.replacingOccurrences(of: " Simulator", with: "") + " " + s.osVersion))
        }
        var identity = ToolchainIdentity(
            source: .declared, xcodeVersion: t.xcodeVersion, xcodeBuild: t.xcodeBuild, developerDir: t.developerDir,
            macosVersion: t.macosVersion, macosBuild: t.macosBuild, arch: t.arch, runtimes: runtimes,
            devices: t.simulators.map {
                .init(
                    platform: $0.platform, name: $0.name, osVersion: $0.osVersion, runtime: $0.runtime,
                    deviceType: $0.deviceType)
            })
        identity.udids = t.simulators.compactMap { s in
            s.udid.map {
                .init(
                    udid: $0,
                    device: .init(
                        platform: s.platform, name: s.name, osVersion: s.osVersion, runtime: s.runtime,
                        deviceType: s.deviceType))
            }
        }.sorted { $0.udid < $1.udid }
        return identity
    }
}
