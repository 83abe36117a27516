import RCHCore

/// Strict parsers for the output of Apple's tools, exactly as they print it:
///
/// | command | stdout |
/// | --- | --- |
/// | `xcode-select -p` | one absolute path, `\n` |
/// | `xcodebuild -version` | `Xcode 16.2\nBuild version 16C5032a\n` |
/// | `sw_vers -productVersion` | `15.2\n` (or `15.2.1`) |
/// | `sw_vers -buildVersion` | `24C101\n` |
/// | `uname -m` | `arm64\n` or `x86_64\n` |
/// | `xcrun simctl list -j runtimes devices devicetypes` | a JSON object with `runtimes`, `devices`, `devicetypes` |
///
/// Anything else (extra lines, a missing member, a wrong type, an unknown architecture) is refused with
/// an error naming the command and what was wrong — a wrong identity must never be guessed. Members that
/// Apple adds over time (e.g. `lastBootedAt`) are ignored; the members we read must be present and typed.
public enum AppleToolOutput {
    public static func developerDir(_ out: String) throws -> String {
        let line = try singleLine(out, command: "xcode-select -p")
        guard line.hasPrefix("/"), !line.hasSuffix("/") || line == "/" else {
            throw ToolOutputError(command: "xcode-select -p", "expected an absolute path, got '\(line.prefix(120))'")
        }
        return line
    }

    public static func xcodebuildVersion(_ out: String) throws -> (version: String, build: String) {
        let cmd = "xcodebuild -version"
        let lines = try exactLines(out, count: 2, command: cmd)
        guard lines[0].hasPrefix("Xcode "), isVersion(String(lines[0].dropFirst(6)), parts: 1...3) else {
            throw ToolOutputError(command: cmd, "first line must be 'Xcode <version>', got '\(lines[0].prefix(120))'")
        }
        guard lines[1].hasPrefix("Build version "), isBuild(String(lines[1].dropFirst(14))) else {
            throw ToolOutputError(
                command: cmd, "second line must be 'Build version <build>', got '\(lines[1].prefix(120))'")
        }
        return (String(lines[0].dropFirst(6)), String(lines[1].dropFirst(14)))
    }

    public static func productVersion(_ out: String) throws -> String {
        let v = try singleLine(out, command: "sw_vers -productVersion")
        guard isVersion(v, parts: 2...3) else {
            throw ToolOutputError(
                command: "sw_vers -productVersion", "expected a version such as 15.2, got '\(v.prefix(60))'")
        }
        return v
    }

    public static func buildVersion(_ out: String) throws -> String {
        let v = try singleLine(out, command: "sw_vers -buildVersion")
        guard isBuild(v) else {
            throw ToolOutputError(
                command: "sw_vers -buildVersion", "expected a build such as 24C101, got '\(v.prefix(60))'")
        }
        return v
    }

    public static func machine(_ out: String) throws -> String {
        let v = try singleLine(out, command: "uname -m")
        guard v == "arm64" || v == "x86_64" else {
            throw ToolOutputError(command: "uname -m", "expected arm64 or x86_64, got '\(v.prefix(60))'")
        }
        return v
    }

    /// `xcrun simctl list -j runtimes devices devicetypes`: available runtimes, their available devices,
    /// the device types, and the identifiers of unavailable runtimes.
    public static func simulators(_ bytes: [UInt8]) throws -> (
        runtimes: [ToolchainIdentity.Runtime], devices: [ToolchainIdentity.Device],
        deviceTypes: [ToolchainIdentity.DeviceType], unavailable: [String], udids: [ToolchainIdentity.DeviceUDID]
    ) {
        let cmd = "xcrun simctl list -j runtimes devices devicetypes"
        func bad(_ m: String) -> ToolOutputError { ToolOutputError(command: cmd, m) }
        let root: JSONValue
        do { root = try JSONParser().parse(bytes) } catch { throw bad("not valid JSON: \(error)") }
        guard let runtimeList = root["runtimes"]?.arrayValue else { throw bad("'runtimes' must be an array") }
        guard let deviceMap = root["devices"]?.objectValue else { throw bad("'devices' must be an object") }
        guard let typeList = root["devicetypes"]?.arrayValue else { throw bad("'devicetypes' must be an array") }

        var types: [ToolchainIdentity.DeviceType] = []
        for (i, t) in typeList.enumerated() {
            guard let id = t["identifier"]?.stringValue, let name = t["name"]?.stringValue else {
                throw bad("devicetypes[\(i)] needs string 'identifier' and 'name'")
            }
            types.append(.init(identifier: id, name: name))
        }
        var runtimes: [ToolchainIdentity.Runtime] = []
        var unavailable: [String] = []
        for (i, r) in runtimeList.enumerated() {
            guard let id = r["identifier"]?.stringValue, let version = r["version"]?.stringValue,
                let build = r["buildversion"]?.stringValue, let name = r["name"]?.stringValue,
                let available = r["isAvailable"]?.boolValue
            else {
                throw bad("runtimes[\(i)] needs 'identifier', 'version', 'buildversion', 'name' and 'isAvailable'")
            }
            guard isVersion(version, parts: 1...3) else {
                throw bad("runtimes[\(i)].version '\(version.prefix(40))' is not a version")
            }
            let platformName =
                try r["platform"].map { p -> String in
                    guard let s = p.stringValue else { throw bad("runtimes[\(i)].platform must be a string") }
                    return s
                } ?? platformFromIdentifier(id)
            guard let platformName, let platform = simulatorPlatform(platformName) else {
                throw bad("runtimes[\(i)] '\(id.prefix(80))' is of an unknown platform")
            }
            if available {
                runtimes.append(.init(identifier: id, platform: platform, version: version, build: build, name: name))
            } else {
                unavailable.append(id)
            }
        }
        var devices: [ToolchainIdentity.Device] = []
        var udids: [ToolchainIdentity.DeviceUDID] = []
        for (runtimeID, list) in deviceMap.members {
            guard let list = list.arrayValue else { throw bad("devices['\(runtimeID.prefix(80))'] must be an array") }
            let runtime = runtimes.first { $0.identifier == runtimeID }
            for (i, d) in list.enumerated() {
                guard let name = d["name"]?.stringValue, let type = d["deviceTypeIdentifier"]?.stringValue,
                    let available = d["isAvailable"]?.boolValue, let udid = d["udid"]?.stringValue
                else {
                    throw bad(
                        "devices['\(runtimeID.prefix(80))'][\(i)] needs 'name', 'udid', 'deviceTypeIdentifier' and 'isAvailable'"
                    )
                }
                guard ToolchainIdentity.DeviceUDID.isUDID(udid) else {
                    throw bad("devices['\(runtimeID.prefix(80))'][\(i)].udid '\(udid.prefix(40))' is not a UDID")
                }
                // The worker's own ephemeral simulators come and go with jobs: not part of the identity.
                guard available, let runtime, !name.hasPrefix("rch-ephemeral-") else { continue }
                let device = ToolchainIdentity.Device(
                    platform: runtime.platform, name: name, osVersion: runtime.version, runtime: runtimeID,
                    deviceType: type)
                devices.append(device)
                udids.append(.init(udid: udid, device: device))
            }
        }
        return (runtimes, devices, types, unavailable, udids.sorted { $0.udid < $1.udid })
    }

    /// `iOS` → `iOS Simulator` (also tvOS, watchOS, visionOS/xrOS).
    static func simulatorPlatform(_ p: String) -> String? {
        switch p {
        case "iOS": "iOS Simulator"
        case "tvOS": "tvOS Simulator"
        case "watchOS": "watchOS Simulator"
        case "visionOS", "xrOS": "visionOS Simulator"
        default: nil
        }
    }

    /// Older simctl omits `platform`: `com.apple.CoreSimulator.SimRuntime.iOS-18-2` → `iOS`.
    static func platformFromIdentifier(_ id: String) -> String? {
        let prefix = "com.apple.CoreSimulator.SimRuntime."
        guard id.hasPrefix(prefix) else { return nil }
        return id.dropFirst(prefix.count).split(separator: "-").first.map(String.init)
    }

    static func isVersion(_ s: String, parts: ClosedRange<Int>) -> Bool {
        let p = s.split(separator: ".", omittingEmptySubsequences: false)
        return parts.contains(p.count) && p.allSatisfy { !$0.isEmpty && $0.count <= 4 && $0.allSatisfy(\.isASCIIDigit) }
    }

    /// Apple build numbers: digits, one capital letter, digits, an optional lowercase letter (`16C5032a`).
    static func isBuild(_ s: String) -> Bool {
        let b = Array(s.utf8)
        var i = 0
        while i < b.count, b[i] >= 48, b[i] <= 57 { i += 1 }
        guard (1...3).contains(i), i < b.count, b[i] >= 65, b[i] <= 90 else { return false }
        i += 1
        let digitsStart = i
        while i < b.count, b[i] >= 48, b[i] <= 57 { i += 1 }
        guard (1...5).contains(i - digitsStart) else { return false }
        if i < b.count, b[i] >= 97, b[i] <= 122 { i += 1 }
        return i == b.count
    }

    static func exactLines(_ out: String, count: Int, command: String) throws -> [String] {
        guard out.hasSuffix("\n") else { throw ToolOutputError(command: command, "output does not end with a newline") }
        let lines = out.dropLast().split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        guard lines.count == count else {
            throw ToolOutputError(command: command, "expected \(count) line(s), got \(lines.count)")
        }
        for l in lines where l.isEmpty || l.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7f }) {
            throw ToolOutputError(command: command, "empty line or control character in the output")
        }
        return lines
    }

    static func singleLine(_ out: String, command: String) throws -> String {
        try exactLines(out, count: 1, command: command)[0]
    }
}

extension Character {
    fileprivate var isASCIIDigit: Bool { isASCII && isNumber }
}

/// A tool printed something our parser refuses.
public struct ToolOutputError: Error, CustomStringConvertible, Sendable, Equatable {
    public var command: String
    public var problem: String
    public init(command: String, _ problem: String) {
        self.command = command
        self.problem = problem
    }
    public var description: String { "`\(command)` printed something unexpected: \(problem)" }
}
