import Foundation
import RCHCore
import RCHHost
import RCHJob
import RCHTestSupport
import Testing

/// `-destination generic/platform=…` and `id=<UDID>`: resolved on the host against a worker whose
/// identity is detected from fakes of Apple's tools (two iPhone 16 simulators, on iOS 18.2 and 18.4).
@Suite struct DestinationTests {
    static let sha = SHA256Digest.of(Array("source".utf8))
    static let udid182 = "5B6C1F9E-2C1D-4B8A-9B7E-0A1B2C3D4E5F"
    static let udid184 = "11111111-2222-4333-8444-555555555555"

    static func capabilities() throws -> (LaneFixture, JSONValue) {
        let f = try LaneFixture(config: TrustEndToEndTests.xcodebuildConfig, ssh: true, fakeTools: true)
        return (f, try f.client().negotiate(forceProbe: true)["capabilities"]!)
    }

    static func inputs(_ destination: String, action: String = "build", _ caps: JSONValue) throws -> JobKeyInputs {
        try JobInputsBuilder.build(
            argv: [action, "-scheme", "App", "-destination", destination], sourceSHA256: sha, capabilities: caps)
    }

    @Test func genericDestinationsBuildForAnyDevice() throws {
        let (_, caps) = try Self.capabilities()
        for platform in ["iOS", "iOS Simulator", "macOS", "tvOS", "watchOS", "visionOS"] {
            let i = try Self.inputs("generic/platform=\(platform)", caps)
            #expect(i.destination.platform == platform && i.destination.name == "generic")
            #expect(i.destination.osVersion == "any" && i.destination.simRuntimeIdentifier == nil)
            #expect(XcodebuildArgv.destination(of: i.sanitizedArgv) == "generic/platform=\(platform)")
            #expect(try JobKeyInputs(json: i.json) == i)  // what the host builds, the worker accepts
        }
        // A simulator runtime appearing or going does not change a generic key; the toolchain does.
        var fewer = caps
        fewer = .object(fewer.objectValue!.setting("devices", .array([])))
        #expect(
            try Self.inputs("generic/platform=iOS", fewer).jobKey == Self.inputs("generic/platform=iOS", caps).jobKey)
    }

    @Test(arguments: [
        ("test", "generic/platform=iOS", "can only build"),
        ("build", "generic/platform=iOS,name=iPhone 16", "exactly generic/platform"),
        ("build", "generic/platform=Linux", "one of"),
    ])
    func genericRefusals(action: String, destination: String, message: String) throws {
        let (_, caps) = try Self.capabilities()
        #expect {
            _ = try Self.inputs(destination, action: action, caps)
        } throws: { e in
            "\(e)".contains(message) && (e as? LaneError)?.exitCode == 10
        }
    }

    @Test(arguments: [
        // os_version any needs name generic, existing provisioning, a generic -destination, a build.
        (["name": "iPhone 16"], "name 'generic'"),
        (["provisioning": "ephemeral"], "provisioning 'existing'"),
        (["sim_runtime_identifier": "com.apple.CoreSimulator.SimRuntime.iOS-18-2"], "no simulator identity"),
    ])
    func genericRecordsOurWriterWouldNotProduceAreRefused(change: [String: String], message: String) throws {
        let (_, caps) = try Self.capabilities()
        var json = try Self.inputs("generic/platform=iOS Simulator", caps).json.objectValue!
        var d = json["destination"]!.objectValue!
        for (k, v) in change { d[k] = .string(v) }
        json["destination"] = .object(d)
        #expect(throws: JobKeyError.self) { try JobKeyInputs(json: .object(json)) }
        #expect { try JobKeyInputs(json: .object(json)) } throws: { "\($0)".contains(message) }
    }

    @Test func udidResolvesThroughTheWorkersDevicesAndStaysOutOfTheKey() throws {
        let (f, caps) = try Self.capabilities()
        let udids = caps["device_udids"]?.arrayValue ?? []
        #expect(udids.count == 3 && udids.allSatisfy { $0["udid"]?.stringValue != nil }, "\(caps.canonicalString)")
        // The identity cache (second probe, within its TTL) keeps them.
        #expect(try f.client().negotiate(forceProbe: true)["capabilities"]?["device_udids"] == caps["device_udids"])
        #expect(!caps["devices"]!.canonicalString.contains(Self.udid182))  // not in the identity digest
        let byID = try Self.inputs("id=\(Self.udid182)", caps)
        let byName = try Self.inputs("platform=iOS Simulator,name=iPhone 16,OS=18.2", caps)
        #expect(byID == byName && !byID.json.canonicalString.contains(Self.udid182))
        // The UDID picks the runtime: the same name on 18.4 is another key.
        let other = try Self.inputs("platform=iOS Simulator,id=\(Self.udid184.lowercased())", caps)
        #expect(other.destination.osVersion == "18.4" && other.jobKey != byID.jobKey)
    }

    @Test func unknownOrMismatchedUDIDsSayWhatTheWorkerHas() throws {
        let (_, caps) = try Self.capabilities()
        #expect {
            _ = try Self.inputs("id=00000000-0000-4000-8000-000000000000", caps)
        } throws: { e in
            "\(e)".contains("no simulator with UDID") && "\(e)".contains(Self.udid182) && "\(e)".contains("iPhone 16")
        }
        #expect {
            _ = try Self.inputs("platform=tvOS Simulator,id=\(Self.udid182)", caps)
        } throws: { "\($0)".contains("belongs to platform iOS Simulator, not tvOS Simulator") }
        #expect {
            _ = try Self.inputs("id=\(Self.udid182),name=iPhone 16", caps)
        } throws: { "\($0)".contains("at most platform") }
    }
}

extension JSONObject {
    fileprivate func setting(_ k: String, _ v: JSONValue) -> JSONObject {
        var o = self
        o[k] = v
        return o
    }
}
