import Foundation
import RCHAttestation
import RCHCore
import RCHHost
import RCHJob
import RCHProtocol
import RCHRun
import RCHStore
import RCHTestSupport
import Testing

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Results you can trust, through a real sshd: detected identity, the re-check on submit, executor
/// classes that never cross, and signed attestations verified by the host.
@Suite("Trust end to end through a real sshd")
struct TrustEndToEndTests {
    static let xcodebuildConfig = "[executor]\nkind = \"xcodebuild\""
    /// A destination both the declared identity and the faked Mac have (iOS 18.2, iPhone 16).
    static let iPhone182 = ["build", "-scheme", "App", "-destination", "platform=iOS Simulator,name=iPhone 16,OS=18.2"]
    static let iPhone182Test = [
        "test", "-scheme", "App", "-destination", "platform=iOS Simulator,name=iPhone 16,OS=18.2",
    ]

    func driver(_ f: LaneFixture, client: WorkerClient? = nil) throws -> RunDriver {
        var d = RunDriver(client: try client ?? f.client(), artifactRoot: f.dir.sub("artifacts"))
        d.pollMillis = 50
        return d
    }

    @Test("the xcodebuild worker reports the detected identity and its attestation key; `rch-worker identity` agrees")
    func detectedIdentity() throws {
        let f = try LaneFixture(config: Self.xcodebuildConfig, ssh: true, fakeTools: true)
        let caps = try f.client().negotiate(forceProbe: true)["capabilities"]!
        #expect(caps["executor"]?.stringValue == "xcodebuild" && caps["identity_source"]?.stringValue == "detected")
        #expect(caps["xcodes"]?.arrayValue?.first?["build"]?.stringValue == "16C5032a")
        #expect(caps["unavailable_runtimes"]?.arrayValue == [.string("com.apple.CoreSimulator.SimRuntime.tvOS-18-2")])
        #expect(caps["runtimes"]?.arrayValue?.count == 2)
        let file = f.dir.sub("caps.json")
        _ = try DurableFile.write(caps.canonicalBytes, to: file)
        let v = try Sub.validate(file, schema: "capabilities")
        #expect(v.status == 0, "\(v.output)")

        let id = try f.worker(["identity", "--json"])
        #expect(id.status == 0, "\(id.stderr)")
        let doc = try JSONParser().parse(Array(id.stdout.utf8))
        #expect(doc["identity_sha256"] == caps["identity_sha256"])
        #expect(doc["attestation_key_fingerprint"] == caps["attestation_key"]?["fingerprint"])
        let text = try f.worker(["identity"])
        #expect(
            text.stdout.contains("Xcode 16.2 (16C5032a)")
                && text.stdout.contains("unavailable runtime: com.apple.CoreSimulator.SimRuntime.tvOS-18-2"))
        // A second Xcode pinned in worker.toml is what gets reported.
        try f.writeConfig(
            Self.xcodebuildConfig + "\n[toolchain]\ndeveloper_dir = \"/Applications/Xcode-16.3.app/Contents/Developer\""
        )
        let pinned = try JSONParser().parse(Array(try f.worker(["identity", "--json"]).stdout.utf8))
        #expect(pinned["xcode_build"]?.stringValue == "16E140")
    }

    @Test(
        "an Xcode update inside the probe TTL: the stale key is refused, the host re-probes and the job runs under a new key"
    )
    func toolchainChange() throws {
        let f = try LaneFixture(config: Self.xcodebuildConfig, ssh: true, fakeTools: true)
        let root = try f.tree()
        let first = try driver(f).run(root: root, argv: iPhone)
        #expect(first.exitCode == 0 && !first.cached, "\(first.summary.canonicalString)")
        let calls = try String(contentsOfFile: f.fakes!.callsLog, encoding: .utf8)
        #expect(
            calls.contains("DEVELOPER_DIR=/Applications/Xcode.app/Contents/Developer") && calls.contains("-scheme App"))
        let hit = try driver(f).run(root: root, argv: iPhone)
        #expect(hit.cached && hit.jobKey == first.jobKey)

        // Xcode 16.2 is updated in place: new build, same path. The host's probe is still fresh (cached).
        f.fakes!.xcodes[0].build = "16C5040b"
        try f.fakes!.write()
        let c = try f.client()
        try c.negotiate()
        #expect(c.probeSource == "cached")
        // The stale key itself is refused before any lookup.
        let stale = try JSONValue.obj([
            "job": JobSpec(
                runID: Identifier.generate(), jobID: Identifier.generate(),
                inputs: JobInputsBuilder.build(
                    argv: iPhone, sourceSHA256: first.push.sourceSHA256,
                    capabilities: c.capabilities!), effectiveConfig: [:]
            ).json
        ])
        do {
            _ = try c.submit(stale["job"]!)
            Issue.record("the stale key was accepted")
        } catch let e as RPCError {
            #expect(
                e.code == .workerIncompatible && e.failureSubkind == "TOOLCHAIN_CHANGED" && e.failureKind.exitCode == 91
            )
            #expect(e.data["mismatches"]?.arrayValue?.first?["field"]?.stringValue == "toolchain.xcode_build")
            #expect(e.data["capabilities"]?["xcodes"]?.arrayValue?.first?["build"]?.stringValue == "16C5040b")
        }
        let third = try driver(f, client: c).run(root: root, argv: iPhone)
        #expect(!third.cached && third.exitCode == 0 && third.jobKey != first.jobKey)
        #expect(third.rekeyed?.contains("xcode_build") == true, "\(third.rekeyed ?? "nil")")
        let inputs = try JSONParser().parse(try DurableFile.read(third.artifacts! + "/job_key_inputs.json"))
        #expect(inputs["toolchain"]?["xcode_build"]?.stringValue == "16C5040b")
        let toolchain = try JSONParser().parse(try DurableFile.read(third.artifacts! + "/toolchain.json"))
        #expect(
            toolchain["xcode_build"]?.stringValue == "16C5040b" && toolchain["xcode_version"]?.stringValue == "16.2")

        // A simulator runtime disappears: a job for it is refused with the runtime named.
        f.fakes!.simctlJSON = f.fakes!.simctlJSON.replacingOccurrences(
            of: "\"isAvailable\" : true,\n      \"name\" : \"iOS 18.4\"",
            with: "\"isAvailable\" : false,\n      \"name\" : \"iOS 18.4\"")
        try f.fakes!.write()
        let gone = try driver(f, client: c).run(root: root, argv: iPhone)  // OS=latest now resolves to 18.2
        #expect(!gone.cached && gone.rekeyed?.contains("sim_runtime") == true, "\(gone.rekeyed ?? "nil")")
    }

    @Test("executors never cross: recording results never hit an xcodebuild worker, nor the reverse")
    func executorsNeverCross() throws {
        // recording, declared identity = the fake Mac's 16.2 / iOS 18.2
        let f = try LaneFixture(ssh: true, fakeTools: true)
        let root = try f.tree()
        let mock = try driver(f).run(root: root, argv: Self.iPhone182)
        #expect(mock.exitCode == 0 && !mock.cached)
        #expect(try driver(f).run(root: root, argv: Self.iPhone182).cached)

        try f.writeConfig(Self.xcodebuildConfig)
        let c = try f.client()
        try c.reprobe()
        let real = try driver(f, client: c).run(root: root, argv: Self.iPhone182)
        #expect(real.jobKey == mock.jobKey, "the class is not part of job_key")
        #expect(!real.cached && real.exitCode == 0, "a recording result was served to the xcodebuild worker")
        let att = try JSONParser().parse(try DurableFile.read(real.artifacts! + "/attestation.json"))
        #expect(
            att["backend"]?["executor_class"]?.stringValue == "xcodebuild"
                && att["backend"]?["version"]?.stringValue == "Xcode 16.2 (16C5032a)")
        #expect(try driver(f, client: c).run(root: root, argv: Self.iPhone182).cached)

        try f.writeConfig("")
        try c.reprobe()
        let back = try driver(f, client: c).run(root: root, argv: Self.iPhone182)
        #expect(!back.cached, "an xcodebuild result was served to the recording worker")
        let job = try JSONParser().parse(try DurableFile.read(back.artifacts! + "/job.json"))
        let ns = job["effective_config"]?["cache"]?["namespace"]?.stringValue ?? "default"
        let lookup = try f.worker(
            ["store", "lookup", mock.jobKey.hex, "--namespace", ns, "--executor-class", "xcodebuild"], config: false)
        #expect(lookup.status == 1 && lookup.stdout.contains("recording executor"), "\(lookup.stdout) \(lookup.stderr)")
    }

    @Test("a worker without Xcode and without an executor kind refuses submits (exit 40) and says how to configure it")
    func unconfigured() throws {
        let f = try LaneFixture(config: "# no executor kind", ssh: true)
        let caps = try f.client().negotiate(forceProbe: true)["capabilities"]!
        #expect(
            caps["executor"]?.stringValue == "unconfigured"
                && caps["identity_error"]?.stringValue?.contains("kind = \"recording\"") == true)
        let root = try f.tree()
        let cli = try Sub.run(
            TestPaths.executable("rch-xcode"),
            [
                "run", root, "--worker", "w", "--inventory", f.inventory, "--store", f.hostStore,
                "--artifacts", f.dir.sub("artifacts"), "--",
            ] + iPhone)
        #expect(cli.status == 40, "\(cli.stdout) \(cli.stderr)")
        #expect(cli.stderr.contains("no executor"))
        let id = try f.worker(["identity"])
        #expect(id.status == 40 && id.stderr.contains("no xcodebuild"))
    }

    enum Tamper: String, CaseIterable, Sendable { case flippedByte, otherWorkerKey, pinMismatch, manifestSwapped }

    @Test("a tampered or foreign attestation: exit 93, nothing left in the artifact root", arguments: Tamper.allCases)
    func tampered(_ t: Tamper) throws {
        let f = try LaneFixture(ssh: true)
        let root = try f.tree()
        if t == .pinMismatch { try f.pinInventory("attestation_pubkey_fingerprint = \"\(SHA256Digest.of([1]).hex)\"") }
        let c = try f.client()
        var d = try driver(f, client: c)
        d.beforeFetch = { jobID in
            let dir = f.workerStore + "/work/" + jobID + "/artifacts"
            switch t {
            case .flippedByte:
                var bytes = try DurableFile.read(dir + "/attestation.json")
                let text = String(decoding: bytes, as: UTF8.self)
                let at = text.utf8.distance(
                    from: text.startIndex, to: text.range(of: "rch-recording-executor")!.lowerBound)
                bytes[at + 4] = UInt8(ascii: "R")  // "rch-Recording-executor/1": one byte of a signed value
                _ = try DurableFile.write(bytes, to: dir + "/attestation.json", replace: true)
            case .otherWorkerKey:
                // The worker's key was replaced (another machine answering as this worker): the probe publishes it.
                unlink(f.workerStore + "/keys/attestation.ed25519")
                try c.reprobe()
            case .pinMismatch:
                break
            case .manifestSwapped:
                var m = try JSONParser().parse(try DurableFile.read(dir + "/manifest.json")).objectValue!
                m["created_at"] = .string("2001-01-01T00:00:00Z")  // entries intact: only the attestation can tell
                _ = try DurableFile.write(JSONValue.object(m).canonicalBytes, to: dir + "/manifest.json", replace: true)
            }
        }
        do {
            _ = try d.run(root: root, argv: iPhone)
            Issue.record("a \(t) attestation was accepted")
        } catch let e as AttestationFailure {
            #expect(e.failureKind.exitCode == 93)
            let expected = [
                "flippedByte": "signature", "otherWorkerKey": "worker_key", "pinMismatch": "pinned_key",
                "manifestSwapped": "manifest",
            ]
            #expect(e.verification.firstFailure?.name == expected[t.rawValue], "\(e)")
        }
        let left = (try? FileManager.default.contentsOfDirectory(atPath: f.dir.sub("artifacts"))) ?? []
        #expect(left.isEmpty, "left in the artifact root: \(left)")

        // The CLI says the same with exit 93 and leaves no directory.
        let job =
            try JSONParser().parse(
                Array(
                    try Sub.run(
                        TestPaths.executable("rch-xcode"),
                        [
                            "run", root, "--worker", "w", "--inventory", f.inventory, "--store", f.hostStore,
                            "--no-fetch", "--json", "--", "test", "-scheme", "App",
                            "-destination", "platform=iOS Simulator,name=iPhone 16",
                        ]
                    ).stdout.utf8))["steps"]?.arrayValue?.first?["job_id"]?.stringValue ?? ""
        if t == .pinMismatch {
            let out = f.dir.sub("fetched")
            let r = try Sub.run(
                TestPaths.executable("rch-xcode"),
                ["fetch", job, "--into", out, "--worker", "w", "--inventory", f.inventory, "--store", f.hostStore])
            #expect(r.status == 93, "\(r.stdout) \(r.stderr)")
            #expect(!FileManager.default.fileExists(atPath: out))
        }
    }

    @Test(
        "a cache hit carries a fresh attestation of the serving worker: producer's backend, monotonic times, verified and recorded"
    )
    func hitAttestation() throws {
        let f = try LaneFixture(ssh: true)
        let root = try f.tree()
        let first = try driver(f).run(root: root, argv: iPhone)
        let caps = try f.client().negotiate()["capabilities"]!
        try f.pinInventory(
            "attestation_pubkey_fingerprint = \"\(caps["attestation_key"]!["fingerprint"]!.stringValue!)\"")
        let hit = try driver(f).run(root: root, argv: iPhone)
        #expect(hit.cached && hit.cachedFromJobID == first.jobID)
        let a = hit.artifacts!
        let att = try JSONParser().parse(try DurableFile.read(a + "/attestation.json"))
        #expect(
            att["backend"]?["version"]?.stringValue == "rch-recording-executor/1"
                && att["backend"]?["executor_class"]?.stringValue == "recording")
        #expect(att["worker"]?["fingerprint"] == caps["attestation_key"]?["fingerprint"])
        #expect(att["cached_from_job_id"]?.stringValue == first.jobID && att["job_id"]?.stringValue == hit.jobID)
        let state = try JSONParser().parse(try DurableFile.read(a + "/job_state.json"))
        #expect((state["updated_at"]?.stringValue ?? "") >= (state["created_at"]?.stringValue ?? "~"))
        let ver = try JSONParser().parse(try DurableFile.read(a + "/attestation_verification.json"))
        #expect(
            ver["verification_result"]?.stringValue == "verified"
                && ver["pinned_fingerprint"] == caps["attestation_key"]?["fingerprint"])
        for (file, schema) in [
            ("attestation.json", "attestation"), ("attestation_verification.json", "attestation_verification"),
        ] {
            let v = try Sub.validate(a + "/" + file, schema: schema)
            #expect(v.status == 0, "\(file): \(v.output)")
        }
        #expect(ArtifactManifest.verify(a).isEmpty)
        #expect(try Sub.run(TestPaths.executable("rch-xcode"), ["verify-artifacts", a]).status == 0)
    }
}
