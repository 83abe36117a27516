import Foundation
import RCHAttestation
import RCHCore
import RCHTestSupport
import Testing

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Signing and the host's verification of `attestation.json`, check by check.
@Suite("Attestations: Ed25519 signing and the host's checks")
struct AttestationTests {
    static let sha = SHA256Digest.of(Array("x".utf8))
    static let manifest = Array(#"{"entries":[],"schema_id":"rch-xcode/manifest@1"}"#.utf8)

    static func document(_ key: AttestationKey, jobID: String = "job_0000000001", manifest: [UInt8] = manifest) throws
        -> [UInt8]
    {
        let doc = JSONObject([
            ("schema_version", .int(1)), ("schema_id", .string(Attestation.schemaID)),
            ("created_at", .string("2026-11-30T09:00:00Z")),
            ("run_id", .string("run_0000000001")), ("job_id", .string(jobID)), ("job_key", .string(sha.hex)),
            ("source_sha256", .string(sha.hex)),
            (
                "worker",
                .obj([
                    "name": .string("mini-1"), "fingerprint": .string(key.fingerprint.hex),
                    "public_key": .string(Hex.encode(key.publicKey)),
                ])
            ),
            ("capabilities_sha256", .string(sha.hex)),
            (
                "backend",
                .obj([
                    "name": .string("xcodebuild"), "version": .string("Xcode 16.2 (16C5032a)"),
                    "executor_class": .string("xcodebuild"),
                ])
            ),
            ("manifest_sha256", .string(SHA256Digest.of(manifest).hex)), ("cached_from_job_id", .null),
        ])
        return try Attestation.sign(doc, with: key).canonicalBytes
    }

    static let expected = AttestationVerifier.Expectation(jobID: "job_0000000001", jobKey: sha, sourceSHA256: sha)

    @Test("a signed attestation verifies against the worker's key, the pin and the submitted job")
    func verifies() throws {
        let key = AttestationKey.generate()
        let v = AttestationVerifier.verify(
            attestationBytes: try Self.document(key), manifestBytes: Self.manifest, expected: Self.expected,
            workerPublicKey: key.publicKey, pinnedFingerprint: key.fingerprint.hex)
        #expect(v.verified, "\(v.checks)")
        #expect(
            v.checks.map(\.name) == [
                "format", "algorithm", "key_binding", "worker_key", "pinned_key", "signature", "job", "manifest",
            ])
        #expect(
            v.json(runID: "run_0000000001", jobID: "job_0000000001")["verification_result"]?.stringValue == "verified")
    }

    enum Tamper: String, CaseIterable, Sendable {
        case flippedByte, anotherWorkersKey, pinMismatch, manifestSwapped, otherJob, unsigned, resignedByImpostor,
            unknownMember
    }

    @Test("every tampering is caught by the named check", arguments: Tamper.allCases)
    func tampered(_ t: Tamper) throws {
        let key = AttestationKey.generate()
        let other = AttestationKey.generate()
        var bytes = try Self.document(key)
        var manifest = Self.manifest
        var workerKey = key.publicKey
        var pin: String? = nil
        var expected = Self.expected
        let failing: String
        switch t {
        case .flippedByte:
            // One byte of the signed content (inside the backend version string).
            let i = bytes.firstIndex(of: UInt8(ascii: "X"))!
            bytes[i] = UInt8(ascii: "Y")
            failing = "signature"
        case .anotherWorkersKey:
            workerKey = other.publicKey
            failing = "worker_key"
        case .pinMismatch:
            pin = other.fingerprint.hex
            failing = "pinned_key"
        case .manifestSwapped:
            manifest = Array(#"{"entries":[{"path":"evil"}]}"#.utf8)
            failing = "manifest"
        case .otherJob:
            expected.jobKey = .of([1])
            failing = "job"
        case .unsigned:
            var o = try JSONParser().parse(bytes).objectValue!
            o["signature"] = .null
            bytes = JSONValue.object(o).canonicalBytes
            failing = "format"
        case .resignedByImpostor:
            // Someone re-signs a modified document with their own key and names it: the key is not the worker's.
            bytes = try Self.document(other)
            failing = "worker_key"
        case .unknownMember:
            var o = try JSONParser().parse(bytes).objectValue!
            o["extra"] = .bool(true)
            bytes = JSONValue.object(o).canonicalBytes
            failing = "format"
        }
        let v = AttestationVerifier.verify(
            attestationBytes: bytes, manifestBytes: manifest, expected: expected,
            workerPublicKey: workerKey, pinnedFingerprint: pin)
        #expect(!v.verified)
        #expect(v.firstFailure?.name == failing, "\(v.checks)")
    }

    @Test("the key file: created once with mode 0600, shared by concurrent creators, refused when readable by others")
    func keyFile() throws {
        let d = TempDir()
        let dir = d.sub("store/keys")
        let group = DispatchGroup()
        let lock = NSLock()
        nonisolated(unsafe) var fingerprints: Set<String> = []
        for _ in 0..<8 {
            group.enter()
            DispatchQueue.global().async {
                defer { group.leave() }
                if let k = try? AttestationKey.loadOrCreate(directory: dir) {
                    lock.lock()
                    fingerprints.insert(k.fingerprint.hex)
                    lock.unlock()
                }
            }
        }
        group.wait()
        #expect(fingerprints.count == 1)
        var st = stat()
        #expect(stat(dir + "/" + AttestationKey.fileName, &st) == 0 && st.st_mode & 0o777 == 0o600 && st.st_size == 32)
        #expect(try AttestationKey.loadOrCreate(directory: dir).fingerprint.hex == fingerprints.first)
        chmod(dir + "/" + AttestationKey.fileName, 0o644)
        #expect(throws: KeyError.self) { _ = try AttestationKey.loadOrCreate(directory: dir) }
        chmod(dir + "/" + AttestationKey.fileName, 0o600)
        try Data(repeating: 1, count: 31).write(to: URL(fileURLWithPath: dir + "/" + AttestationKey.fileName))
        chmod(dir + "/" + AttestationKey.fileName, 0o600)
        #expect(throws: KeyError.self) { _ = try AttestationKey.loadOrCreate(directory: dir) }
    }
}
