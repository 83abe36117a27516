import Foundation
import RCHAttestation
import RCHBundle
import RCHCore
import RCHStore
import RCHTestSupport
import Testing
import XcodeTreeGen

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

@Suite("Crash safety")
struct CrashTests {
    /// Starts `rch-worker args`, SIGKILLs it after `delayMicros` (if still running); returns whether it finished by itself.
    static func runKilled(_ args: [String], after delayMicros: UInt32) throws -> Bool {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: TestPaths.executable("rch-worker"))
        p.arguments = args
        p.standardOutput = FileHandle.nullDevice
        p.standardError = FileHandle.nullDevice
        try p.run()
        usleep(delayMicros)
        if p.isRunning { kill(p.processIdentifier, SIGKILL) }
        p.waitUntilExit()
        return p.terminationReason == .exit
    }

    @Test("SIGKILL at random points of ingest, record and materialise never leaves a partial or wrong visible entry")
    func randomKills() throws {
        let d = TempDir()
        let store = d.sub("store")
        var bundles: [(String, SHA256Digest)] = []
        for seed in 1...4 {
            // The last is big enough (> 512 files) to be published in waves while it is ingested.
            let scale = seed == 4 ? 0.15 : 0.05
            let (b, s, _) = try StoreFixtures.bundle(d, name: "t\(seed)", seed: UInt64(seed), scale: scale)
            bundles.append((b, s))
        }
        var keys: [SHA256Digest] = []
        for i in 0..<3 {
            let key = SHA256Digest.of(Array("crash-\(i)".utf8))
            try XcodeTreeGen(seed: UInt64(10 + i), scale: 0.02).makeResults(at: d.sub("art\(i)"))
            try StoreFixtures.artifacts(
                d.sub("art\(i)"), action: "test", rich: i == 2, jobKey: key, jobID: "job_000000000\(i)")
            keys.append(key)
        }
        var rng = SystemRandomNumberGenerator()
        var finished = 0
        var killed = 0
        for round in 0..<36 {
            let delay = UInt32.random(in: 0...250_000, using: &rng)
            let args: [String]
            switch round % 4 {
            case 0:
                let (b, s) = bundles[(round / 4) % bundles.count]
                args = ["store", "ingest", b, "--expect", s.hex, "--store", store]
            case 1:
                let i = (round / 4) % keys.count
                args = [
                    "store", "record-result", d.sub("art\(i)"), "--job-key", keys[i].hex, "--namespace", "app",
                    "--executor-class", "recording", "--store", store,
                ]
            case 2:
                let i = (round / 4) % keys.count
                args = [
                    "store", "materialise-result", keys[i].hex, "--namespace", "app", "--executor-class", "recording",
                    "--job-id", String(format: "job_r%09d", round),
                    "--run-id", "run_0000000001", "--into", d.sub("jobs/r\(round)"), "--store", store,
                ]
            default:
                let (_, s) = bundles[(round / 4) % bundles.count]
                args = [
                    "store", "materialise-source", s.hex, "--job-id", String(format: "job_s%09d", round), "--into",
                    d.sub("jobs/s\(round)"), "--store", store,
                ]
            }
            if try Self.runKilled(args, after: delay) { finished += 1 } else { killed += 1 }
        }
        #expect(killed > 0, "no run was interrupted; the delays are too long for this machine")

        let s = try LocalStore(root: store)
        #expect(try StoreFixtures.checkStoreInvariants(s) == [])
        for name in (try? FileManager.default.contentsOfDirectory(atPath: d.sub("jobs"))) ?? []
        where !name.hasPrefix(".") {
            let dir = d.sub("jobs/" + name)
            if name.hasPrefix("r") {
                #expect(ArtifactManifest.verify(dir).isEmpty, "visible job dir \(name) is not complete")
                #expect(FileManager.default.fileExists(atPath: dir + "/job_index.json"))
            } else {
                let sha = try Bundler.bundle(root: dir, output: nil).sourceSHA256
                #expect(bundles.contains { $0.1 == sha }, "visible source job dir \(name) is not a whole source")
            }
        }
        // The store is not wedged: every operation completes afterwards.
        for (b, sha) in bundles {
            _ = try SourceStore(store: s).ingest(bundle: b, expected: sha)
            #expect(SourceStore(store: s).has(sha))
        }
        for (i, key) in keys.enumerated() {
            _ = try ResultStore(store: s).record(d.sub("art\(i)"), jobKey: key, namespace: "app", producer: .recording)
            _ = try ResultStore(store: s).materialize(
                jobKey: key, namespace: "app", profile: .minimal, executorClass: "recording", jobID: "job_final00\(i)",
                runID: "run_0000000001",
                into: d.sub("final/\(i)"), worker: .init(name: "w", key: .generate()))
            #expect(ArtifactManifest.verify(d.sub("final/\(i)")).isEmpty)
        }
        #expect(try StoreFixtures.checkStoreInvariants(s) == [])
        print("crash test: \(finished) runs finished, \(killed) killed")
    }
}
