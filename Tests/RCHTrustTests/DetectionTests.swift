import Foundation
import RCHCore
import RCHIdentity
import RCHTestSupport
import Testing

/// Detection through real processes: fakes of Apple's tools on PATH.
@Suite("Toolchain detection with Apple's tools faked on PATH")
struct DetectionTests {
    func detector(_ fakes: FakeAppleTools, pinned: String? = nil, env extra: [String: String] = [:])
        -> ToolchainDetector
    {
        var env = ["PATH": fakes.path, "HOME": fakes.directory]
        env.merge(extra) { $1 }
        return ToolchainDetector(environment: env, pinnedDeveloperDir: pinned, timeoutSeconds: 10)
    }

    @Test("the active Xcode, macOS, arch and simulators are reported; a pinned second Xcode is read from itself")
    func detects() throws {
        let d = TempDir()
        let fakes = try FakeAppleTools(directory: d.sub("fakes"))
        let id = try detector(fakes).detect()
        #expect(id.source == .detected)
        #expect(
            id.xcodeVersion == "16.2" && id.xcodeBuild == "16C5032a"
                && id.developerDir == "/Applications/Xcode.app/Contents/Developer")
        #expect(id.macosVersion == "15.2" && id.macosBuild == "24C101" && id.arch == "arm64")
        #expect(id.runtimes.count == 2 && id.unavailableRuntimes == ["com.apple.CoreSimulator.SimRuntime.tvOS-18-2"])
        #expect(id.devices.contains { $0.name == "iPhone 16" && $0.runtime.hasSuffix("iOS-18-4") })

        let second = try detector(fakes, pinned: "/Applications/Xcode-16.3.app/Contents/Developer").detect()
        #expect(second.xcodeVersion == "16.3" && second.xcodeBuild == "16E140")
        #expect(second.developerDir == "/Applications/Xcode-16.3.app/Contents/Developer")
        // DEVELOPER_DIR in the environment selects too (as for xcodebuild itself).
        let env = try detector(fakes, env: ["DEVELOPER_DIR": "/Applications/Xcode-16.3.app/Contents/Developer"])
            .detect()
        #expect(env.xcodeBuild == "16E140")
        #expect(id.identitySHA256 != second.identitySHA256)
        #expect(try ToolchainIdentity(json: id.json) == id)
    }

    struct Failure: Sendable, CustomTestStringConvertible {
        var tool: String
        var script: String?
        var command: String
        var testDescription: String { "\(tool) → \(command)" }
    }

    static let failures: [Failure] = [
        .init(
            tool: "xcode-select",
            script: "echo 'xcode-select: error: unable to get active developer directory' >&2; exit 2",
            command: "xcode-select -p"),
        .init(tool: "xcodebuild", script: "echo 'Xcode 16.2'", command: "xcodebuild -version"),
        .init(tool: "sw_vers", script: "echo fifteen", command: "sw_vers -productVersion"),
        .init(tool: "uname", script: "echo sparc", command: "uname -m"),
        .init(
            tool: "xcrun", script: "echo '{\"runtimes\": 3}'",
            command: "xcrun simctl list -j runtimes devices devicetypes"),
        .init(tool: "xcrun", script: "sleep 30", command: "xcrun simctl list -j runtimes devices devicetypes"),
        .init(tool: "xcodebuild", script: nil, command: "xcodebuild -version"),
    ]

    @Test("a failing, missing, hanging or malformed tool is an error naming the command", arguments: failures)
    func failing(_ f: Failure) throws {
        let d = TempDir()
        let fakes = try FakeAppleTools(directory: d.sub("fakes"))
        if let script = f.script {
            fakes.overrides[f.tool] = script
            try fakes.write()
        } else {
            unlink(fakes.bin + "/" + f.tool)
        }
        var det = detector(fakes)
        det.timeoutSeconds = 2
        det.environment["PATH"] = fakes.bin  // nothing else to fall back on
        if f.tool == "sw_vers" || f.tool == "uname" || f.tool == "xcrun" {
            det.environment["PATH"] = fakes.bin + ":/bin:/usr/bin"
        }
        do {
            _ = try det.detect()
            Issue.record("detected despite \(f.testDescription)")
        } catch let e as DetectionError {
            #expect(e.command == f.command, "\(e)")
            #expect(e.failureKind == .executor && e.failureSubkind == "TOOLCHAIN_DETECTION")
            #expect(e.description.contains("rch-worker identity"))
        }
    }

    @Test(
        "the identity cache is reused while nothing changed, and re-detects when a tool is replaced or the TTL passes")
    func cache() throws {
        let d = TempDir()
        let fakes = try FakeAppleTools(directory: d.sub("fakes"))
        let cache = IdentityCache(path: d.sub("cache/identity.json"), ttlSeconds: 300, detector: detector(fakes))
        let first = try cache.current()
        // A cached identity is used without running the tools again.
        let ran = fakes.invocations.count
        #expect(ran == 6)
        #expect(try cache.current() == first)
        #expect(fakes.invocations.count == ran)
        // An Xcode update replaces files: the fingerprint changes and the new build is detected.
        fakes.xcodes[0].build = "16C5040b"
        try fakes.write()
        #expect(try cache.current().xcodeBuild == "16C5040b")
        // A simulator runtime removed: detected too (xcrun replaced alongside the runtime list).
        fakes.simctlJSON = fakes.simctlJSON.replacingOccurrences(
            of: "\"isAvailable\" : true,\n      \"name\" : \"iOS 18.4\"",
            with: "\"isAvailable\" : false,\n      \"name\" : \"iOS 18.4\"")
        try fakes.write()
        #expect(try cache.current().runtimes.count == 1)
        // Past the TTL the identity is detected again even if no watched file moved.
        let expired = IdentityCache(path: d.sub("cache/identity.json"), ttlSeconds: 0, detector: detector(fakes))
        let before = fakes.invocations.count
        #expect(try expired.current().runtimes.count == 1)
        #expect(fakes.invocations.count == before + 6)
    }
}
