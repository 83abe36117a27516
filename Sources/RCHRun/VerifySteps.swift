import RCHBundle
import RCHCore
import RCHJob

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// The steps of `rch-xcode verify`: `[verify] actions` (default `["build", "test"]`), each run as
/// `xcodebuild <action> -scheme S [-configuration C] [-destination D] <extra…>` with `scheme`,
/// `configuration` from `[verify]` and the destination from `[destination] value`; flags override the
/// config (the merge rule of PLAN §11, flags last).
public struct VerifySteps: Sendable {
    public var actions: [String]
    public var scheme: String
    public var configuration: String?
    public var destination: String?
    public var extra: [String]

    public init(
        root: String, actions: [String], scheme: String?, configuration: String?, destination: String?, extra: [String]
    ) throws {
        let (config, _) = Config.redact(Config.merge(try Config.layers(repo: root)))
        let verify = config["verify"]?.objectValue ?? JSONObject()
        if let v = config["verify"], v.objectValue == nil { throw ConfigValueError("[verify] must be a table") }
        var configured: [String] = ["build", "test"]
        if let a = verify["actions"] {
            guard let list = a.arrayValue?.compactMap(\.stringValue), list.count == a.arrayValue?.count, !list.isEmpty,
                list.allSatisfy({ $0 == "build" || $0 == "test" })
            else { throw ConfigValueError("[verify] actions must be a non-empty list of \"build\" and \"test\"") }
            configured = list
        }
        self.actions = actions.isEmpty ? configured : actions
        guard let s = scheme ?? verify["scheme"]?.stringValue, !s.isEmpty else {
            throw ConfigValueError("no scheme to verify: pass --scheme NAME or set [verify] scheme in .rch/xcode.toml")
        }
        self.scheme = s
        self.configuration = configuration ?? verify["configuration"]?.stringValue
        self.destination = destination
        self.extra = extra
    }

    /// One xcodebuild argv per step (a step without `-destination` gets `[destination] value` later).
    public func argvs() throws -> [[String]] {
        actions.map { action in
            var argv = [action, "-scheme", scheme]
            if let configuration { argv += ["-configuration", configuration] }
            if let destination { argv += ["-destination", destination] }
            return argv + extra
        }
    }
}

/// Absolute, symlink-free repository paths (a run records where it came from, and resume compares it),
/// and the repository root a command run from a subdirectory means.
public enum RepoPath {
    public static func absolute(_ path: String) -> String {
        guard let p = realpath(path, nil) else { return path }
        defer { free(p) }
        return String(cString: p)
    }

    /// Like git: from `path` up to `/`, the nearest directory holding `.rch/xcode.toml` or `.git`; `path`
    /// itself when there is none. `push`, `run` and `verify` bundle that root (its `.rchignore` and config
    /// apply), never just the subdirectory they were started in.
    public static func root(from path: String) throws -> String {
        let start = absolute(path)
        var st = stat()
        guard stat(start, &st) == 0, st.st_mode & S_IFMT == S_IFDIR else {
            throw RepoRootError(message: "\(path) is not a directory; give the repository to use")
        }
        var dir = start
        while true {
            if access(dir + "/.rch/xcode.toml", F_OK) == 0 || access(dir + "/.git", F_OK) == 0 { return dir }
            if dir == "/" || dir.isEmpty { return start }
            dir = directoryOf(dir)
            if dir.isEmpty { dir = "/" }
        }
    }
}

/// No repository to bundle (exit 92, BUNDLER).
public struct RepoRootError: LaneError {
    public var message: String
    public var failureKind: FailureKind { .bundler }
    public var failureSubkind: String? { "NOTHING_TO_BUNDLE" }
    public var description: String { message }
}

/// `[bundle]` of the merged configuration (`mode`, `max_bytes`), as `push`, `run` and `verify` apply it.
public enum RepoBundleOptions {
    public static func load(root: String) throws -> BundleOptions {
        let (config, _) = Config.redact(Config.merge(try Config.layers(repo: root)))
        return try apply(config, to: BundleOptions())
    }

    public static func apply(_ config: JSONObject, to base: BundleOptions) throws -> BundleOptions {
        var o = base
        guard let b = config["bundle"] else { return o }
        guard let t = b.objectValue else { throw ConfigValueError("[bundle] must be a table") }
        if let m = t["mode"] {
            guard let s = m.stringValue, let mode = SelectionMode(rawValue: s) else {
                throw ConfigValueError("[bundle] mode must be \"worktree\", \"git_index\" or \"git\"")
            }
            o.mode = mode
        }
        if let max = t["max_bytes"] {
            guard let n = max.intValue, n >= 0 else {
                throw ConfigValueError("[bundle] max_bytes must be a non-negative number of bytes")
            }
            if n > 0 && o.maxBytes == 0 { o.maxBytes = UInt64(n) }
        }
        return o
    }
}
