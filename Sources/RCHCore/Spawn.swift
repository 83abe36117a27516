#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import CRCHSys
import SystemPackage

/// Child processes via posix_spawn: explicit fds 0/1/2, everything else closed, optionally a new session.
public enum Spawn {
    public enum Exit: Sendable, Equatable {
        case code(Int32), signal(Int32)
    }

    /// Starts `path` with `arguments` (argv[0] is `path`). `environment` nil inherits ours.
    public static func start(_ path: String, _ arguments: [String], environment: [String: String]? = nil, directory: String? = nil,
                             stdin: Int32, stdout: Int32, stderr: Int32, newSession: Bool = false) throws -> pid_t {
        let argv = ([path] + arguments).map { strdup($0) }
        defer { argv.forEach { free($0) } }
        let envp = environment.map { $0.map { strdup("\($0.key)=\($0.value)") } }
        defer { envp?.forEach { free($0) } }
        var pid: Int32 = 0
        let rc: Int32 = (argv + [nil]).withUnsafeBufferPointer { a in
            func go(_ e: UnsafePointer<UnsafeMutablePointer<CChar>?>?) -> Int32 {
                CRCHSys_spawn(path, a.baseAddress, e, directory, stdin, stdout, stderr, newSession ? 1 : 0, &pid)
            }
            if let envp { return (envp + [nil]).withUnsafeBufferPointer { go($0.baseAddress) } }
            return go(nil)
        }
        guard rc == 0 else { throw SystemError("posix_spawn", path: path, errno: Errno(rawValue: rc)) }
        return pid
    }

    /// Non-blocking: the exit status if the child has ended.
    public static func poll(_ pid: pid_t) -> Exit? {
        var status: Int32 = 0
        let r = waitpid(pid, &status, WNOHANG)
        guard r == pid else { return r < 0 ? .code(-1) : nil }
        return decode(status)
    }

    /// Blocks until the child ends.
    public static func wait(_ pid: pid_t) -> Exit {
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 { if errno != EINTR { return .code(-1) } }
        return decode(status)
    }

    static func decode(_ status: Int32) -> Exit {
        let sig = status & 0x7f
        return sig == 0 ? .code((status >> 8) & 0xff) : .signal(sig)
    }

    public static func signalName(_ s: Int32) -> String {
        switch s {
        case SIGTERM: "SIGTERM"
        case SIGKILL: "SIGKILL"
        case SIGINT: "SIGINT"
        case SIGSEGV: "SIGSEGV"
        case SIGABRT: "SIGABRT"
        default: "SIG\(s)"
        }
    }
}
