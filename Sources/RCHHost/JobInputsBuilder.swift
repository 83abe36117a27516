import RCHCore
import RCHJob

/// Builds `job_key_inputs` on the host from the xcodebuild arguments and the worker's capabilities.
///
/// Rules: the argv is canonicalised (classifier errors exit 10); the toolchain is the worker's active
/// Xcode (build, DEVELOPER_DIR) and macOS; a simulator `-destination` is resolved against the worker's
/// devices — `OS=latest` or no `OS` becomes the newest matching runtime, written back into the argv as a
/// concrete version — and contributes the runtime and device-type identity; other platforms use the
/// worker's macOS version. Provisioning is `existing`.
public enum JobInputsBuilder {
    /// `provisioning` (`existing` or `ephemeral`) comes from `[destination] provisioning`; `pinned` refuses a
    /// simulator destination without a concrete `OS` (constraints mode resolves `OS=latest`).
    public static func build(
        argv: [String], sourceSHA256: SHA256Digest, capabilities caps: JSONValue,
        provisioning: String = "existing", pinned: Bool = false
    ) throws -> JobKeyInputs {
        if let why = caps["identity_error"]?.stringValue {
            throw WorkerUnusable(message: "the worker cannot run jobs: \(why)")
        }
        var argv = argv
        guard let di = argv.firstIndex(of: "-destination"), di + 1 < argv.count else {
            throw JobKeyError(
                "/sanitized_argv", "a -destination is required (e.g. 'platform=iOS Simulator,name=iPhone 16')")
        }
        var fields = try XcodebuildArgv.destinationFields(argv[di + 1])
        // `id=<UDID>`: one of the worker's simulators, rewritten to its platform, name and OS (the UDID is
        // volatile and never enters job_key; the runtime and device type of that device are pinned below).
        var byUDID: JSONValue? = nil
        if let id = fields.first(where: { $0.key == "id" })?.value {
            byUDID = try Self.device(udid: id, spec: argv[di + 1], fields: fields, capabilities: caps)
            let d = byUDID!
            let platform = d["platform"]?.stringValue ?? ""
            argv[di + 1] =
                "platform=\(platform),name=\(d["name"]?.stringValue ?? ""),OS=\(d["os_version"]?.stringValue ?? "")"
            fields = try XcodebuildArgv.destinationFields(argv[di + 1])
        }
        func field(_ k: String) -> String? { fields.first { $0.key == k }?.value }
        guard let platform = field("platform") else {
            throw JobKeyError("/sanitized_argv", "-destination needs platform=…")
        }
        guard let xcode = caps["xcodes"]?.arrayValue?.first, let build = xcode["build"]?.stringValue,
            let devDir = caps["active_developer_dir"]?.stringValue ?? xcode["developer_dir"]?.stringValue,
            let macVersion = caps["macos_version"]?.stringValue, let macBuild = caps["macos_build"]?.stringValue,
            let arch = caps["arch"]?.stringValue
        else {
            throw JobKeyError(
                "", "the worker's capabilities do not describe its toolchain (xcodes, macos_version, macos_build, arch)"
            )
        }
        guard provisioning == "existing" || provisioning == "ephemeral" else {
            throw JobKeyError("/destination/provisioning", "must be existing or ephemeral ([destination] provisioning)")
        }
        var dest: JSONObject = ["platform": .string(platform), "provisioning": .string(provisioning)]
        let generic = XcodebuildArgv.isGeneric(argv[di + 1])
        if generic && fields.count != 1 {
            throw JobKeyError(
                "/sanitized_argv", "a generic -destination is exactly generic/platform=<platform> (no other fields)")
        }
        if !generic && pinned && platform.hasSuffix(" Simulator")
            && (field("OS") == nil || field("OS") == "latest" || field("name") == nil)
        {
            throw JobKeyError(
                "/destination",
                "a pinned destination must name the device and a concrete OS (e.g. 'platform=iOS Simulator,name=iPhone 16,OS=18.2'); use mode = \"constraints\" to let the worker's newest OS be chosen"
            )
        }
        if generic {
            // Build for any device of the platform: nothing to resolve or provision (PLAN §6.4).
            dest["name"] = .string(JobKeyInputs.Destination.genericName)
            dest["os_version"] = .string(JobKeyInputs.Destination.anyOS)
            dest["provisioning"] = .string("existing")
        } else if platform.hasSuffix(" Simulator") {
            let wantedOS = field("OS").flatMap { $0 == "latest" ? nil : $0 }
            let candidates = (caps["devices"]?.arrayValue ?? []).filter { d in
                d["platform"]?.stringValue == platform
                    && (field("name") == nil || d["name"]?.stringValue == field("name"))
                    && (wantedOS == nil || d["os_version"]?.stringValue == wantedOS)
                    && (byUDID == nil
                        || (d["runtime"] == byUDID!["runtime"] && d["device_type"] == byUDID!["device_type"]))
            }
            guard
                let device = candidates.max(by: {
                    versionLess($0["os_version"]?.stringValue ?? "", $1["os_version"]?.stringValue ?? "")
                }),
                let name = device["name"]?.stringValue, let os = device["os_version"]?.stringValue,
                let runtime = device["runtime"]?.stringValue, let deviceType = device["device_type"]?.stringValue
            else {
                let available = (caps["devices"]?.arrayValue ?? []).filter { $0["platform"]?.stringValue == platform }
                    .map { "\($0["name"]?.stringValue ?? "?") (\($0["os_version"]?.stringValue ?? "?"))" }
                let list = available.isEmpty ? "none" : available.joined(separator: ", ")
                throw JobKeyError(
                    "/sanitized_argv",
                    "the worker has no \(platform) device matching '\(argv[di + 1])'; it has: \(list)")
            }
            let runtimeBuild =
                (caps["runtimes"]?.arrayValue ?? []).first { $0["identifier"]?.stringValue == runtime }?["build"]?
                .stringValue ?? ""
            dest["name"] = .string(name)
            dest["os_version"] = .string(os)
            dest["sim_runtime_identifier"] = .string(runtime)
            dest["sim_runtime_build"] = .string(runtimeBuild)
            dest["device_type_identifier"] = .string(deviceType)
            argv[di + 1] = "platform=\(platform),name=\(name),OS=\(os)"
        } else {
            dest["name"] = .string(field("name") ?? "My Mac")
            dest["os_version"] = .string(macVersion)
        }
        let canonical = try XcodebuildArgv.canonicalize(argv)
        return try JobKeyInputs(
            json: .obj([
                "source_sha256": .string(sourceSHA256.hex), "sanitized_argv": .array(canonical.map { .string($0) }),
                "toolchain": .obj([
                    "xcode_build": .string(build), "developer_dir": .string(devDir),
                    "macos_version": .string(macVersion),
                    "macos_build": .string(macBuild), "arch": .string(arch),
                ]),
                "destination": .object(dest),
            ]))
    }

    /// The worker's simulator with this UDID (from capabilities `device_udids`), or a clear error listing them.
    static func device(udid: String, spec: String, fields: [(key: String, value: String)], capabilities caps: JSONValue)
        throws -> JSONValue
    {
        guard fields.allSatisfy({ $0.key == "id" || $0.key == "platform" }) else {
            throw JobKeyError(
                "/sanitized_argv", "-destination '\(spec)': with id=<UDID> give at most platform=… beside it")
        }
        let known = caps["device_udids"]?.arrayValue ?? []
        guard let d = known.first(where: { $0["udid"]?.stringValue?.uppercased() == udid.uppercased() }) else {
            let list = known.map {
                "\($0["name"]?.stringValue ?? "?") (\($0["platform"]?.stringValue ?? "?") \($0["os_version"]?.stringValue ?? "?")) \($0["udid"]?.stringValue ?? "?")"
            }
            throw JobKeyError(
                "/sanitized_argv",
                "the worker has no simulator with UDID \(udid); it has: \(list.isEmpty ? "none" : list.joined(separator: ", "))"
            )
        }
        if let p = fields.first(where: { $0.key == "platform" })?.value, p != d["platform"]?.stringValue {
            throw JobKeyError(
                "/sanitized_argv",
                "simulator \(udid) belongs to platform \(d["platform"]?.stringValue ?? "?"), not \(p); fix platform= or the UDID"
            )
        }
        return d
    }

    static func versionLess(_ a: String, _ b: String) -> Bool {
        let x = a.split(separator: ".").map { Int($0) ?? 0 }
        let y = b.split(separator: ".").map { Int($0) ?? 0 }
        return x.lexicographicallyPrecedes(y)
    }
}

/// The worker reports no usable executor or identity (EXECUTOR, subkind `EXECUTOR_UNAVAILABLE`).
public struct WorkerUnusable: LaneError {
    public var message: String
    public init(message: String) { self.message = message }
    public var failureKind: FailureKind { .executor }
    public var failureSubkind: String? { "EXECUTOR_UNAVAILABLE" }
    public var description: String { message }
}
