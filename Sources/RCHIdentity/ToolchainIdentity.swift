import RCHCore

/// What a worker builds with: the active Xcode, macOS, the CPU architecture and the simulator
/// runtimes and devices that are available. This is the identity `job_key_inputs` binds
/// (`toolchain` and `destination`), so it must be *detected* on a real worker, never assumed.
///
/// Invariants:
/// - Only available runtimes and devices are listed (an unavailable runtime cannot run a job); the
///   identifiers of unavailable runtimes are kept apart in `unavailableRuntimes` for operators.
/// - Lists are sorted (runtimes by identifier; devices by runtime, name, device type; device types by
///   identifier) and devices are de-duplicated, so the same machine state gives the same JSON bytes.
/// - Volatile facts (simulator state, UDIDs, last boot) are not part of it: `identitySHA256`, the
///   SHA-256 of the RFC 8785 bytes of ``json``, changes only when the identity does.
public struct ToolchainIdentity: Sendable, Equatable {
    public enum Source: String, Sendable {
        /// Read from Apple's tools on this machine (the `xcodebuild` executor).
        case detected
        /// Taken from `worker.toml [toolchain]` (the recording executor: tests and demos only).
        case declared
    }

    public struct Runtime: Sendable, Equatable {
        public var identifier: String
        /// The destination platform it serves, e.g. `iOS Simulator`.
        public var platform: String
        public var version: String
        public var build: String
        public var name: String

        public init(identifier: String, platform: String, version: String, build: String, name: String) {
            self.identifier = identifier
            self.platform = platform
            self.version = version
            self.build = build
            self.name = name
        }
    }

    public struct Device: Sendable, Equatable {
        public var platform: String
        public var name: String
        public var osVersion: String
        public var runtime: String
        public var deviceType: String

        public init(platform: String, name: String, osVersion: String, runtime: String, deviceType: String) {
            self.platform = platform
            self.name = name
            self.osVersion = osVersion
            self.runtime = runtime
            self.deviceType = deviceType
        }
    }

    /// One simulator by its UDID (volatile: never part of ``json`` or ``identitySHA256``). A host resolves
    /// `-destination id=<UDID>` through these to the device's name and runtime.
    public struct DeviceUDID: Sendable, Equatable {
        public var udid: String
        public var device: Device

        public init(udid: String, device: Device) {
            self.udid = udid
            self.device = device
        }

        public var json: JSONValue {
            var o = device.json.objectValue ?? JSONObject()
            o["udid"] = .string(udid)
            return .object(o)
        }

        /// `8-4-4-4-12` hexadecimal digits (uppercase as simctl prints them; lowercase accepted).
        public static func isUDID(_ s: String) -> Bool {
            let groups = s.split(separator: "-", omittingEmptySubsequences: false)
            return groups.map(\.count) == [8, 4, 4, 4, 12] && groups.allSatisfy { $0.allSatisfy(\.isHexDigit) }
        }
    }

    public struct DeviceType: Sendable, Equatable {
        public var identifier: String
        public var name: String

        public init(identifier: String, name: String) {
            self.identifier = identifier
            self.name = name
        }
    }

    public var source: Source
    public var xcodeVersion: String
    public var xcodeBuild: String
    public var developerDir: String
    public var macosVersion: String
    public var macosBuild: String
    public var arch: String
    public var runtimes: [Runtime]
    public var devices: [Device]
    public var deviceTypes: [DeviceType]
    public var unavailableRuntimes: [String]
    /// The UDIDs of the available devices (sorted by UDID; outside the identity, see ``DeviceUDID``).
    public var udids: [DeviceUDID] = []

    public var udidsJSON: JSONValue { .array(udids.map(\.json)) }

    /// Parses ``udidsJSON`` (the identity cache).
    public static func udids(json v: JSONValue) throws -> [DeviceUDID] {
        guard let list = v.arrayValue else { throw IdentityFormatError("udids must be an array") }
        return try list.map { u in
            var o = try IdentityField.object(u, "udids[]")
            let udid = try IdentityField.string(o, "udid")
            guard DeviceUDID.isUDID(udid) else { throw IdentityFormatError("udids[].udid is not a UDID") }
            o["udid"] = nil
            return DeviceUDID(udid: udid, device: try Device(json: .object(o)))
        }
    }

    public init(
        source: Source, xcodeVersion: String, xcodeBuild: String, developerDir: String, macosVersion: String,
        macosBuild: String, arch: String, runtimes: [Runtime], devices: [Device], deviceTypes: [DeviceType] = [],
        unavailableRuntimes: [String] = []
    ) {
        self.source = source
        self.xcodeVersion = xcodeVersion
        self.xcodeBuild = xcodeBuild
        self.developerDir = developerDir
        self.macosVersion = macosVersion
        self.macosBuild = macosBuild
        self.arch = arch
        self.runtimes = runtimes.sorted { $0.identifier < $1.identifier }
        var seen = Set<String>()
        self.devices = devices.sorted { ($0.runtime, $0.name, $0.deviceType) < ($1.runtime, $1.name, $1.deviceType) }
            .filter { seen.insert($0.runtime + "\u{0}" + $0.name + "\u{0}" + $0.deviceType).inserted }
        self.deviceTypes = deviceTypes.sorted { $0.identifier < $1.identifier }
        self.unavailableRuntimes = unavailableRuntimes.sorted()
    }

    /// The Xcode bundle (`…/Xcode.app`) of the developer directory (`…/Xcode.app/Contents/Developer`).
    public var xcodePath: String { directoryOf(directoryOf(developerDir)) }

    public var json: JSONValue {
        .obj([
            "identity_source": .string(source.rawValue),
            "xcode_version": .string(xcodeVersion),
            "xcode_build": .string(xcodeBuild),
            "developer_dir": .string(developerDir),
            "macos_version": .string(macosVersion),
            "macos_build": .string(macosBuild),
            "arch": .string(arch),
            "runtimes": .array(runtimes.map(\.json)),
            "devices": .array(devices.map(\.json)),
            "device_types": .array(
                deviceTypes.map { .obj(["identifier": .string($0.identifier), "name": .string($0.name)]) }),
            "unavailable_runtimes": .array(unavailableRuntimes.map { .string($0) }),
        ])
    }

    public var identitySHA256: SHA256Digest { .of(json.canonicalBytes) }

    /// Equal identities: the same ``json`` (the UDIDs are volatile and do not count).
    public static func == (a: ToolchainIdentity, b: ToolchainIdentity) -> Bool { a.json == b.json }

    /// Parses what ``json`` wrote (the identity cache); anything else is refused.
    public init(json v: JSONValue) throws {
        let o = try IdentityField.object(v, "identity")
        try IdentityField.only(
            o,
            [
                "identity_source", "xcode_version", "xcode_build", "developer_dir", "macos_version", "macos_build",
                "arch", "runtimes", "devices", "device_types", "unavailable_runtimes",
            ])
        guard let source = Source(rawValue: try IdentityField.string(o, "identity_source")) else {
            throw IdentityFormatError("identity_source must be detected or declared")
        }
        let runtimes = try IdentityField.array(o, "runtimes").map(Runtime.init(json:))
        let devices = try IdentityField.array(o, "devices").map(Device.init(json:))
        let types = try IdentityField.array(o, "device_types").map { t -> DeviceType in
            let d = try IdentityField.object(t, "device_types[]")
            return DeviceType(
                identifier: try IdentityField.string(d, "identifier"), name: try IdentityField.string(d, "name"))
        }
        let unavailable = try IdentityField.array(o, "unavailable_runtimes").map { u -> String in
            guard let s = u.stringValue else { throw IdentityFormatError("unavailable_runtimes must hold strings") }
            return s
        }
        self.init(
            source: source, xcodeVersion: try IdentityField.string(o, "xcode_version"),
            xcodeBuild: try IdentityField.string(o, "xcode_build"),
            developerDir: try IdentityField.string(o, "developer_dir"),
            macosVersion: try IdentityField.string(o, "macos_version"),
            macosBuild: try IdentityField.string(o, "macos_build"), arch: try IdentityField.string(o, "arch"),
            runtimes: runtimes, devices: devices, deviceTypes: types, unavailableRuntimes: unavailable)
        guard self.json == v else { throw IdentityFormatError("the identity record is not in canonical order") }
    }
}

extension ToolchainIdentity.Runtime {
    var json: JSONValue {
        .obj([
            "identifier": .string(identifier), "platform": .string(platform), "version": .string(version),
            "build": .string(build), "name": .string(name),
        ])
    }

    init(json v: JSONValue) throws {
        let o = try IdentityField.object(v, "runtimes[]")
        try IdentityField.only(o, ["identifier", "platform", "version", "build", "name"])
        self.init(
            identifier: try IdentityField.string(o, "identifier"), platform: try IdentityField.string(o, "platform"),
            version: try IdentityField.string(o, "version"), build: try IdentityField.string(o, "build"),
            name: try IdentityField.string(o, "name"))
    }
}

extension ToolchainIdentity.Device {
    var json: JSONValue {
        .obj([
            "platform": .string(platform), "name": .string(name), "os_version": .string(osVersion),
            "runtime": .string(runtime), "device_type": .string(deviceType),
        ])
    }

    init(json v: JSONValue) throws {
        let o = try IdentityField.object(v, "devices[]")
        try IdentityField.only(o, ["platform", "name", "os_version", "runtime", "device_type"])
        self.init(
            platform: try IdentityField.string(o, "platform"), name: try IdentityField.string(o, "name"),
            osVersion: try IdentityField.string(o, "os_version"), runtime: try IdentityField.string(o, "runtime"),
            deviceType: try IdentityField.string(o, "device_type"))
    }
}

/// A record that is not what our writer produces.
public struct IdentityFormatError: Error, CustomStringConvertible, Sendable {
    public var description: String
    public init(_ d: String) { description = d }
}

/// Typed member access for the identity records (each failure names the member).
enum IdentityField {
    static func object(_ v: JSONValue, _ what: String) throws -> JSONObject {
        guard let o = v.objectValue else { throw IdentityFormatError("\(what) must be an object") }
        return o
    }

    static func string(_ o: JSONObject, _ k: String) throws -> String {
        guard let s = o[k]?.stringValue, !s.isEmpty else {
            throw IdentityFormatError("\(k) must be a non-empty string")
        }
        return s
    }

    static func array(_ o: JSONObject, _ k: String) throws -> [JSONValue] {
        guard let a = o[k]?.arrayValue else { throw IdentityFormatError("\(k) must be an array") }
        return a
    }

    static func only(_ o: JSONObject, _ allowed: Set<String>) throws {
        for k in o.keys where !allowed.contains(k) { throw IdentityFormatError("unknown member '\(k.prefix(64))'") }
    }
}
