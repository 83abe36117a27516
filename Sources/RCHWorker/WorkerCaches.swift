import RCHCore
import RCHJob
import RCHStore
import SystemPackage

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// The worker's build caches: DerivedData and SwiftPM package checkouts reused across jobs (PLAN §13.4).
///
/// Layout under `<store>/caches/<namespace>/` (the job's `cache.namespace`):
/// `derived_data/shared/<toolchain_key>/`, `derived_data/per_job/<job_key>/`, `spm/<toolchain_key>/`, each with
/// a sibling `<dir>.lock`; `<toolchain_key>` = `xcode_<build>__macos_<major>__<arch>` of the job's toolchain, so
/// no cache is ever shared across Xcode builds, macOS majors or architectures. These caches never enter the
/// job key (they do not change outputs).
///
/// Modes (the job's `effective_config.cache`; absent = the host's defaults, `shared` and `shared`):
/// `derived_data` = `off` (a private directory in the job, removed with it), `per_job` (kept per job key — a
/// retry or a richer re-run of the same key reuses it), or `shared` (per namespace and toolchain); `spm` =
/// `off` (xcodebuild's own location inside DerivedData) or `shared` (`-clonedSourcePackagesDirPath`). Safety: a cache directory is used by one job at a time — its
/// lock (`flock`, held until the job ends, released by the kernel if the runner dies) is waited for at most
/// `[cache] lock_timeout_seconds`; then the job uses a private directory instead (never a shared one
/// unlocked). Each use touches `<dir>.lock` (mtime = last use, what gc's age budget reads).
public struct WorkerCaches: Sendable {
    public let store: LocalStore
    public let lockTimeoutSeconds: Int64

    public init(store: LocalStore, lockTimeoutSeconds: Int64) {
        self.store = store
        self.lockTimeoutSeconds = lockTimeoutSeconds
    }

    public var root: String { store.root + "/caches" }

    /// `xcode_16C5032a__macos_15__arm64`.
    public static func toolchainKey(_ t: JobKeyInputs.Toolchain) -> String {
        let major = t.macosVersion.split(separator: ".").first.map(String.init) ?? t.macosVersion
        let safe = { (s: String) in String(s.map { $0.isLetter || $0.isNumber || $0 == "." ? $0 : "_" }) }
        return "xcode_\(safe(t.xcodeBuild))__macos_\(safe(major))__\(safe(t.arch))"
    }

    /// One cache directory held for a job.
    public struct Use: Sendable {
        public var path: String
        /// `off`, `per_job`, `shared`, or `private (lock timeout)`.
        public var mode: String
        /// Whether it already held files when the job took it.
        public var hit: Bool
        var lockFD: Int32
    }

    /// The DerivedData and SwiftPM directories for a job (locks held until ``release(_:)``).
    public func acquire(
        derivedData: String, spm: String, namespace: String, inputs: JobKeyInputs, jobDirectory: String
    ) throws -> (derivedData: Use, spm: Use?) {
        let base = root + "/" + namespace
        let key = Self.toolchainKey(inputs.toolchain)
        let privateDD = Use(path: jobDirectory + "/DerivedData", mode: "off", hit: false, lockFD: -1)
        let dd: Use
        switch derivedData {
        case "shared": dd = try hold(base + "/derived_data/shared/" + key, mode: "shared") ?? fallback(privateDD)
        case "per_job":
            dd = try hold(base + "/derived_data/per_job/" + inputs.jobKey.hex, mode: "per_job") ?? fallback(privateDD)
        default: dd = privateDD
        }
        let packages: Use? =
            spm == "shared"
            ? try hold(base + "/spm/" + key, mode: "shared")
                ?? fallback(Use(path: jobDirectory + "/SourcePackages", mode: "off", hit: false, lockFD: -1)) : nil
        return (dd, packages)
    }

    private func fallback(_ u: Use) -> Use {
        var u = u
        u.mode = "private (lock timeout)"
        return u
    }

    /// Takes the directory's lock (waiting up to the timeout); nil if it stayed busy.
    private func hold(_ dir: String, mode: String) throws -> Use? {
        try Syscalls.makeDirectories(directoryOf(dir))
        let fd = open(dir + ".lock", O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw SystemError("open", path: dir + ".lock", errno: Errno(rawValue: errno)) }
        let deadline = Timestamp.nowNanos() + lockTimeoutSeconds * 1_000_000_000
        while flock(fd, LOCK_EX | LOCK_NB) != 0 {
            if Timestamp.nowNanos() >= deadline {
                close(fd)
                return nil
            }
            usleep(100_000)
        }
        futimens(fd, nil)  // last use, for gc
        try Syscalls.makeDirectories(dir)  // after the lock: gc may have removed it meanwhile
        let hit = ((try? Directory.list(dir)) ?? []).isEmpty == false
        return Use(path: dir, mode: mode, hit: hit, lockFD: fd)
    }

    public static func release(_ u: Use?) {
        guard let u, u.lockFD >= 0 else { return }
        close(u.lockFD)
    }
}
