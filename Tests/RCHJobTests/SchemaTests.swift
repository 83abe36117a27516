import Foundation
import RCHCore
import Testing

/// Schemas of artifacts that later layers write: each must accept a well-formed document and refuse a
/// broken one (a schema that accepts everything would prove nothing).
@Suite("Artifact schemas accept good documents and refuse bad ones")
struct SchemaTests {
    static let sha = String(repeating: "0123456789abcdef", count: 4)
    nonisolated(unsafe) static let envelope: [String: Any] = [
        "schema_version": 1, "created_at": "2026-11-22T02:05:50.123Z",
    ]

    static func doc(_ name: String, _ fields: [String: Any]) -> [String: Any] {
        envelope.merging(["schema_id": "rch-xcode/\(name)@1"]) { $1 }.merging(fields) { $1 }
    }

    nonisolated(unsafe) static let cases: [(String, [String: Any], [String: Any])] = [
        (
            "manifest",
            doc(
                "manifest",
                [
                    "run_id": "run_0123456789", "job_id": "job_0123456789", "job_key": sha, "artifact_root_sha256": sha,
                    "entries": [
                        ["path": "build.log", "type": "file", "size": 3, "sha256": sha],
                        ["path": "result.xcresult", "type": "directory", "size": 0, "sha256": NSNull()],
                    ],
                ]),
            ["entries": [["path": "d", "type": "directory", "size": 0, "sha256": sha]]]
        ),
        (
            "attestation",
            doc(
                "attestation",
                [
                    "run_id": "run_0123456789", "job_id": "job_0123456789", "job_key": sha, "source_sha256": sha,
                    "manifest_sha256": sha, "capabilities_sha256": sha, "cached_from_job_id": NSNull(),
                    "worker": ["name": "mini-1", "fingerprint": sha, "public_key": sha],
                    "backend": [
                        "name": "xcodebuild", "version": "Xcode 16.2 (16C5032a)", "executor_class": "xcodebuild",
                    ],
                    "signature": ["algorithm": "Ed25519", "key_fingerprint": sha, "value": sha + sha],
                ]),
            ["signature": NSNull()]
        ),
        (
            "attestation_verification",
            doc(
                "attestation_verification",
                [
                    "run_id": "run_0123456789", "job_id": "job_0123456789", "verification_result": "verified",
                    "signature_algorithm": "Ed25519", "pubkey_fingerprint": sha, "pinned_fingerprint": NSNull(),
                    "key_source": "capabilities", "error_message": NSNull(),
                    "checks": [["name": "signature", "ok": true, "detail": "valid Ed25519 signature"]],
                ]),
            ["verification_result": "maybe"]
        ),
        (
            "summary",
            doc(
                "summary",
                [
                    "run_id": "run_0123456789", "job_id": "job_0123456789", "job_key": sha, "status": "cancelled",
                    "failure_kind": "CANCELLED", "exit_code": 80, "human_summary": "cancelled by user",
                ]),
            ["exit_code": 0]
        ),
        (
            "job_index",
            doc(
                "job_index",
                [
                    "run_id": "run_0123456789", "job_id": "job_0123456789", "job_key": sha, "artifact_profile": "rich",
                    "pointers": [
                        "job": "job.json", "summary": "summary.json", "manifest": "manifest.json",
                        "attestation": "attestation.json",
                        "events": "events.jsonl",
                    ],
                ]),
            ["artifact_profile": "gold"]
        ),
        (
            "capabilities",
            doc(
                "capabilities",
                [
                    "protocol_min": 1, "protocol_max": 1, "features": ["probe", "has_source"],
                    "max_upload_bytes": 1 << 30,
                    "arch": "arm64", "executor": "xcodebuild", "identity_source": "detected", "identity_sha256": sha,
                    "identity_error": NSNull(),
                    "attestation_key": ["algorithm": "Ed25519", "public_key": sha, "fingerprint": sha],
                ]),
            ["features": ["probe", "probe"]]
        ),
        (
            "run_plan",
            doc(
                "run_plan",
                [
                    "run_id": "run_0123456789", "repo_root": "/src/app", "selected_worker": "mini1",
                    "selected_worker_host": "mini1.local",
                    "continue_on_failure": false, "protocol_version": 1, "artifact_profile": "minimal",
                    "steps": [
                        [
                            "index": 0, "action": "build", "job_id": "job_0123456789",
                            "argv": ["build", "-scheme", "App"],
                            "rejected": false, "reject_reason": NSNull(),
                        ]
                    ],
                ]),
            ["steps": []]
        ),
    ]

    @Test(arguments: cases.map(\.0))
    func schema(name: String) throws {
        let (_, good, breakage) = Self.cases.first { $0.0 == name }!
        let dir = NSTemporaryDirectory() + "/rch-schema-\(UInt32.random(in: 0...UInt32.max))"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try JSONSerialization.data(withJSONObject: good).write(to: URL(fileURLWithPath: dir + "/good.json"))
        try JSONSerialization.data(withJSONObject: good.merging(breakage) { $1 }).write(
            to: URL(fileURLWithPath: dir + "/bad.json"))
        let ok = try Samples.validate(dir + "/good.json", schema: name)
        #expect(ok.0 == 0, "\(ok.1)")
        let bad = try Samples.validate(dir + "/bad.json", schema: name)
        #expect(bad.0 != 0, "\(name): the broken document was accepted")
    }
}
