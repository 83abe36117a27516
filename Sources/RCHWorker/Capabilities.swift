import RCHCore
import RCHProtocol
import RCHStore

/// `capabilities.json` (`rch-xcode/capabilities@1`): what this worker offers.
///
/// Invariant: the document holds only stable facts (toolchain, runtimes, features, limits), so its
/// digest — bound into every attestation as `capabilities_sha256` — changes only when the worker does.
/// It is persisted at `<store>/capabilities.json` and rewritten (new `created_at`) only when its stable
/// content changes. Volatile numbers (free disk, running jobs) travel in the probe reply's `status`.
public enum Capabilities {
    static func stable(store: LocalStore, config: WorkerConfig) -> JSONObject {
        let t = config.toolchain
        let runtimes = Dictionary(grouping: t.simulators, by: \.runtime).keys.sorted().map { rt -> JSONValue in
            let s = t.simulators.first { $0.runtime == rt }!
            return .obj(["identifier": .string(rt), "platform": .string(s.platform), "version": .string(s.osVersion), "build": .string(s.runtimeBuild)])
        }
        let devices = t.simulators.map { s -> JSONValue in
            .obj(["platform": .string(s.platform), "name": .string(s.name), "os_version": .string(s.osVersion),
                  "runtime": .string(s.runtime), "device_type": .string(s.deviceType)])
        }
        return JSONObject([
            ("schema_version", .int(1)), ("schema_id", .string("rch-xcode/capabilities@1")),
            ("rch_xcode_lane_version", .string(LaneProtocol.laneVersion)),
            ("protocol_min", .int(Int64(config.protocolMin))), ("protocol_max", .int(Int64(config.protocolMax))),
            ("features", .array(config.features.map { .string($0) })),
            ("worker_name", .string(config.name)), ("store_id", .string(store.storeID)),
            ("executor", .string(config.executorKind)),
            ("xcodes", .array([.obj(["version": .string(t.xcodeVersion), "build": .string(t.xcodeBuild),
                                     "path": .string(directoryOf(directoryOf(t.developerDir))), "developer_dir": .string(t.developerDir)])])),
            ("active_developer_dir", .string(t.developerDir)), ("macos_version", .string(t.macosVersion)),
            ("macos_build", .string(t.macosBuild)), ("arch", .string(t.arch)),
            ("runtimes", .array(runtimes)), ("devices", .array(devices)),
            ("capacity", .obj(["max_concurrent_jobs": .int(Int64(config.maxConcurrentJobs))])),
            ("max_upload_bytes", .int(Int64(config.maxUploadBytes))), ("max_header_bytes", .int(Int64(config.maxHeaderBytes))),
            ("host_key_fingerprint", .null), ("attestation_key_fingerprint", .null),
        ])
    }

    /// The current document (persisted, refreshed when the stable content changed).
    public static func document(store: LocalStore, config: WorkerConfig) -> [UInt8] {
        let path = store.root + "/capabilities.json"
        let fresh = stable(store: store, config: config)
        if let bytes = try? DurableFile.read(path), var old = try? JSONParser().parse(bytes).objectValue {
            old["created_at"] = nil
            if old == fresh { return bytes }
        }
        var doc = fresh
        doc["created_at"] = .string(Timestamp.now())
        let bytes = JSONValue.object(doc).canonicalBytes
        _ = try? DurableFile.write(bytes, to: path, replace: true)
        return bytes
    }

    public static func digest(store: LocalStore, config: WorkerConfig) -> SHA256Digest {
        .of(document(store: store, config: config))
    }
}
