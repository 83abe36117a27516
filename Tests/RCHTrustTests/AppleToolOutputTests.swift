import RCHCore
import RCHIdentity
import RCHTestSupport
import Testing

/// The strict parsers of Apple's tool output: real formats accepted, anything else refused with the
/// command named.
@Suite("Apple tool output: real formats parsed, malformed output refused")
struct AppleToolOutputTests {
    @Test("real outputs")
    func realOutputs() throws {
        #expect(
            try AppleToolOutput.developerDir("/Applications/Xcode.app/Contents/Developer\n")
                == "/Applications/Xcode.app/Contents/Developer")
        let x = try AppleToolOutput.xcodebuildVersion("Xcode 16.2\nBuild version 16C5032a\n")
        #expect(x.version == "16.2" && x.build == "16C5032a")
        #expect(try AppleToolOutput.xcodebuildVersion("Xcode 26.0.1\nBuild version 17A400\n").build == "17A400")
        #expect(try AppleToolOutput.productVersion("15.2\n") == "15.2")
        #expect(try AppleToolOutput.productVersion("14.7.1\n") == "14.7.1")
        #expect(try AppleToolOutput.buildVersion("24C101\n") == "24C101")
        #expect(try AppleToolOutput.machine("x86_64\n") == "x86_64")
    }

    @Test("simctl list: available runtimes and their available devices only; unavailable runtimes apart")
    func simctl() throws {
        let s = try AppleToolOutput.simulators(Array(FakeAppleTools.simctlSample.utf8))
        #expect(
            s.runtimes.map(\.identifier) == [
                "com.apple.CoreSimulator.SimRuntime.iOS-18-2", "com.apple.CoreSimulator.SimRuntime.iOS-18-4",
            ])
        #expect(
            s.runtimes[0].platform == "iOS Simulator" && s.runtimes[0].build == "22C150"
                && s.runtimes[0].version == "18.2")
        #expect(s.unavailable == ["com.apple.CoreSimulator.SimRuntime.tvOS-18-2"])
        #expect(s.devices.count == 3)
        #expect(!s.devices.contains { $0.name.hasPrefix("Apple TV") || $0.name == "iPhone 15" })
        #expect(s.deviceTypes.map(\.identifier).contains("com.apple.CoreSimulator.SimDeviceType.iPhone-16"))
        // Older simctl without `platform`: derived from the identifier.
        let old =
            #"{"runtimes":[{"identifier":"com.apple.CoreSimulator.SimRuntime.watchOS-11-2","version":"11.2","buildversion":"22S99","name":"watchOS 11.2","isAvailable":true}],"devices":{},"devicetypes":[]}"#
        #expect(try AppleToolOutput.simulators(Array(old.utf8)).runtimes.first?.platform == "watchOS Simulator")
    }

    struct Malformed: Sendable, CustomTestStringConvertible {
        var tool: String
        var output: String
        var testDescription: String { "\(tool): \(output.debugDescription.prefix(50))" }
    }

    static let malformed: [Malformed] = [
        .init(tool: "xcode-select", output: ""),
        .init(tool: "xcode-select", output: "relative/Developer\n"),
        .init(tool: "xcode-select", output: "/Applications/Xcode.app/Contents/Developer"),
        .init(tool: "xcode-select", output: "/a\n/b\n"),
        .init(tool: "xcodebuild", output: "Xcode 16.2\n"),
        .init(tool: "xcodebuild", output: "Xcode 16.2\nBuild version 16C5032a\nextra\n"),
        .init(tool: "xcodebuild", output: "Xcode sixteen\nBuild version 16C5032a\n"),
        .init(tool: "xcodebuild", output: "Xcode 16.2\nBuild version 16c5032a\n"),
        .init(tool: "xcodebuild", output: "Xcode 16.2\nBuild: 16C5032a\n"),
        .init(tool: "xcodebuild", output: "xcode-select: error: tool 'xcodebuild' requires Xcode\n"),
        .init(tool: "sw_vers -productVersion", output: "15\n"),
        .init(tool: "sw_vers -productVersion", output: "ProductVersion: 15.2\n"),
        .init(tool: "sw_vers -productVersion", output: "15.2 \n"),
        .init(tool: "sw_vers -buildVersion", output: "24c101\n"),
        .init(tool: "sw_vers -buildVersion", output: "\n"),
        .init(tool: "uname", output: "aarch64\n"),
        .init(tool: "uname", output: "arm64\r\n"),
        .init(tool: "simctl", output: "not json"),
        .init(tool: "simctl", output: #"{"runtimes":[],"devices":[]}"#),
        .init(
            tool: "simctl",
            output:
                #"{"runtimes":[{"identifier":"x","version":"18.2","name":"n","isAvailable":true}],"devices":{},"devicetypes":[]}"#
        ),
        .init(
            tool: "simctl",
            output:
                #"{"runtimes":[{"identifier":"com.apple.CoreSimulator.SimRuntime.iOS-18-2","version":"18.2","buildversion":"22C150","name":"iOS 18.2","isAvailable":"yes","platform":"iOS"}],"devices":{},"devicetypes":[]}"#
        ),
        .init(
            tool: "simctl",
            output:
                #"{"runtimes":[{"identifier":"com.apple.CoreSimulator.SimRuntime.Android-1","version":"1.0","buildversion":"1A1","name":"A","isAvailable":true}],"devices":{},"devicetypes":[]}"#
        ),
        .init(tool: "simctl", output: #"{"runtimes":[],"devices":{"r":[{"name":"iPhone"}]},"devicetypes":[]}"#),
    ]

    @Test("malformed output is refused, naming the command", arguments: malformed)
    func refused(_ c: Malformed) throws {
        do {
            switch c.tool {
            case "xcode-select": _ = try AppleToolOutput.developerDir(c.output)
            case "xcodebuild": _ = try AppleToolOutput.xcodebuildVersion(c.output)
            case "sw_vers -productVersion": _ = try AppleToolOutput.productVersion(c.output)
            case "sw_vers -buildVersion": _ = try AppleToolOutput.buildVersion(c.output)
            case "uname": _ = try AppleToolOutput.machine(c.output)
            default: _ = try AppleToolOutput.simulators(Array(c.output.utf8))
            }
            Issue.record("accepted \(c.output.debugDescription)")
        } catch let e as ToolOutputError {
            #expect(e.description.contains(c.tool == "simctl" ? "xcrun simctl list" : c.tool), "\(e)")
        }
    }
}
