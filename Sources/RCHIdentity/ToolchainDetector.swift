import RCHCore

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Detects a worker's ``ToolchainIdentity`` by running Apple's tools.
///
/// Rules:
/// - Tools are looked up on the `PATH` of `environment` (so tests can stand in fakes that print Apple's
///   real formats); each runs with `timeoutSeconds` and stdin from /dev/null.
/// - The developer directory is `pinnedDeveloperDir` (`[toolchain] developer_dir`, for machines with
///   several Xcodes), else `$DEVELOPER_DIR`, else `xcode-select -p`. Every later tool runs with
///   `DEVELOPER_DIR` set to it, so the values come from that one Xcode.
/// - A tool that is missing, fails, times out or prints something ``AppleToolOutput`` refuses is a
///   ``DetectionError`` naming the command — never a default.
public struct ToolchainDetector: Sendable {
    public var environment: [String: String]
    public var pinnedDeveloperDir: String?
    public var timeoutSeconds: Double

    public init(environment: [String: String], pinnedDeveloperDir: String? = nil, timeoutSeconds: Double = 60) {
        self.environment = environment
        self.pinnedDeveloperDir = pinnedDeveloperDir
        self.timeoutSeconds = timeoutSeconds
    }

    /// The tool names the detector runs (the identity cache watches these files).
    public static let tools = ["xcode-select", "xcodebuild", "sw_vers", "uname", "xcrun"]

    public func detect() throws -> ToolchainIdentity {
        do { return try detectOrThrowParseErrors() } catch let e as ToolOutputError { throw DetectionError(e) }
    }

    func detectOrThrowParseErrors() throws -> ToolchainIdentity {
        let developerDir: String
        if let pinned = pinnedDeveloperDir {
            developerDir = pinned
        } else if let env = environment["DEVELOPER_DIR"], !env.isEmpty {
            developerDir = env
        } else {
            developerDir = try AppleToolOutput.developerDir(try run("xcode-select", ["-p"]))
        }
        var toolEnv = environment
        toolEnv["DEVELOPER_DIR"] = developerDir
        let xcode = try AppleToolOutput.xcodebuildVersion(try run("xcodebuild", ["-version"], toolEnv))
        let macos = try AppleToolOutput.productVersion(try run("sw_vers", ["-productVersion"], toolEnv))
        let build = try AppleToolOutput.buildVersion(try run("sw_vers", ["-buildVersion"], toolEnv))
        let arch = try AppleToolOutput.machine(try run("uname", ["-m"], toolEnv))
        let list = try run("xcrun", ["simctl", "list", "-j", "runtimes", "devices", "devicetypes"], toolEnv)
        let sims = try AppleToolOutput.simulators(Array(list.utf8))
        var identity = ToolchainIdentity(
            source: .detected, xcodeVersion: xcode.version, xcodeBuild: xcode.build, developerDir: developerDir,
            macosVersion: macos, macosBuild: build, arch: arch, runtimes: sims.runtimes, devices: sims.devices,
            deviceTypes: sims.deviceTypes, unavailableRuntimes: sims.unavailable)
        identity.udids = sims.udids
        return identity
    }

    /// `name` on the PATH of `environment`, or nil.
    public static func which(_ name: String, environment: [String: String]) -> String? {
        let path = environment["PATH"] ?? "/usr/bin:/bin:/usr/sbin:/sbin"
        for dir in path.split(separator: ":") where dir.hasPrefix("/") {
            let candidate = dir + "/" + name
            var st = stat()
            if stat(candidate, &st) == 0, st.st_mode & S_IFMT == S_IFREG, access(candidate, X_OK) == 0 {
                return candidate
            }
        }
        return nil
    }

    func run(_ tool: String, _ args: [String], _ env: [String: String]? = nil) throws -> String {
        let command = ([tool] + args).joined(separator: " ")
        guard let exe = Self.which(tool, environment: environment) else {
            throw DetectionError(
                command: command, problem: "\(tool) was not found on PATH (\(environment["PATH"] ?? "unset"))")
        }
        let r: (exit: Spawn.Exit, stdout: String, stderr: String, seconds: Double)
        do {
            r = try Spawn.run(exe, args, environment: env ?? environment, timeoutSeconds: timeoutSeconds)
        } catch let e as Spawn.TimedOut {
            throw DetectionError(command: command, problem: e.description)
        } catch {
            throw DetectionError(command: command, problem: "cannot start \(exe): \(error)")
        }
        guard r.exit == .code(0) else {
            let why = r.stderr.split(separator: "\n").first.map(String.init) ?? ""
            throw DetectionError(
                command: command, problem: "exited with \(r.exit)\(why.isEmpty ? "" : ": \(why.prefix(200))")")
        }
        return r.stdout
    }
}

/// The toolchain could not be detected (EXECUTOR, subkind `TOOLCHAIN_DETECTION`).
public struct DetectionError: LaneError, Equatable {
    public var command: String
    public var problem: String

    public init(command: String, problem: String) {
        self.command = command
        self.problem = problem
    }

    public init(_ e: ToolOutputError) {
        self.init(command: e.command, problem: e.problem)
    }

    public var failureKind: FailureKind { .executor }
    public var failureSubkind: String? { "TOOLCHAIN_DETECTION" }
    public var description: String {
        "the worker cannot detect its toolchain: `\(command)` failed: \(problem). Install or select Xcode "
            + "(xcode-select -s), or pin one with [toolchain] developer_dir in worker.toml; `rch-worker identity` shows what is detected"
    }
}
