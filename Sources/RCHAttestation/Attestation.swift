import Crypto
import RCHCore

/// `attestation.json` (`rch-xcode/attestation@1`): what a worker vouches for, signed.
///
/// Signing rule: the signature is Ed25519 over the RFC 8785 bytes of the document **without** its
/// `signature` member; `signature` = `{algorithm: "Ed25519", key_fingerprint, value}` with `value` the
/// 64-byte signature in lowercase hex. `worker.public_key` (hex) and `worker.fingerprint`
/// (SHA-256 of the raw public key) name the key; a verifier trusts the key only through a channel of its
/// own (the worker's capabilities fetched over SSH, an inventory pin), never because the document names it.
public enum Attestation {
    public static let schemaID = "rch-xcode/attestation@1"

    /// The members a document we write has, and nothing else.
    static let members: Set<String> = [
        "schema_version", "schema_id", "created_at", "run_id", "job_id", "job_key", "source_sha256", "worker",
        "capabilities_sha256", "backend", "manifest_sha256", "cached_from_job_id", "signature", "origin",
    ]

    /// The bytes the signature covers.
    public static func signedBytes(_ document: JSONObject) -> [UInt8] {
        var unsigned = document
        unsigned["signature"] = nil
        return JSONValue.object(unsigned).canonicalBytes
    }

    /// Returns `document` with its `signature` member set.
    public static func sign(_ document: JSONObject, with key: AttestationKey) throws -> JSONValue {
        var signed = document
        let signature = try key.sign(signedBytes(document))
        signed["signature"] = .obj([
            "algorithm": .string(AttestationKey.algorithm),
            "key_fingerprint": .string(key.fingerprint.hex),
            "value": .string(Hex.encode(signature)),
        ])
        return .object(signed)
    }

    /// Checks an Ed25519 signature of `bytes` by the raw 32-byte `publicKey`.
    public static func isValid(signature: [UInt8], of bytes: [UInt8], publicKey: [UInt8]) -> Bool {
        guard let key = try? Curve25519.Signing.PublicKey(rawRepresentation: publicKey) else { return false }
        return key.isValidSignature(signature, for: bytes)
    }
}

/// Lowercase hex, strictly parsed.
public enum Hex {
    public static func encode(_ bytes: [UInt8]) -> String {
        var out = [UInt8]()
        out.reserveCapacity(bytes.count * 2)
        for b in bytes {
            out.append(RCHCore.SHA256Digest.hexDigit(b >> 4))
            out.append(RCHCore.SHA256Digest.hexDigit(b & 0xf))
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// Nil unless `s` is exactly `2 * count` lowercase hex digits.
    public static func decode(_ s: String, count: Int) -> [UInt8]? {
        let u = Array(s.utf8)
        guard u.count == 2 * count else { return nil }
        var out = [UInt8]()
        out.reserveCapacity(count)
        var i = 0
        while i < u.count {
            let hi = RCHCore.SHA256Digest.nibble(u[i])
            let lo = RCHCore.SHA256Digest.nibble(u[i + 1])
            guard hi < 16, lo < 16 else { return nil }
            out.append(hi << 4 | lo)
            i += 2
        }
        return out
    }
}
