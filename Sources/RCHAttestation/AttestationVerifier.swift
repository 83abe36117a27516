import RCHCore

/// The host's check of a fetched job's `attestation.json` (the result goes to
/// `attestation_verification.json`, `rch-xcode/attestation_verification@1`).
///
/// Checks, all of which must pass (each is recorded by name):
/// 1. `format`: the document is exactly what a worker writes (schema, members, types);
/// 2. `algorithm`: `signature.algorithm` is Ed25519;
/// 3. `key_binding`: SHA-256 of `worker.public_key` equals `worker.fingerprint` and `signature.key_fingerprint`;
/// 4. `worker_key`: that key is the one the worker published in the capabilities this host obtained
///    over its own channel (probe through SSH);
/// 5. `pinned_key`: when the inventory pins `attestation_pubkey_fingerprint`, it equals the fingerprint;
/// 6. `signature`: the Ed25519 signature over the document without `signature` is valid;
/// 7. `job`: `job_id`, `job_key` and `source_sha256` are the ones this host submitted;
/// 8. `manifest`: `manifest_sha256` is the SHA-256 of the fetched `manifest.json` bytes.
public enum AttestationVerifier {
    public struct Expectation: Sendable {
        public var jobID: String
        public var jobKey: RCHCore.SHA256Digest?
        public var sourceSHA256: RCHCore.SHA256Digest?

        public init(jobID: String, jobKey: RCHCore.SHA256Digest?, sourceSHA256: RCHCore.SHA256Digest?) {
            self.jobID = jobID
            self.jobKey = jobKey
            self.sourceSHA256 = sourceSHA256
        }
    }

    public struct Check: Sendable, Equatable {
        public var name: String
        public var ok: Bool
        public var detail: String
    }

    public struct Verification: Sendable {
        public var checks: [Check]
        public var fingerprint: String?
        public var pinnedFingerprint: String?
        public var document: JSONValue?

        public var verified: Bool { !checks.isEmpty && checks.allSatisfy(\.ok) }
        public var firstFailure: Check? { checks.first { !$0.ok } }

        /// `attestation_verification.json`.
        public func json(runID: String?, jobID: String, now: String = Timestamp.now()) -> JSONValue {
            .obj([
                "schema_version": .int(1),
                "schema_id": .string("rch-xcode/attestation_verification@1"),
                "created_at": .string(now),
                "run_id": runID.map { .string($0) } ?? .null,
                "job_id": .string(jobID),
                "verification_result": .string(verified ? "verified" : "failed"),
                "signature_algorithm": .string(AttestationKey.algorithm),
                "pubkey_fingerprint": fingerprint.map { .string($0) } ?? .null,
                "pinned_fingerprint": pinnedFingerprint.map { .string($0) } ?? .null,
                "key_source": .string("capabilities"),
                "checks": .array(
                    checks.map { .obj(["name": .string($0.name), "ok": .bool($0.ok), "detail": .string($0.detail)]) }),
                "error_message": firstFailure.map { .string("\($0.name): \($0.detail)") } ?? .null,
            ])
        }
    }

    /// Verifies `attestationBytes` against `manifestBytes`, the expectation, the worker's published key
    /// (raw 32 bytes, nil if it published none) and an optional pinned fingerprint.
    public static func verify(
        attestationBytes: [UInt8], manifestBytes: [UInt8], expected: Expectation, workerPublicKey: [UInt8]?,
        pinnedFingerprint: String?
    ) -> Verification {
        var v = Verification(checks: [], fingerprint: nil, pinnedFingerprint: pinnedFingerprint, document: nil)
        func check(_ name: String, _ ok: Bool, _ detail: String) -> Bool {
            v.checks.append(Check(name: name, ok: ok, detail: detail))
            return ok
        }
        let parsed: Parsed
        do {
            parsed = try Parsed(attestationBytes)
        } catch {
            _ = check("format", false, "\(error)")
            return v
        }
        v.document = .object(parsed.document)
        v.fingerprint = parsed.fingerprint
        guard check("format", true, "\(Attestation.schemaID) document") else { return v }
        guard
            check("algorithm", parsed.algorithm == AttestationKey.algorithm, "signature.algorithm \(parsed.algorithm)")
        else { return v }
        let keyFingerprint = AttestationKey.fingerprint(ofPublicKey: parsed.publicKey).hex
        guard
            check(
                "key_binding", keyFingerprint == parsed.fingerprint && keyFingerprint == parsed.signatureFingerprint,
                "sha256(worker.public_key) = \(keyFingerprint)")
        else { return v }
        guard let workerPublicKey else {
            _ = check("worker_key", false, "the worker publishes no attestation key in its capabilities")
            return v
        }
        guard
            check(
                "worker_key", workerPublicKey == parsed.publicKey,
                workerPublicKey == parsed.publicKey
                    ? "the key the worker published"
                    : "signed by key \(keyFingerprint), but the worker publishes \(AttestationKey.fingerprint(ofPublicKey: workerPublicKey).hex)"
            )
        else { return v }
        if let pinnedFingerprint {
            guard
                check(
                    "pinned_key", pinnedFingerprint == keyFingerprint,
                    "inventory pins \(pinnedFingerprint), the worker signs with \(keyFingerprint)")
            else { return v }
        }
        let valid = Attestation.isValid(
            signature: parsed.signature, of: Attestation.signedBytes(parsed.document), publicKey: parsed.publicKey)
        guard check("signature", valid, valid ? "valid Ed25519 signature" : "the signature does not match the document")
        else { return v }
        var mismatches: [String] = []
        if parsed.jobID != expected.jobID { mismatches.append("job_id \(parsed.jobID) ≠ \(expected.jobID)") }
        if let k = expected.jobKey, parsed.jobKey != k { mismatches.append("job_key \(parsed.jobKey.hex) ≠ \(k.hex)") }
        if let s = expected.sourceSHA256, parsed.sourceSHA256 != s {
            mismatches.append("source_sha256 \(parsed.sourceSHA256.hex) ≠ \(s.hex)")
        }
        guard
            check(
                "job", mismatches.isEmpty,
                mismatches.isEmpty
                    ? "job_id, job_key and source_sha256 are the submitted ones" : mismatches.joined(separator: "; "))
        else { return v }
        let manifestDigest = RCHCore.SHA256Digest.of(manifestBytes)
        _ = check(
            "manifest", manifestDigest == parsed.manifestSHA256,
            manifestDigest == parsed.manifestSHA256
                ? "manifest_sha256 matches manifest.json"
                : "manifest_sha256 \(parsed.manifestSHA256.hex) ≠ sha256(manifest.json) \(manifestDigest.hex)")
        return v
    }

    /// The members the checks read, typed; anything our writer would not produce is refused.
    struct Parsed {
        var document: JSONObject
        var jobID: String
        var jobKey: RCHCore.SHA256Digest
        var sourceSHA256: RCHCore.SHA256Digest
        var manifestSHA256: RCHCore.SHA256Digest
        var fingerprint: String
        var publicKey: [UInt8]
        var algorithm: String
        var signatureFingerprint: String
        var signature: [UInt8]

        init(_ bytes: [UInt8]) throws {
            func bad(_ m: String) -> FormatError { FormatError(description: "attestation.json: \(m)") }
            let value: JSONValue
            do { value = try JSONParser().parse(bytes) } catch { throw bad("not valid JSON (\(error))") }
            guard let o = value.objectValue else { throw bad("not an object") }
            for k in o.keys where !Attestation.members.contains(k) { throw bad("unknown member '\(k.prefix(64))'") }
            guard o["schema_id"]?.stringValue == Attestation.schemaID, o["schema_version"] == .int(1) else {
                throw bad("schema_id must be \(Attestation.schemaID), schema_version 1")
            }
            func digest(_ v: JSONValue?, _ name: String) throws -> RCHCore.SHA256Digest {
                guard let s = v?.stringValue, let d = RCHCore.SHA256Digest(hex: s) else {
                    throw bad("\(name) must be 64 lowercase hex")
                }
                return d
            }
            guard let job = o["job_id"]?.stringValue, Identifier.isValid(job, .jobID) else {
                throw bad("job_id is missing or invalid")
            }
            guard let worker = o["worker"]?.objectValue, Set(worker.keys) == ["name", "fingerprint", "public_key"],
                worker["name"]?.stringValue != nil, let fp = worker["fingerprint"]?.stringValue,
                RCHCore.SHA256Digest(hex: fp) != nil,
                let pk = worker["public_key"]?.stringValue.flatMap({ Hex.decode($0, count: 32) })
            else { throw bad("worker must be {name, fingerprint (64 hex), public_key (64 hex)}") }
            guard let sig = o["signature"]?.objectValue, Set(sig.keys) == ["algorithm", "key_fingerprint", "value"],
                let alg = sig["algorithm"]?.stringValue, let sfp = sig["key_fingerprint"]?.stringValue,
                let value = sig["value"]?.stringValue.flatMap({ Hex.decode($0, count: 64) })
            else {
                throw bad(
                    "signature must be {algorithm, key_fingerprint, value (128 hex)}; the attestation is unsigned")
            }
            guard let backend = o["backend"]?.objectValue, Set(backend.keys) == ["name", "version", "executor_class"]
            else {
                throw bad("backend must be {name, version, executor_class}")
            }
            // Optional: present only on a hit served from a result pulled from the shared tier.
            if let origin = o["origin"] {
                guard let oo = origin.objectValue, Set(oo.keys) == ["tier", "publisher"],
                    oo["tier"]?.stringValue == "shared", let p = oo["publisher"]?.objectValue,
                    Set(p.keys) == ["name", "fingerprint"], p["name"]?.stringValue != nil,
                    p["fingerprint"]?.stringValue.flatMap({ RCHCore.SHA256Digest(hex: $0) }) != nil
                else { throw bad("origin must be {tier: \"shared\", publisher: {name, fingerprint}}") }
            }
            document = o
            jobID = job
            jobKey = try digest(o["job_key"], "job_key")
            sourceSHA256 = try digest(o["source_sha256"], "source_sha256")
            manifestSHA256 = try digest(o["manifest_sha256"], "manifest_sha256")
            fingerprint = fp
            publicKey = pk
            algorithm = alg
            signatureFingerprint = sfp
            signature = value
        }
    }

    struct FormatError: Error, CustomStringConvertible {
        var description: String
    }
}
