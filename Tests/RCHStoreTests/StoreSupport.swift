import Foundation
import RCHBundle
import RCHCore
import RCHStore
import RCHTestSupport
import XcodeTreeGen

enum StoreFixtures {
    /// A bundle of a generated tree; returns (bundle path, source_sha256, tree root).
    static func bundle(_ d: TempDir, name: String = "tree", seed: UInt64 = 1, scale: Double = 0.02) throws -> (
        String, SHA256Digest, String
    ) {
        let root = d.sub(name)
        if !FileManager.default.fileExists(atPath: root) {
            try XcodeTreeGen(seed: seed, scale: scale).makeTree(at: root)
        }
        let out = d.sub(name + ".tar.zst")
        let tmp = try TempFile(directory: d.path)
        let r = try Bundler.bundle(root: root, output: tmp)
        try tmp.commit(to: out, durable: false)
        return (out, r.sourceSHA256, root)
    }

    static func json(_ v: [String: Any], to path: String) throws {
        try JSONSerialization.data(withJSONObject: v, options: [.sortedKeys]).write(to: URL(fileURLWithPath: path))
    }

    /// A job artifact directory shaped like the backend contract's.
    static func artifacts(
        _ dir: String, action: String = "test", rich: Bool = false, status: String = "success",
        jobKey: SHA256Digest, jobID: String = "job_0000000001", runID: String = "run_0000000001",
        source: SHA256Digest = .of(Array("src".utf8))
    ) throws {
        let t = Tree(dir)
        t.file("build.log", "Build succeeded\n")
        let created = "2026-11-22T00:00:00.000Z"
        let exit = status == "success" ? 0 : (status == "cancelled" ? 80 : 50)
        var summary: [String: Any] = [
            "schema_version": 1, "schema_id": "rch-xcode/summary@1", "created_at": created, "run_id": runID,
            "job_id": jobID, "job_key": jobKey.hex, "status": status, "exit_code": exit,
            "human_summary": "\(action) \(status)", "backend": "xcodebuild",
            "artifact_profile": rich ? "rich" : "minimal",
        ]
        if status != "success" { summary["failure_kind"] = status == "cancelled" ? "CANCELLED" : "XCODEBUILD" }
        try json(summary, to: dir + "/summary.json")
        try json(
            [
                "schema_version": 1, "schema_id": "rch-xcode/job@1", "created_at": created, "run_id": runID,
                "job_id": jobID,
                "action": action, "job_key": jobKey.hex,
                "job_key_inputs": ["source_sha256": source.hex, "toolchain": ["xcode_build": "16C5032a"]],
            ], to: dir + "/job.json")
        try json(
            [
                "schema_version": 1, "schema_id": "rch-xcode/toolchain@1", "created_at": created, "run_id": runID,
                "job_id": jobID,
                "job_key": jobKey.hex, "xcode_build": "16C5032a",
            ], to: dir + "/toolchain.json")
        if action == "test" {
            t.file("result.xcresult/Info.plist", "<plist/>\n")
            t.bytes("result.xcresult/Data/data.0001", [UInt8](repeating: 7, count: 5000))
        }
        if rich {
            t.file("events.jsonl", "{\"stage\":\"build\"}\n")
            if action == "test" {
                t.file("test_summary.json", "{\"passed\":3}\n")
                t.file("junit.xml", "<testsuites/>\n")
            } else {
                t.file("build_summary.json", "{\"warnings\":0}\n")
            }
        }
    }

    /// Every visible source and result entry verifies completely (used after crash tests).
    static func checkStoreInvariants(_ store: LocalStore) throws -> [String] {
        var problems: [String] = []
        let sources = SourceStore(store: store)
        for shard in (try? FileManager.default.contentsOfDirectory(atPath: store.sourcesDirectory)) ?? [] {
            for f in try FileManager.default.contentsOfDirectory(atPath: store.sourcesDirectory + "/" + shard) {
                if f.hasPrefix(".tmp-") { continue }
                if f.hasSuffix(".ckpt"), let sha = SHA256Digest(hex: String(f.dropLast(5))) {
                    // A source's checkpoints: beside its entry, and exactly the states a rebuild passes through.
                    let d = TempDir()
                    guard let m = try? sources.manifest(sha),
                        let kept = SourceCheckpoints(store: store).read(sha, entries: m.entries.count),
                        let r = try? sources.export(sha, to: d.sub("x.tar.zst")), r.checkpoints == kept
                    else {
                        problems.append("checkpoints \(f) without their entry, malformed or wrong")
                        continue
                    }
                    continue
                }
                guard f.hasSuffix(".json"), let sha = SHA256Digest(hex: String(f.dropLast(5))) else {
                    problems.append("stray \(f)")
                    continue
                }
                guard let m = try? sources.manifest(sha) else {
                    problems.append("unreadable source entry \(f)")
                    continue
                }
                for e in m.entries where e.type == .file && !store.blobs.verify(e.sha256) {
                    problems.append("source \(sha.hex): blob of \(e.path) bad")
                }
                do {
                    let d = TempDir()
                    let r = try sources.export(sha, to: d.sub("x.tar.zst"))
                    if r.sourceSHA256 != sha { problems.append("source \(sha.hex) rebuilds differently") }
                } catch { problems.append("source \(sha.hex) does not rebuild: \(error)") }
            }
        }
        let results = ResultStore(store: store)
        for ns in (try? FileManager.default.contentsOfDirectory(atPath: store.resultsDirectory)) ?? [] {
            for shard in try FileManager.default.contentsOfDirectory(atPath: store.resultsDirectory + "/" + ns) {
                for f in try FileManager.default.contentsOfDirectory(
                    atPath: store.resultsDirectory + "/" + ns + "/" + shard) where !f.hasPrefix(".tmp-")
                {
                    guard let key = SHA256Digest(hex: String(f.dropLast(5))),
                        let e = try? results.entry(namespace: ns, jobKey: key)
                    else {
                        problems.append("unreadable result entry \(f)")
                        continue
                    }
                    for x in e.entries where !x.isDirectory && !store.blobs.verify(x.sha256!) {
                        problems.append("result \(key.hex): blob of \(x.path) bad")
                    }
                }
            }
        }
        return problems
    }
}

enum RCHBundleDigest {
    static func of(_ dir: String) throws -> SHA256Digest { try Bundler.bundle(root: dir, output: nil).sourceSHA256 }
}
