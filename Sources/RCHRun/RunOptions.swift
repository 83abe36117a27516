import RCHBundle
import RCHCore
import RCHJob
import RCHStore

/// How a run is driven (set by the command line; tests set hooks).
public struct RunOptions: @unchecked Sendable {
    public var profile: ArtifactProfile?
    public var continueOnFailure = false
    public var fetch = true
    public var pollMillis = 200
    public var bundleOptions = BundleOptions()
    /// Command-line configuration (the last merge layer), e.g. `[timeouts]` overrides.
    public var configFlags = JSONObject()
    /// Polled while waiting and following: true once the user asked to stop (SIGINT/SIGTERM).
    public var cancelRequested: () -> Bool = { false }
    public var onLog: ((String) -> Void)?
    public var onNotice: ((String) -> Void)?
    /// Told once per step when the worker is busy and the run waits for a slot.
    public var onWaiting: ((String) -> Void)?
    /// Told as soon as the plan exists (before anything runs): the CLI prints the run and job ids.
    public var onPlanned: ((RunPlan) -> Void)?
    public var beforeSubmit: (() throws -> Void)?
    /// Reserve one slot for a run of several steps (when the worker offers `lease`).
    public var reserveSlot = true
    public var leaseTTLSeconds: Int64 = 120
    /// Renew the reservation while the run lives (tests turn it off to let it expire).
    public var renewLease = true
    public var beforeFetch: ((String) throws -> Void)?

    public init() {}
}

/// The `[timeouts]` of the merged configuration (seconds).
///
/// | key | default | meaning |
/// | --- | --- | --- |
/// | `connect_seconds` | 15 | ssh `ConnectTimeout` (an unreachable worker fails within it, exit 20) |
/// | `overall_seconds` | 3600 | a step running longer is cancelled: EXECUTOR / `TIMEOUT_OVERALL` |
/// | `idle_log_seconds` | 600 | a step without new log output that long is cancelled: `TIMEOUT_IDLE` |
/// | `queue_seconds` | 1800 | how long a busy worker is waited for: then WORKER_BUSY / `QUEUE_TIMEOUT` |
public struct RunSettings: Sendable, Equatable {
    public var connectSeconds: Int64 = 15
    public var overallSeconds: Int64 = 3600
    public var idleLogSeconds: Int64 = 600
    public var queueSeconds: Int64 = 1800

    public init() {}

    public init(config: JSONObject) throws {
        guard let t = config["timeouts"] else { return }
        guard let o = t.objectValue else { throw RunError.corrupt("[timeouts] must be a table") }
        func seconds(_ k: String, _ d: Int64) throws -> Int64 {
            guard let v = o[k] else { return d }
            guard let n = v.intValue, n > 0 else {
                throw ConfigValueError("[timeouts] \(k) must be a positive number of seconds")
            }
            return n
        }
        connectSeconds = try seconds("connect_seconds", connectSeconds)
        overallSeconds = try seconds("overall_seconds", overallSeconds)
        idleLogSeconds = try seconds("idle_log_seconds", idleLogSeconds)
        queueSeconds = try seconds("queue_seconds", queueSeconds)
    }
}

/// `[destination]` of the repository config: `mode` (`pinned`: the value as is, with a concrete OS;
/// `constraints`: resolved against the worker, `OS=latest` or no OS → the newest available), `value` (an
/// xcodebuild `-destination`, used by steps that name none) and `provisioning` (`existing`|`ephemeral`,
/// carried into `job_key_inputs`).
public struct DestinationConfig: Sendable, Equatable {
    public var value: String?
    public var pinned = false
    public var provisioning = "existing"

    public init() {}

    public init(config: JSONObject) throws {
        guard let d = config["destination"] else { return }
        guard let o = d.objectValue else { throw ConfigValueError("[destination] must be a table") }
        for k in o.keys where !["mode", "value", "provisioning"].contains(k) {
            throw ConfigValueError("[destination] has an unknown key '\(k)' (mode, value, provisioning)")
        }
        if let m = o["mode"] {
            guard let s = m.stringValue, s == "pinned" || s == "constraints" else {
                throw ConfigValueError("[destination] mode must be \"pinned\" or \"constraints\"")
            }
            pinned = s == "pinned"
        }
        if let v = o["value"] {
            guard let s = v.stringValue, !s.isEmpty else {
                throw ConfigValueError("[destination] value must be a -destination string")
            }
            value = s
        }
        if let p = o["provisioning"] {
            guard let s = p.stringValue, s == "existing" || s == "ephemeral" else {
                throw ConfigValueError("[destination] provisioning must be \"existing\" or \"ephemeral\"")
            }
            provisioning = s
        }
    }
}
