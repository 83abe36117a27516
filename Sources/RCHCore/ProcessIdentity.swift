#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// A process named so that a reused pid is not mistaken for it: the pid plus the process's start time
/// (Linux: field 22 of `/proc/<pid>/stat`, clock ticks since boot, with the boot id; Darwin: `kinfo_proc`
/// start time). Used by leases, so a lease of a killed process stops protecting anything at once instead
/// of at its expiry.
public struct ProcessIdentity: Sendable, Equatable {
    public var pid: Int32
    /// Opaque start token; nil where the platform gives none (then only the expiry counts).
    public var start: String?

    public init(pid: Int32, start: String?) {
        self.pid = pid
        self.start = start
    }

    public static var current: ProcessIdentity { ProcessIdentity(pid: getpid(), start: startToken(getpid())) }

    /// False only when the process is known to be gone (no such pid, or the pid now belongs to a process
    /// that started at another time).
    public var isAlive: Bool {
        if kill(pid, 0) != 0 && errno == ESRCH { return false }
        guard let start, let now = Self.startToken(pid) else { return true }
        return now == start
    }

    public static func startToken(_ pid: Int32) -> String? {
        #if canImport(Darwin)
            var info = kinfo_proc()
            var size = MemoryLayout<kinfo_proc>.stride
            var mib: [Int32] = [CTL_KERN, KERN_PROC, KERN_PROC_PID, pid]
            guard sysctl(&mib, 4, &info, &size, nil, 0) == 0, size > 0 else { return nil }
            let t = info.kp_proc.p_un.__p_starttime
            return "\(t.tv_sec).\(t.tv_usec)"
        #else
            guard let stat = read("/proc/\(pid)/stat"), let close = stat.lastIndex(of: UInt8(ascii: ")")) else {
                return nil
            }
            // Fields after the command name: state is field 3, starttime field 22.
            let fields = stat[(close + 2)...].split(separator: UInt8(ascii: " "))
            guard fields.count > 19 else { return nil }
            let boot = read("/proc/sys/kernel/random/boot_id").map { String(decoding: $0, as: UTF8.self) } ?? ""
            return String(decoding: fields[19], as: UTF8.self) + "@" + boot.trimmingNewline
        #endif
    }

    /// A small file (/proc entries report size 0; ``DurableFile/read(_:limit:)`` reads on to EOF).
    static func read(_ path: String) -> [UInt8]? { try? DurableFile.read(path) }
}

extension String {
    fileprivate var trimmingNewline: String { hasSuffix("\n") ? String(dropLast()) : self }
}
