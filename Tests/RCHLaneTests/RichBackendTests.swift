import Foundation
import RCHCore
import RCHHost
import RCHJob
import RCHRun
import RCHTestSupport
import Testing

/// The xcodebuild backend's rich profile, with Apple's tools faked on the worker's PATH (`xcodebuild`,
/// `xcrun xcresulttool` printing Apple's formats) and everything else real (sshd, stores, runner).
@Suite("Rich artifacts from the xcodebuild backend")
struct RichBackendTests {
    static func driver(_ f: LaneFixture) throws -> RunDriver {
        var d = try TrustEndToEndTests().driver(f)
        d.profile = .rich
        return d
    }

    @Test("a rich test job yields every rich file, they validate, and a later rich request is a cache hit")
    func richTestJob() throws {
        let f = try LaneFixture(config: TrustEndToEndTests.xcodebuildConfig, ssh: true, fakeTools: true)
        let root = try f.tree()
        let r = try Self.driver(f).run(root: root, argv: TrustEndToEndTests.iPhone182Test)
        #expect(r.exitCode == 0 && !r.cached, "\(r.summary.canonicalString)")
        let dir = r.artifacts!
        for file in ["events.jsonl", "test_summary.json", "junit.xml", "build_summary.json", "metrics.json"] {
            #expect(access(dir + "/" + file, F_OK) == 0, "\(file) missing")
        }
        #expect(r.summary["artifact_profile"]?.stringValue == "rich")
        for (file, schema) in [("test_summary.json", "test_summary"), ("build_summary.json", "build_summary")] {
            let v = try Sub.validate(dir + "/" + file, schema: schema)
            #expect(v.status == 0, "\(file): \(v.output)")
        }
        let t = try JSONParser().parse(try DurableFile.read(dir + "/test_summary.json"))
        #expect(t["counts"]?["failed"]?.intValue == 2 && t["source"]?.stringValue == "xcresulttool test-results")
        // xcodebuild ran with the worker's caches (DerivedData and SwiftPM, keyed by the toolchain).
        let argv = try String(contentsOfFile: f.fakes!.callsLog, encoding: .utf8)
        #expect(
            argv.contains(
                "-derivedDataPath \(f.workerStore)/caches/corpus-app/derived_data/shared/xcode_16C5032a__macos_15__arm64"
            ), "\(argv)")
        #expect(
            argv.contains(
                "-clonedSourcePackagesDirPath \(f.workerStore)/caches/corpus-app/spm/xcode_16C5032a__macos_15__arm64"))
        let calls = f.fakes!.invocations.filter { $0.hasPrefix("xcrun xcresulttool") }
        #expect(calls.count == 2 && calls[0].contains("get test-results summary --path"), "\(calls)")
        let events = try String(contentsOfFile: dir + "/events.jsonl", encoding: .utf8)
        #expect(events.contains(#""kind":"derived""#))
        let hit = try Self.driver(f).run(root: root, argv: TrustEndToEndTests.iPhone182Test)
        #expect(hit.cached && hit.summary["artifact_profile"]?.stringValue == "rich")
    }

    @Test("an Xcode before 16 (no test-results subcommand): the legacy format is read")
    func legacyXcode() throws {
        let f = try LaneFixture(config: TrustEndToEndTests.xcodebuildConfig, ssh: true, fakeTools: true)
        f.fakes!.xcresultSummary = nil
        f.fakes!.xcresultTests = nil
        try f.fakes!.write()
        let r = try Self.driver(f).run(root: try f.tree(), argv: TrustEndToEndTests.iPhone182Test)
        let t = try JSONParser().parse(try DurableFile.read(r.artifacts! + "/test_summary.json"))
        #expect(t["source"]?.stringValue == "xcresulttool legacy" && t["counts"]?["total"]?.intValue == 3)
    }

    @Test("output xcresulttool does not print as we expect degrades to minimal, with the reason, never a crash")
    func degraded() throws {
        let f = try LaneFixture(config: TrustEndToEndTests.xcodebuildConfig, ssh: true, fakeTools: true)
        f.fakes!.xcresultSummary = #"{"title":"T","result":"Passed","totalTestCount":"many"}"#
        try f.fakes!.write()
        let r = try Self.driver(f).run(root: try f.tree(), argv: TrustEndToEndTests.iPhone182Test)
        #expect(r.exitCode == 0, "the job itself succeeded: \(r.summary.canonicalString)")
        #expect(r.summary["artifact_profile"]?.stringValue == "minimal")
        #expect(access(r.artifacts! + "/test_summary.json", F_OK) != 0)
        let events = try String(contentsOfFile: r.artifacts! + "/events.jsonl", encoding: .utf8)
        #expect(
            events.contains(#""kind":"degraded""#) && events.contains("totalTestCount must be a count"), "\(events)")
    }
}

/// `provisioning = "ephemeral"`: a simulator per job, created, used by UDID, always deleted.
@Suite("Ephemeral simulators on the xcodebuild backend")
struct EphemeralSimulatorTests {
    static func driver(_ f: LaneFixture) throws -> RunDriver {
        var d = try TrustEndToEndTests().driver(f)
        d.configFlags = ["destination": .obj(["provisioning": .string("ephemeral")])]
        return d
    }

    static func devices(_ f: LaneFixture) -> [String] {
        ((try? String(contentsOfFile: f.fakes!.directory + "/ephemeral.list", encoding: .utf8)) ?? "")
            .split(separator: "\n").map(String.init)
    }

    @Test("created for the job, used by UDID (never in the key), recorded in destination.json, deleted after")
    func lifecycle() throws {
        let f = try LaneFixture(config: TrustEndToEndTests.xcodebuildConfig, ssh: true, fakeTools: true)
        // A leftover of a job that is not running here any more: swept when the next job starts.
        try "EEEEEEEE-0000-4000-8000-999999999999 rch-ephemeral-job_dead000000\n".write(
            toFile: f.fakes!.directory + "/ephemeral.list", atomically: true, encoding: .utf8)
        let r = try Self.driver(f).run(root: try f.tree(), argv: TrustEndToEndTests.iPhone182Test)
        #expect(r.exitCode == 0, "\(r.summary.canonicalString)")
        let dest = try JSONParser().parse(try DurableFile.read(r.artifacts! + "/destination.json"))
        let udid = dest["udid"]?.stringValue ?? ""
        #expect(
            dest["provisioning"]?.stringValue == "ephemeral" && udid.hasPrefix("EEEEEEEE-"), "\(dest.canonicalString)")
        let v = try Sub.validate(r.artifacts! + "/destination.json", schema: "destination")
        #expect(v.status == 0, "\(v.output)")
        let argv = try String(contentsOfFile: f.fakes!.callsLog, encoding: .utf8)
        #expect(argv.contains("-destination id=\(udid)"), "\(argv)")
        let inputs = try String(contentsOfFile: r.artifacts! + "/job_key_inputs.json", encoding: .utf8)
        #expect(!inputs.contains(udid) && inputs.contains("name=iPhone 16,OS=18.2"))
        #expect(Self.devices(f).isEmpty, "left: \(Self.devices(f))")  // its own and the leftover
        #expect(r.summary["ephemeral_cleanup_failed"]?.boolValue == false)
        let calls = f.fakes!.invocations.filter { $0.hasPrefix("xcrun simctl") }
        #expect(
            calls.contains {
                $0.hasPrefix(
                    "xcrun simctl create rch-ephemeral-\(r.jobID) com.apple.CoreSimulator.SimDeviceType.iPhone-16 com.apple.CoreSimulator.SimRuntime.iOS-18-2"
                )
            }, "\(calls)")
        #expect(calls.contains("xcrun simctl delete EEEEEEEE-0000-4000-8000-999999999999"))
    }

    @Test("a cancelled job's simulator is deleted too; a failed delete is reported")
    func cancelAndCleanupFailure() throws {
        let f = try LaneFixture(config: TrustEndToEndTests.xcodebuildConfig, ssh: true, fakeTools: true)
        try "30".write(toFile: f.fakes!.directory + "/xcodebuild-sleep", atomically: true, encoding: .utf8)
        var d = try Self.driver(f)
        let started = Date()
        d.cancelRequested = { Date().timeIntervalSince(started) > 3 }
        let r = try d.run(root: try f.tree(), argv: TrustEndToEndTests.iPhone182Test)
        #expect(r.exitCode == 80, "\(r.summary.canonicalString)")
        #expect(Self.devices(f).isEmpty, "left: \(Self.devices(f))")
        unlink(f.fakes!.directory + "/xcodebuild-sleep")
        FileManager.default.createFile(atPath: f.fakes!.directory + "/simctl-delete-fails", contents: nil)
        let failed = try Self.driver(f).run(root: try f.tree("again"), argv: TrustEndToEndTests.iPhone182Test)
        #expect(failed.exitCode == 0 && failed.summary["ephemeral_cleanup_failed"]?.boolValue == true)
        #expect(Self.devices(f).count == 1)
    }
}
