import Foundation
import RCHCore
import TOMLKit

/// Configuration layers and their merge.
///
/// Precedence (last wins): built-in defaults < host/user config (`$XDG_CONFIG_HOME/rch/xcode.toml`, else
/// `~/.config/rch/xcode.toml`) < repository config (`.rch/xcode.toml`) < command-line flags.
/// Merge rule, applied layer by layer: objects deep-merge by key, arrays replace, scalars override (a
/// scalar may replace an object and vice versa). The result is deterministic: it depends only on the
/// layers' contents, and member order follows first appearance (serialisation is canonical anyway).
/// The merged config is audit material (`effective_config.json`), never part of `job_key`.
public enum Config {
    public enum Origin: String, Sendable { case defaults, host, repo, cli }

    public struct Layer: Sendable {
        public var origin: Origin
        public var path: String?
        /// SHA-256 of the raw bytes the layer was read from (nil for defaults and flags).
        public var sha256: SHA256Digest?
        public var value: JSONObject

        public init(origin: Origin, path: String? = nil, sha256: SHA256Digest? = nil, value: JSONObject) {
            self.origin = origin
            self.path = path
            self.sha256 = sha256
            self.value = value
        }
    }

    /// The built-in defaults.
    public static let defaults = Layer(
        origin: .defaults,
        value: JSONObject([
            (
                "bundle",
                .obj(["mode": .string("worktree"), "ignore_file": .string(".rchignore"), "max_bytes": .int(0)])
            ),
            ("cache", .obj(["derived_data": .string("shared"), "spm": .string("shared")])),
            ("artifacts", .obj(["profile": .string("minimal")])),
            ("timeouts", .obj(["overall_seconds": .int(3600), "idle_seconds": .int(600)])),
        ]))

    /// Reads a TOML layer; a missing file gives nil.
    public static func load(_ origin: Origin, path: String) throws -> Layer? {
        guard let data = FileManager.default.contents(atPath: path) else { return nil }
        let bytes = Array(data)
        guard let text = String(validating: bytes, as: UTF8.self) else { throw JobKeyError(path, "is not valid UTF-8") }
        let table: TOMLTable
        do { table = try TOMLTable(string: text) } catch { throw JobKeyError(path, "is not valid TOML: \(error)") }
        return Layer(origin: origin, path: path, sha256: .of(bytes), value: json(table))
    }

    /// The usual layers for a repository: defaults, host config, repo config, then `flags`.
    public static func layers(
        repo: String, flags: JSONObject = JSONObject(),
        environment: [String: String] = ProcessInfo.processInfo.environment
    ) throws -> [Layer] {
        var out = [defaults]
        let configHome = UserDirectories.configHome(environment)
        if let host = try load(.host, path: configHome + "/rch/xcode.toml") { out.append(host) }
        if let r = try load(.repo, path: repo + "/.rch/xcode.toml") { out.append(r) }
        if flags.count > 0 { out.append(Layer(origin: .cli, value: flags)) }
        return out
    }

    /// Merges layers in order.
    public static func merge(_ layers: [Layer]) -> JSONObject {
        layers.reduce(JSONObject()) { merge($0, $1.value) }
    }

    /// `over` merged onto `base`: objects deep-merge, everything else replaces.
    public static func merge(_ base: JSONObject, _ over: JSONObject) -> JSONObject {
        var out = base
        for (k, v) in over.members {
            if case .object(let o) = v, case .object(let b)? = out[k] {
                out[k] = .object(merge(b, o))
            } else {
                out[k] = v
            }
        }
        return out
    }

    /// Names whose values are secrets (compared case-insensitively, as a suffix after `_` or whole).
    static let secretNames = [
        "password", "passphrase", "token", "secret", "private_key", "api_key", "apikey", "credential", "credentials",
        "auth",
    ]

    /// Replaces secret values by `"[REDACTED]"`; returns the redacted object and the JSON pointers redacted.
    public static func redact(_ o: JSONObject, at path: String = "") -> (JSONObject, [String]) {
        var out = o
        var redactions: [String] = []
        for (k, v) in o.members {
            let here =
                path + "/" + k.replacingOccurrences(of: "~", with: "~0").replacingOccurrences(of: "/", with: "~1")
            let lower = k.lowercased()
            if secretNames.contains(where: { lower == $0 || lower.hasSuffix("_" + $0) }) {
                out[k] = .string("[REDACTED]")
                redactions.append(here)
            } else if case .object(let inner) = v {
                let (r, red) = redact(inner, at: here)
                out[k] = .object(r)
                redactions += red
            } else if case .array(let items) = v {
                var newItems: [JSONValue] = []
                for (i, item) in items.enumerated() {
                    if case .object(let inner) = item {
                        let (r, red) = redact(inner, at: here + "/\(i)")
                        newItems.append(.object(r))
                        redactions += red
                    } else {
                        newItems.append(item)
                    }
                }
                out[k] = .array(newItems)
            }
        }
        return (out, redactions)
    }

    /// TOML → JSON: tables → objects, arrays → arrays, dates and times → RFC 3339 strings.
    static func json(_ t: TOMLTable) -> JSONObject {
        JSONObject(t.keys.compactMap { k in t[k].map { (k, json($0.tomlValue)) } })
    }

    static func json(_ v: TOMLValue) -> JSONValue {
        switch v.type {
        case .table: return .object(json(v.table!))
        case .array: return .array(v.array!.map { json($0.tomlValue) })
        case .string: return .string(v.string!)
        case .int: return .int(Int64(v.int!))
        case .double: return .double(v.double!)
        case .bool: return .bool(v.bool!)
        case .date, .time, .dateTime: return .string(v.debugDescription)
        }
    }
}

/// `effective_config.json` (`rch-xcode/effective_config@1`): the merged configuration of one job, with
/// its sources and what was redacted.
public struct EffectiveConfig: Sendable {
    public static let schemaID = "rch-xcode/effective_config@1"
    public var runID: String
    public var jobID: String
    public var jobKey: SHA256Digest?
    public var createdAt: String
    public var layers: [Config.Layer]

    public init(
        runID: String, jobID: String, jobKey: SHA256Digest?, createdAt: String = Timestamp.now(), layers: [Config.Layer]
    ) {
        self.runID = runID
        self.jobID = jobID
        self.jobKey = jobKey
        self.createdAt = createdAt
        self.layers = layers
    }

    /// The merged configuration with secrets redacted.
    public var config: (JSONObject, [String]) { Config.redact(Config.merge(layers)) }

    public var json: JSONValue {
        let (merged, redactions) = config
        return .obj([
            "schema_version": .int(1), "schema_id": .string(Self.schemaID), "created_at": .string(createdAt),
            "run_id": .string(runID), "job_id": .string(jobID), "job_key": jobKey.map { .string($0.hex) } ?? .null,
            "config": .object(merged),
            "sources": .array(
                layers.map { l in
                    .obj([
                        "origin": .string(l.origin.rawValue), "path": l.path.map { .string($0) } ?? .null,
                        "sha256": l.sha256.map { .string($0.hex) } ?? .null,
                    ])
                }),
            "redactions": .array(redactions.map { .obj(["path": .string($0), "reason": .string("secret")]) }),
        ])
    }
}

/// A configuration value of the wrong type or range (failure kind CLASSIFIER_REJECTED, subkind `CONFIG`,
/// exit 78 configuration).
public struct ConfigValueError: LaneError {
    public var message: String
    public init(_ m: String) { message = m }
    public var failureKind: FailureKind { .classifierRejected }
    public var failureSubkind: String? { "CONFIG" }
    public var exitCode: Int32 { CommandExit.config }
    public var description: String { message }
}
