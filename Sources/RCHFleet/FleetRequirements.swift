import RCHCore
import RCHHost
import RCHJob

/// What a repository asks of the worker that runs it (`.rch/xcode.toml`, merged with the host config):
///
/// ```toml
/// [worker]
/// tags = ["arm64"]                  # required beside the defaults macos, xcode
/// selection_mode = "deterministic"  # or "adaptive"
/// xcode_build = "16C5032a"          # optional: only workers whose active Xcode is this build
/// xcode_version = "16.2"            # optional: only this Xcode version (or a version under it: "16")
/// ```
public struct FleetRequirements: Sendable, Equatable {
    public enum Mode: String, Sendable {
        /// Only stable facts order the candidates: priority, then name.
        case deterministic
        /// Priority first, then live metrics and cache affinity as tie-breakers, each value recorded.
        case adaptive
    }

    public var tags: [String] = WorkerEntry.defaultTags
    public var mode: Mode = .deterministic
    public var xcodeBuild: String?
    public var xcodeVersion: String?

    public init() {}

    public init(config: JSONObject) throws {
        guard let w = config["worker"] else { return }
        guard let o = w.objectValue else { throw ConfigValueError("[worker] must be a table") }
        let known = ["tags", "selection_mode", "xcode_build", "xcode_version"]
        for k in o.keys where !known.contains(k) {
            throw ConfigValueError("[worker] has an unknown key '\(k)' (\(known.joined(separator: ", ")))")
        }
        if let t = o["tags"] {
            guard let list = t.arrayValue?.compactMap(\.stringValue), list.count == t.arrayValue?.count else {
                throw ConfigValueError("[worker] tags must be a list of strings")
            }
            tags = Array(Set(WorkerEntry.defaultTags + list)).sorted()
        }
        if let m = o["selection_mode"] {
            guard let s = m.stringValue, let mode = Mode(rawValue: s) else {
                throw ConfigValueError("[worker] selection_mode must be \"deterministic\" or \"adaptive\"")
            }
            self.mode = mode
        }
        for (key, value) in [("xcode_build", o["xcode_build"]), ("xcode_version", o["xcode_version"])] {
            guard let value else { continue }
            guard let s = value.stringValue, !s.isEmpty else {
                throw ConfigValueError("[worker] \(key) must be a non-empty string")
            }
            if key == "xcode_build" { xcodeBuild = s } else { xcodeVersion = s }
        }
    }

    /// Why the worker's capabilities do not meet the Xcode requirement, or nil.
    func xcodeMismatch(_ caps: JSONValue) -> String? {
        let xcode = caps["xcodes"]?.arrayValue?.first
        let build = xcode?["build"]?.stringValue ?? "none"
        let version = xcode?["version"]?.stringValue ?? "none"
        if let xcodeBuild, build != xcodeBuild {
            return "Xcode build \(build), the repository requires \(xcodeBuild)"
        }
        if let xcodeVersion, version != xcodeVersion, !version.hasPrefix(xcodeVersion + ".") {
            return "Xcode \(version), the repository requires \(xcodeVersion)"
        }
        return nil
    }
}
