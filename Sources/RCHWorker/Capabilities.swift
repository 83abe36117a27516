import RCHAttestation
import RCHCore
import RCHIdentity
import RCHProtocol
import RCHStore

/// `capabilities.json` (`rch-xcode/capabilities@1`): what this worker offers.
///
/// Invariant: the document holds only stable facts (identity, features, limits, the attestation key),
/// so its digest — bound into every attestation as `capabilities_sha256` — changes only when the worker
/// does. It is persisted at `<store>/capabilities.json` and rewritten (new `created_at`) only when its
/// stable content changes. Volatile numbers (free disk, running jobs) travel in the probe reply's
/// `status`. The identity comes from ``WorkerIdentityProvider`` (`identity_source`: detected|declared,
/// `identity_sha256`); when it cannot be had, `identity_error` says why and no toolchain is claimed.
public enum Capabilities {
    static func stable(_ provider: WorkerIdentityProvider, key: AttestationKeyInfo?) -> JSONObject {
        let config = provider.config
        var doc = JSONObject([
            ("schema_version", .int(1)), ("schema_id", .string("rch-xcode/capabilities@1")),
            ("rch_xcode_lane_version", .string(LaneProtocol.laneVersion)),
            ("protocol_min", .int(Int64(config.protocolMin))), ("protocol_max", .int(Int64(config.protocolMax))),
            ("features", .array(config.features.map { .string($0) })),
            ("worker_name", .string(config.name)), ("store_id", .string(provider.store.storeID)),
            ("executor", .string(provider.selection.executorClass)),
            ("capacity", .obj(["max_concurrent_jobs": .int(Int64(config.maxConcurrentJobs))])),
            ("max_upload_bytes", .int(Int64(config.maxUploadBytes))),
            ("max_header_bytes", .int(Int64(config.maxHeaderBytes))),
            ("host_key_fingerprint", .null),
            ("attestation_key_fingerprint", key.map { .string($0.fingerprint) } ?? .null),
            (
                "attestation_key",
                key.map {
                    .obj([
                        "algorithm": .string("Ed25519"), "public_key": .string($0.publicKey),
                        "fingerprint": .string($0.fingerprint),
                    ])
                } ?? .null
            ),
        ])
        do {
            let id = try provider.current()
            doc["identity_source"] = .string(id.source.rawValue)
            doc["identity_sha256"] = .string(id.identitySHA256.hex)
            doc["identity_error"] = .null
            doc["xcodes"] = .array([
                .obj([
                    "version": .string(id.xcodeVersion), "build": .string(id.xcodeBuild),
                    "path": .string(id.xcodePath), "developer_dir": .string(id.developerDir),
                ])
            ])
            doc["active_developer_dir"] = .string(id.developerDir)
            doc["macos_version"] = .string(id.macosVersion)
            doc["macos_build"] = .string(id.macosBuild)
            doc["arch"] = .string(id.arch)
            doc["runtimes"] = id.json["runtimes"]
            doc["devices"] = id.json["devices"]
            doc["device_udids"] = id.udidsJSON
            doc["device_types"] = id.json["device_types"]
            doc["unavailable_runtimes"] = id.json["unavailable_runtimes"]
        } catch {
            doc["identity_source"] = .null
            doc["identity_sha256"] = .null
            doc["identity_error"] = .string((error as? RPCError)?.message ?? "\(error)")
        }
        return doc
    }

    /// The current document (persisted, refreshed when the stable content changed).
    public static func document(_ provider: WorkerIdentityProvider) -> [UInt8] {
        let path = provider.store.root + "/capabilities.json"
        let fresh = stable(provider, key: try? AttestationKeyInfo(provider.store.attestationKey()))
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

    public static func digest(_ provider: WorkerIdentityProvider) -> SHA256Digest { .of(document(provider)) }
}

/// The public half of the attestation key as capabilities publish it.
struct AttestationKeyInfo {
    var publicKey: String
    var fingerprint: String

    init(_ key: AttestationKey) {
        publicKey = Hex.encode(key.publicKey)
        fingerprint = key.fingerprint.hex
    }
}
