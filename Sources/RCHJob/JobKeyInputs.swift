import RCHCore

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// `job_key_inputs`: the only thing hashed into `job_key`.
///
/// Invariants: exactly the members `source_sha256`, `sanitized_argv`, `toolchain`, `destination`
/// (closed: unknown and host-only members are refused); every value is a string or an array of
/// strings; `sanitized_argv` is already canonical (``XcodebuildArgv``) and its `-destination` agrees with
/// `destination`; `destination.os_version` is a concrete version, never `latest`; simulator destinations
/// carry the runtime and device-type identity, others must not.
/// `job_key` = lowercase hex SHA-256 of the RFC 8785 canonical bytes of the object.
public struct JobKeyInputs: Sendable, Equatable {
    public var sourceSHA256: SHA256Digest
    public var sanitizedArgv: [String]
    public var toolchain: Toolchain
    public var destination: Destination

    public struct Toolchain: Sendable, Equatable {
        public var xcodeBuild: String
        public var developerDir: String
        public var macosVersion: String
        public var macosBuild: String
        public var arch: String
    }

    public struct Destination: Sendable, Equatable {
        public var platform: String
        public var name: String
        public var osVersion: String
        public var provisioning: String
        public var simRuntimeIdentifier: String?
        public var simRuntimeBuild: String?
        public var deviceTypeIdentifier: String?
        public var isSimulator: Bool { platform.hasSuffix(" Simulator") }
        /// A generic destination (`-destination generic/platform=P`, build only): `name` is `generic` and
        /// `os_version` is `any` — no device, no OS, no simulator identity; the SDK is the toolchain's.
        public var isGeneric: Bool { osVersion == Self.anyOS }
        public static let anyOS = "any"
        public static let genericName = "generic"
    }

    public static let platforms: Set<String> = [
        "iOS Simulator", "iOS", "macOS", "Mac Catalyst", "watchOS Simulator", "watchOS", "tvOS Simulator", "tvOS",
        "visionOS Simulator", "visionOS",
    ]
    static let hostOnly: Set<String> = [
        "timeout", "timeouts", "worker", "workers", "inventory", "worker_inventory", "ssh", "cache", "caches",
        "selection", "worker_selection", "backend", "effective_config", "artifact_profile", "run_id", "job_id",
        "lease_id", "retries", "priority", "host",
    ]

    /// The canonical JSON object (its JCS bytes are what gets hashed).
    public var json: JSONValue {
        var dest = JSONObject([
            ("platform", .string(destination.platform)), ("name", .string(destination.name)),
            ("os_version", .string(destination.osVersion)), ("provisioning", .string(destination.provisioning)),
        ])
        if let v = destination.simRuntimeIdentifier { dest["sim_runtime_identifier"] = .string(v) }
        if let v = destination.simRuntimeBuild { dest["sim_runtime_build"] = .string(v) }
        if let v = destination.deviceTypeIdentifier { dest["device_type_identifier"] = .string(v) }
        return .obj([
            "source_sha256": .string(sourceSHA256.hex),
            "sanitized_argv": .array(sanitizedArgv.map { .string($0) }),
            "toolchain": .obj([
                "xcode_build": .string(toolchain.xcodeBuild), "developer_dir": .string(toolchain.developerDir),
                "macos_version": .string(toolchain.macosVersion), "macos_build": .string(toolchain.macosBuild),
                "arch": .string(toolchain.arch),
            ]),
            "destination": .object(dest),
        ])
    }

    /// `build` or `test` (the artifact contract), from the xcodebuild action.
    public var action: String {
        let a = XcodebuildArgv.action(of: sanitizedArgv)
        return a == "test" || a == "test-without-building" ? "test" : "build"
    }

    /// The RFC 8785 bytes of ``json`` (also the exact content of `job_key_inputs.json`).
    public var canonicalBytes: [UInt8] { json.canonicalBytes }

    /// SHA-256 of ``canonicalBytes``.
    public var jobKey: SHA256Digest { SHA256Digest.of(canonicalBytes) }

    /// Validates a parsed `job_key_inputs` object.
    public init(json v: JSONValue) throws(JobKeyError) {
        let top = try Self.object(v, "", allowed: ["source_sha256", "sanitized_argv", "toolchain", "destination"])
        let sha = try Self.string(top, "source_sha256", "")
        guard let digest = SHA256Digest(hex: sha) else {
            throw JobKeyError("/source_sha256", "must be 64 lowercase hex characters")
        }
        sourceSHA256 = digest
        guard let argvValue = top["sanitized_argv"] else { throw JobKeyError("/sanitized_argv", "is required") }
        guard let items = argvValue.arrayValue else {
            throw JobKeyError("/sanitized_argv", "must be an array of strings")
        }
        var argv: [String] = []
        for (i, item) in items.enumerated() {
            guard let s = item.stringValue else { throw JobKeyError("/sanitized_argv/\(i)", "must be a string") }
            argv.append(s)
        }
        let canonical = try XcodebuildArgv.canonicalize(argv)
        guard canonical.elementsEqual(argv, by: Self.sameBytes) else {
            throw JobKeyError(
                "/sanitized_argv",
                "is not in canonical order; expected \(JSONValue.array(canonical.map { .string($0) }).canonicalString)")
        }
        sanitizedArgv = argv

        let tc = try Self.object(
            top["toolchain"] ?? .null, "/toolchain",
            allowed: ["xcode_build", "developer_dir", "macos_version", "macos_build", "arch"])
        toolchain = Toolchain(
            xcodeBuild: try Self.string(
                tc, "xcode_build", "/toolchain", pattern: Self.isBuildNumber,
                rule: "an Xcode build number such as 16C5032a"),
            developerDir: try Self.string(
                tc, "developer_dir", "/toolchain", pattern: { $0.hasPrefix("/") && !$0.contains("/../") },
                rule: "an absolute path"),
            macosVersion: try Self.string(
                tc, "macos_version", "/toolchain", pattern: Self.isVersion, rule: "a version such as 15.2"),
            macosBuild: try Self.string(
                tc, "macos_build", "/toolchain", pattern: Self.isBuildNumber,
                rule: "a macOS build number such as 24C101"),
            arch: try Self.string(
                tc, "arch", "/toolchain", pattern: { $0 == "arm64" || $0 == "x86_64" }, rule: "arm64 or x86_64"))

        let d = try Self.object(
            top["destination"] ?? .null, "/destination",
            allowed: [
                "platform", "name", "os_version", "provisioning", "sim_runtime_identifier", "sim_runtime_build",
                "device_type_identifier",
            ])
        let platform = try Self.string(
            d, "platform", "/destination", pattern: { Self.platforms.contains($0) },
            rule: "one of " + Self.platforms.sorted().joined(separator: ", "))
        let os = try Self.string(
            d, "os_version", "/destination", pattern: { Self.isVersion($0) || $0 == Destination.anyOS },
            rule: "a concrete version such as 18.2 (never 'latest': resolve it on the host), or 'any' (generic)")
        var dest = Destination(
            platform: platform, name: try Self.string(d, "name", "/destination"), osVersion: os,
            provisioning: try Self.string(
                d, "provisioning", "/destination", pattern: { $0 == "existing" || $0 == "ephemeral" },
                rule: "existing or ephemeral"))
        let simKeys = ["sim_runtime_identifier", "sim_runtime_build", "device_type_identifier"]
        if dest.isGeneric {
            guard dest.name == Destination.genericName, dest.provisioning == "existing" else {
                throw JobKeyError(
                    "/destination",
                    "a generic destination (os_version 'any') has name 'generic' and provisioning 'existing'")
            }
            guard XcodebuildArgv.action(of: argv) == "build" else {
                throw JobKeyError(
                    "/sanitized_argv", "a generic destination can only build; give a device destination to test")
            }
            if let k = simKeys.first(where: { d[$0] != nil }) {
                throw JobKeyError("/destination/\(k)", "a generic destination carries no simulator identity")
            }
        } else if dest.isSimulator {
            dest.simRuntimeIdentifier = try Self.string(
                d, "sim_runtime_identifier", "/destination",
                pattern: { $0.hasPrefix("com.apple.CoreSimulator.SimRuntime.") },
                rule: "a CoreSimulator runtime identifier")
            dest.simRuntimeBuild = try Self.string(
                d, "sim_runtime_build", "/destination", pattern: Self.isBuildNumber,
                rule: "a runtime build number such as 22C150")
            dest.deviceTypeIdentifier = try Self.string(
                d, "device_type_identifier", "/destination",
                pattern: { $0.hasPrefix("com.apple.CoreSimulator.SimDeviceType.") },
                rule: "a CoreSimulator device type identifier")
        } else if let k = simKeys.first(where: { d[$0] != nil }) {
            throw JobKeyError("/destination/\(k)", "only simulator destinations carry simulator identity")
        }
        destination = dest
        try Self.checkDestinationArgument(argv, dest)
    }

    /// Parses, validates and returns the inputs of a JSON text.
    public static func parse(_ bytes: [UInt8]) throws -> JobKeyInputs {
        try JobKeyInputs(json: try JSONParser().parse(bytes))
    }

    // MARK: helpers

    /// Exact UTF-8 equality (Swift's `==` on strings is canonical equivalence, and slower).
    static func sameBytes(_ a: String, _ b: String) -> Bool {
        var a = a
        var b = b
        return a.withUTF8 { x in
            b.withUTF8 { y in
                x.count == y.count && (x.count == 0 || memcmp(x.baseAddress!, y.baseAddress!, x.count) == 0)
            }
        }
    }

    static func object(_ v: JSONValue, _ path: String, allowed: Set<String>) throws(JobKeyError) -> JSONObject {
        guard let o = v.objectValue else { throw JobKeyError(path, "must be an object") }
        for k in o.keys where !allowed.contains(k) {
            if path.isEmpty && hostOnly.contains(k) {
                throw JobKeyError(
                    "/\(k)",
                    "is a host-only setting and must not be part of job_key_inputs (it would split the cache without changing the output)"
                )
            }
            throw JobKeyError(
                "\(path)/\(k)", "is not a known field (allowed: \(allowed.sorted().joined(separator: ", ")))")
        }
        return o
    }

    static func string(
        _ o: JSONObject, _ key: String, _ path: String, pattern: (String) -> Bool = { !$0.isEmpty },
        rule: String = "a non-empty string"
    ) throws(JobKeyError) -> String {
        guard let v = o[key] else { throw JobKeyError("\(path)/\(key)", "is required") }
        guard let s = v.stringValue, pattern(s) else { throw JobKeyError("\(path)/\(key)", "must be \(rule)") }
        return s
    }

    static func isVersion(_ s: String) -> Bool {
        let parts = s.split(separator: ".", omittingEmptySubsequences: false)
        return (1...3).contains(parts.count)
            && parts.allSatisfy { !$0.isEmpty && $0.utf8.allSatisfy { (48...57).contains($0) } }
    }

    static func isBuildNumber(_ s: String) -> Bool {
        (3...16).contains(s.utf8.count)
            && s.utf8.allSatisfy { (48...57).contains($0) || (65...90).contains($0) || (97...122).contains($0) }
            && s.utf8.first.map { (48...57).contains($0) } == true
    }

    /// The `-destination` argument must name the same destination (platform, name, OS).
    static func checkDestinationArgument(_ argv: [String], _ d: Destination) throws(JobKeyError) {
        guard let spec = XcodebuildArgv.destination(of: argv) else { return }
        if XcodebuildArgv.isGeneric(spec) != d.isGeneric {
            throw JobKeyError(
                "/sanitized_argv",
                d.isGeneric
                    ? "destination.os_version 'any' needs -destination generic/platform=\(d.platform)"
                    : "-destination '\(spec)' is generic; destination.os_version must then be 'any'")
        }
        if d.isGeneric && spec != "generic/platform=\(d.platform)" {
            throw JobKeyError(
                "/sanitized_argv", "a generic -destination is exactly generic/platform=\(d.platform) (no other fields)")
        }
        var fields: [String: String] = [:]
        for (k, v) in try XcodebuildArgv.destinationFields(spec) { fields[k] = v }
        if fields["OS"] == "latest" {
            throw JobKeyError(
                "/sanitized_argv", "-destination uses OS=latest; resolve it to a concrete version on the host")
        }
        if let p = fields["platform"], p != d.platform {
            throw JobKeyError(
                "/sanitized_argv", "-destination platform '\(p)' differs from destination.platform '\(d.platform)'")
        }
        if let n = fields["name"], n != d.name {
            throw JobKeyError("/sanitized_argv", "-destination name '\(n)' differs from destination.name '\(d.name)'")
        }
        if let os = fields["OS"], os != d.osVersion {
            throw JobKeyError(
                "/sanitized_argv", "-destination OS '\(os)' differs from destination.os_version '\(d.osVersion)'")
        }
    }
}

extension String {
    func trimmingCharactersInSpaces() -> String {
        var s = Substring(self)
        while s.first == " " { s.removeFirst() }
        while s.last == " " { s.removeLast() }
        return String(s)
    }
}
