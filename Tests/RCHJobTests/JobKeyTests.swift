import Foundation
import RCHCore
import RCHTestSupport
import Testing

@testable import RCHJob

enum Samples {
    static let argv = [
        "test", "-destination", "platform=iOS Simulator,name=iPhone 16,OS=18.2", "-only-testing:AppTests/LoginTests",
        "-scheme", "App", "-workspace", "App.xcworkspace", "SWIFT_ACTIVE_COMPILATION_CONDITIONS=CI",
    ]

    static func inputs(_ mutate: (inout [String: Any]) -> Void = { _ in }) -> [UInt8] {
        var d: [String: Any] = [
            "source_sha256": String(repeating: "ab", count: 32),
            "sanitized_argv": argv,
            "toolchain": [
                "xcode_build": "16C5032a", "developer_dir": "/Applications/Xcode.app/Contents/Developer",
                "macos_version": "15.2", "macos_build": "24C101", "arch": "arm64",
            ],
            "destination": [
                "platform": "iOS Simulator", "name": "iPhone 16", "os_version": "18.2", "provisioning": "existing",
                "sim_runtime_identifier": "com.apple.CoreSimulator.SimRuntime.iOS-18-2", "sim_runtime_build": "22C150",
                "device_type_identifier": "com.apple.CoreSimulator.SimDeviceType.iPhone-16",
            ],
        ]
        mutate(&d)
        return Array(try! JSONSerialization.data(withJSONObject: d))
    }

    /// An edit that sets (or, with nil, removes) `key` inside the object field `object`.
    static func nested(_ object: String, _ key: String, _ value: String?) -> @Sendable (inout [String: Any]) -> Void {
        { d in
            var x = d[object] as! [String: Any]
            x[key] = value
            d[object] = x
        }
    }

    static var packageRoot: String { TestPaths.packageRoot }

    static func validate(_ file: String, schema: String) throws -> (Int32, String) {
        let r = try TestPaths.validate(file, schema: schema)
        return (r.status, r.output)
    }
}

@Suite("job_key_inputs and job_key")
struct JobKeyTests {
    @Test("a valid document gives the SHA-256 of its canonical bytes, independent of formatting and key order")
    func key() throws {
        let a = try JobKeyInputs.parse(Samples.inputs())
        #expect(a.jobKey == SHA256Digest.of(a.canonicalBytes))
        let object = try JSONSerialization.jsonObject(with: Data(Samples.inputs()))
        let pretty = try JSONSerialization.data(
            withJSONObject: object, options: [.prettyPrinted, .withoutEscapingSlashes])
        #expect(Array(pretty) != a.canonicalBytes)
        #expect(try JobKeyInputs.parse(Array(pretty)).jobKey == a.jobKey)
        // Pinned: a change here invalidates every cached result and needs a deliberate decision.
        // = sha256(rfc8785.dumps(...)) in Python
        #expect(a.jobKey.hex == "80e9063021e30407b1785742ec869bb79a2ea7cbe5884e6af2bb69fcf0654575")
    }

    @Test(
        "refused inputs name the field",
        arguments: [
            (
                "host-only timeouts", { @Sendable (d: inout [String: Any]) in d["timeouts"] = ["overall": 10] },
                "/timeouts", "host-only"
            ),
            (
                "host-only backend", { @Sendable (d: inout [String: Any]) in d["backend"] = "xcodebuild" }, "/backend",
                "host-only"
            ),
            (
                "host-only artifact_profile", { @Sendable (d: inout [String: Any]) in d["artifact_profile"] = "rich" },
                "/artifact_profile", "host-only"
            ),
            (
                "unknown field", { @Sendable (d: inout [String: Any]) in d["colour"] = "blue" }, "/colour",
                "not a known field"
            ),
            (
                "bad digest", { @Sendable (d: inout [String: Any]) in d["source_sha256"] = "ABC" }, "/source_sha256",
                "64 lowercase hex"
            ),
            (
                "OS latest",
                Samples.nested("destination", "os_version", "latest"), "/destination/os_version", "never 'latest'"
            ),
            (
                "missing runtime",
                Samples.nested("destination", "sim_runtime_build", nil), "/destination/sim_runtime_build", "required"
            ),
            (
                "bad provisioning",
                Samples.nested("destination", "provisioning", "magic"), "/destination/provisioning",
                "existing or ephemeral"
            ),
            (
                "bad arch",
                Samples.nested("toolchain", "arch", "ppc"), "/toolchain/arch", "arm64"
            ),
            (
                "missing toolchain field",
                Samples.nested("toolchain", "macos_build", nil), "/toolchain/macos_build", "required"
            ),
            (
                "unsorted argv",
                { @Sendable (d: inout [String: Any]) in
                    d["sanitized_argv"] = [
                        "test", "-scheme", "App", "-destination", "platform=iOS Simulator,name=iPhone 16,OS=18.2",
                    ]
                }, "/sanitized_argv", "canonical order"
            ),
            (
                "output override",
                { @Sendable (d: inout [String: Any]) in d["sanitized_argv"] = ["build", "-derivedDataPath", "/tmp/dd"]
                }, "/sanitized_argv/1", "-derivedDataPath"
            ),
            (
                "output setting",
                { @Sendable (d: inout [String: Any]) in
                    d["sanitized_argv"] = [
                        "build", "-destination", "platform=iOS Simulator,name=iPhone 16,OS=18.2", "SYMROOT=/tmp",
                    ]
                }, "/sanitized_argv/3", "SYMROOT"
            ),
            (
                "two destinations",
                { @Sendable (d: inout [String: Any]) in
                    d["sanitized_argv"] = ["build", "-destination", "id=1", "-destination", "id=2"]
                }, "/sanitized_argv/3", "more than once"
            ),
            (
                "no destination",
                { @Sendable (d: inout [String: Any]) in d["sanitized_argv"] = ["build", "-scheme", "App"] },
                "/sanitized_argv", "exactly one destination"
            ),
            (
                "two actions",
                { @Sendable (d: inout [String: Any]) in d["sanitized_argv"] = ["build", "test", "-destination", "id=1"]
                }, "/sanitized_argv/1", "more than one action"
            ),
            (
                "unknown flag",
                { @Sendable (d: inout [String: Any]) in
                    d["sanitized_argv"] = ["build", "-destination", "id=1", "-frobnicate"]
                }, "/sanitized_argv/3", "not an allowed"
            ),
            (
                "destination mismatch",
                { @Sendable (d: inout [String: Any]) in
                    d["sanitized_argv"] = ["build", "-destination", "platform=iOS Simulator,name=iPhone 15,OS=18.2"]
                }, "/sanitized_argv", "differs"
            ),
            (
                "argv OS=latest",
                { @Sendable (d: inout [String: Any]) in
                    d["sanitized_argv"] = ["build", "-destination", "platform=iOS Simulator,name=iPhone 16,OS=latest"]
                }, "/sanitized_argv", "OS=latest"
            ),
            (
                "sim identity on a device",
                { @Sendable (d: inout [String: Any]) in
                    d["destination"] = [
                        "platform": "macOS", "name": "My Mac", "os_version": "15.2", "provisioning": "existing",
                        "sim_runtime_build": "22C150",
                    ]
                    d["sanitized_argv"] = ["build", "-destination", "platform=macOS"]
                }, "/destination/sim_runtime_build", "only simulator"
            ),
            (
                "non-string argv", { @Sendable (d: inout [String: Any]) in d["sanitized_argv"] = ["build", 3] },
                "/sanitized_argv/1", "string"
            ),
        ] as [(String, @Sendable (inout [String: Any]) -> Void, String, String)])
    func refusals(name: String, mutate: @Sendable (inout [String: Any]) -> Void, path: String, message: String) {
        do {
            _ = try JobKeyInputs.parse(Samples.inputs(mutate))
            Issue.record("\(name): accepted")
        } catch let e as JobKeyError {
            #expect(e.path == path, "\(name): \(e)")
            #expect(e.description.contains(message), "\(name): \(e)")
            #expect(e.failureKind.exitCode == 10)
        } catch {
            Issue.record("\(name): unexpected \(error)")
        }
    }

    @Test("argv canonicalisation: any acceptable order gives one form")
    func argv() throws {
        let shuffled = [
            "SWIFT_ACTIVE_COMPILATION_CONDITIONS=CI", "-workspace", "App.xcworkspace",
            "-only-testing:AppTests/LoginTests", "-scheme", "App",
            "test", "-destination", "platform=iOS Simulator,name=iPhone 16,OS=18.2",
        ]
        #expect(try XcodebuildArgv.canonicalize(shuffled) == Samples.argv)
        let settings = try XcodebuildArgv.canonicalize([
            "build", "-destination", "id=1", "OTHER_SWIFT_FLAGS[sdk=iphonesimulator*]=-DSIM", "A=1",
            "-enableCodeCoverage", "YES", "-retry-tests-on-failure",
        ])
        #expect(
            settings == [
                "build", "-destination", "id=1", "-enableCodeCoverage", "YES", "-retry-tests-on-failure", "A=1",
                "OTHER_SWIFT_FLAGS[sdk=iphonesimulator*]=-DSIM",
            ])
    }

    @Test("job.json embeds job_key_inputs.json byte for byte; both validate against their schemas")
    func jobFiles() throws {
        let dir = NSTemporaryDirectory() + "/rch-job-\(UInt32.random(in: 0...UInt32.max))"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let inputs = try JobKeyInputs.parse(Samples.inputs())
        let spec = try JobSpec(
            runID: Identifier.generate(), jobID: Identifier.generate(), inputs: inputs,
            effectiveConfig: Config.merge([Config.defaults]), artifactProfile: .rich)
        try spec.write(into: dir)
        let job = Array(try Data(contentsOf: URL(fileURLWithPath: dir + "/job.json")))
        let jki = Array(try Data(contentsOf: URL(fileURLWithPath: dir + "/job_key_inputs.json")))
        let jobText = String(decoding: job, as: UTF8.self)
        #expect(jobText.contains("\"job_key_inputs\":" + String(decoding: jki, as: UTF8.self) + ","))
        #expect(SHA256Digest.of(jki) == inputs.jobKey)
        #expect(jobText.contains("\"job_key\":\"\(inputs.jobKey.hex)\""))
        #expect(spec.action == "test")
        for (file, schema) in [("job.json", "job"), ("job_key_inputs.json", "job_key_inputs")] {
            let (status, out) = try Samples.validate(dir + "/" + file, schema: schema)
            #expect(status == 0, "\(file): \(out)")
        }
        #expect(throws: IdentifierError.self) {
            _ = try JobSpec(runID: "../x", jobID: Identifier.generate(), inputs: inputs, effectiveConfig: JSONObject())
        }
    }

    @Test("rch-xcode key prints the key, or exit 10 with the reason")
    func keyCommand() throws {
        let exe = Samples.packageRoot + "/.build/debug/rch-xcode"
        let dir = NSTemporaryDirectory() + "/rch-key-\(UInt32.random(in: 0...UInt32.max))"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try Data(Samples.inputs()).write(to: URL(fileURLWithPath: dir + "/in.json"))
        try Data(Samples.inputs { $0["worker"] = "mini-1" }).write(to: URL(fileURLWithPath: dir + "/bad.json"))
        func run(_ args: [String]) throws -> (Int32, String, String) {
            let p = Process()
            p.executableURL = URL(fileURLWithPath: exe)
            p.arguments = args
            let o = Pipe()
            let e = Pipe()
            p.standardOutput = o
            p.standardError = e
            try p.run()
            let out = String(decoding: o.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            let err = String(decoding: e.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            p.waitUntilExit()
            return (p.terminationStatus, out, err)
        }
        let expected = try JobKeyInputs.parse(Samples.inputs()).jobKey
        let ok = try run(["key", dir + "/in.json"])
        #expect(ok.0 == 0 && ok.1.trimmingCharacters(in: .whitespacesAndNewlines) == expected.hex)
        let bad = try run(["key", dir + "/bad.json"])
        #expect(bad.0 == 10 && bad.2.contains("/worker") && bad.2.contains("host-only"))
        let canon = try run(["canonicalize", dir + "/in.json"])
        #expect(canon.0 == 0 && SHA256Digest.of(Array(canon.1.utf8)) == expected)
        try Data("{\"a\":1,\"a\":2}".utf8).write(to: URL(fileURLWithPath: dir + "/dup.json"))
        #expect(try run(["canonicalize", dir + "/dup.json"]).0 == 65)
    }
}

@Suite("Config merge and effective_config.json")
struct ConfigTests {
    @Test("objects deep-merge, arrays replace, scalars override; last layer wins")
    func merge() {
        let a = JSONObject([
            ("x", .obj(["y": .int(1), "z": .array([.int(1), .int(2)])])), ("s", .string("a")),
            ("o", .obj(["k": .int(1)])),
        ])
        let b = JSONObject([
            ("x", .obj(["z": .array([.int(3)]), "w": .bool(true)])), ("s", .string("b")), ("o", .string("scalar")),
        ])
        let m = Config.merge([Config.Layer(origin: .defaults, value: a), Config.Layer(origin: .repo, value: b)])
        #expect(JSONValue.object(m).canonicalString == #"{"o":"scalar","s":"b","x":{"w":true,"y":1,"z":[3]}}"#)
        #expect(Config.merge(Config.merge(JSONObject(), a), b) == m)
    }

    @Test("TOML layers, precedence, sources with digests and redactions; validates against its schema")
    func layers() throws {
        let root = NSTemporaryDirectory() + "/rch-cfg-\(UInt32.random(in: 0...UInt32.max))"
        defer { try? FileManager.default.removeItem(atPath: root) }
        try FileManager.default.createDirectory(atPath: root + "/repo/.rch", withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: root + "/home/rch", withIntermediateDirectories: true)
        let hostTOML =
            "[cache]\nnamespace = \"host-ns\"\nderived_data = \"per_job\"\n[[workers]]\nname = \"mini\"\npassword = \"hunter2\"\n[ssh]\napi_token = \"t0k\"\n"
        let repoTOML =
            "[cache]\nnamespace = \"repo-ns\"\n[bundle]\nmax_bytes = 1000\nexclude = [\"a\", \"b\"]\nwhen = 2026-01-01T00:00:00Z\n"
        try Data(hostTOML.utf8).write(to: URL(fileURLWithPath: root + "/home/rch/xcode.toml"))
        try Data(repoTOML.utf8).write(to: URL(fileURLWithPath: root + "/repo/.rch/xcode.toml"))
        let layers = try Config.layers(
            repo: root + "/repo", flags: JSONObject([("bundle", .obj(["mode": .string("git_index")]))]),
            environment: ["XDG_CONFIG_HOME": root + "/home"])
        #expect(layers.map(\.origin) == [.defaults, .host, .repo, .cli])
        #expect(layers[1].sha256 == SHA256Digest.of(Array(hostTOML.utf8)))
        let eff = EffectiveConfig(runID: "run_0123456789", jobID: "job_0123456789", jobKey: .empty, layers: layers)
        let (merged, redactions) = eff.config
        #expect(merged["cache"]?["namespace"] == .string("repo-ns"))
        #expect(merged["cache"]?["derived_data"] == .string("per_job"))
        #expect(merged["bundle"]?["mode"] == .string("git_index") && merged["bundle"]?["max_bytes"] == .int(1000))
        #expect(merged["bundle"]?["ignore_file"] == .string(".rchignore"))
        #expect(Set(redactions) == ["/workers/0/password", "/ssh/api_token"])
        let text = eff.json.canonicalString
        #expect(!text.contains("hunter2") && !text.contains("t0k"))
        try Data(eff.json.canonicalBytes).write(to: URL(fileURLWithPath: root + "/effective_config.json"))
        let (status, out) = try Samples.validate(root + "/effective_config.json", schema: "effective_config")
        #expect(status == 0, "\(out)")
    }

    @Test("broken TOML is a clear error naming the file")
    func brokenTOML() throws {
        let root = NSTemporaryDirectory() + "/rch-cfg-\(UInt32.random(in: 0...UInt32.max))"
        defer { try? FileManager.default.removeItem(atPath: root) }
        try FileManager.default.createDirectory(atPath: root + "/.rch", withIntermediateDirectories: true)
        try Data("[cache\nnamespace = ".utf8).write(to: URL(fileURLWithPath: root + "/.rch/xcode.toml"))
        #expect(throws: JobKeyError.self) {
            _ = try Config.layers(repo: root, environment: ["XDG_CONFIG_HOME": root + "/none"])
        }
    }
}
