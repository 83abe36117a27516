import RCHAttestation
import RCHCore
import RCHStore

/// A result as the tier holds it: `rch-xcode/shared_result@1`, the worker's local entry signed by the
/// publishing worker's attestation key.
///
/// ```
/// {schema_version: 1, schema_id, published_at, namespace, job_key, entry: <result_entry@1>,
///  publisher: {name, fingerprint, public_key}, signature: {algorithm: "Ed25519", key_fingerprint, value}}
/// ```
/// Trust rule (checked in this order; any failure = the object is ignored, never served):
/// exactly these members and types → `publisher.fingerprint` = SHA-256(public_key) = `signature.key_fingerprint`
/// → the fingerprint is the reader's own key or in its `trusted_keys` → the Ed25519 signature over the RFC 8785
/// bytes without `signature` verifies → `entry` parses strictly (result_entry@1 rules) → `namespace`/`job_key`
/// equal the entry's and the ones looked up. The executor class and profile are then checked like a local
/// entry's (PLAN §7, §14.3).
public struct SharedResult: Sendable {
    public static let schemaID = "rch-xcode/shared_result@1"
    static let members: Set<String> = [
        "schema_version", "schema_id", "published_at", "namespace", "job_key", "entry", "publisher", "signature",
    ]

    public var entry: ResultEntry
    public var publisherName: String
    public var publisherFingerprint: String

    /// The signed document for `entry`, published by `worker`.
    public static func document(_ entry: ResultEntry, by worker: WorkerIdentity, now: String = Timestamp.now()) throws
        -> [UInt8]
    {
        var published = entry
        published.origin = nil
        let doc: JSONObject = [
            "schema_version": .int(1), "schema_id": .string(schemaID), "published_at": .string(now),
            "namespace": .string(entry.namespace), "job_key": .string(entry.jobKey.hex), "entry": published.json,
            "publisher": .obj([
                "name": .string(worker.name), "fingerprint": .string(worker.fingerprint),
                "public_key": .string(Hex.encode(worker.key.publicKey)),
            ]),
        ]
        return try Attestation.sign(doc, with: worker.key).canonicalBytes + [10]
    }

    public struct Rejected: Error, CustomStringConvertible {
        public var description: String
    }

    /// Reads and checks a tier object fetched for `namespace`/`jobKey` (see the trust rule).
    public init(_ bytes: [UInt8], namespace: String, jobKey: SHA256Digest, trusted: Set<String>) throws {
        func bad(_ m: String) -> Rejected { Rejected(description: "shared result \(jobKey.hex): \(m)") }
        let v: JSONValue
        do { v = try JSONParser().parse(bytes) } catch { throw bad("not valid JSON") }
        guard let o = v.objectValue, Set(o.keys) == Self.members, o["schema_id"]?.stringValue == Self.schemaID,
            o["schema_version"] == .int(1), o["published_at"]?.stringValue.map(Timestamp.isValid) == true,
            let ns = o["namespace"]?.stringValue, let key = o["job_key"]?.stringValue
        else { throw bad("not a \(Self.schemaID) document") }
        guard let p = o["publisher"]?.objectValue, Set(p.keys) == ["name", "fingerprint", "public_key"],
            let name = p["name"]?.stringValue, let fp = p["fingerprint"]?.stringValue,
            let pk = p["public_key"]?.stringValue.flatMap({ Hex.decode($0, count: 32) })
        else { throw bad("publisher must be {name, fingerprint, public_key}") }
        guard let s = o["signature"]?.objectValue, Set(s.keys) == ["algorithm", "key_fingerprint", "value"],
            s["algorithm"]?.stringValue == "Ed25519", let sfp = s["key_fingerprint"]?.stringValue,
            let sig = s["value"]?.stringValue.flatMap({ Hex.decode($0, count: 64) })
        else { throw bad("signature must be {algorithm: Ed25519, key_fingerprint, value}") }
        guard AttestationKey.fingerprint(ofPublicKey: pk).hex == fp, sfp == fp else {
            throw bad("the publisher's fingerprint does not match its public key")
        }
        guard trusted.contains(fp) else { throw bad("published by \(name) (key \(fp.prefix(16))…), not a trusted key") }
        guard Attestation.isValid(signature: sig, of: Attestation.signedBytes(o), publicKey: pk) else {
            throw bad("the signature does not verify")
        }
        let entry: ResultEntry
        do { entry = try ResultEntry(json: o["entry"]!) } catch { throw bad("its entry is invalid: \(error)") }
        guard ns == namespace, entry.namespace == namespace, key == jobKey.hex, entry.jobKey == jobKey else {
            throw bad("it is stored under another namespace or job_key than it names")
        }
        self.entry = entry
        publisherName = name
        publisherFingerprint = fp
    }
}
