import CRCHSys
import SystemPackage

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Child processes via posix_spawn: explicit fds 0/1/2, everything else closed, optionally a new session.
public enum Spawn {
    public enum Exit: Sendable, Equatable {
        case code(Int32), signal(Int32)
    }

    /// Starts `path` with `arguments` (argv[0] is `path`). `environment` nil inherits ours.
    public static func start(
        _ path: String, _ arguments: [String], environment: [String: String]? = nil, directory: String? = nil,
        stdin: Int32, stdout: Int32, stderr: Int32, newSession: Bool = false
    ) throws -> pid_t {
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

    /// Runs a command to its end with stdin from /dev/null; stdout and stderr are captured through
    /// unlinked temp files (no pipes to drain) and returned with the exit status and the wall time.
    /// With `timeoutSeconds`, a child still running then is killed (SIGKILL to its own session) and
    /// ``TimedOut`` is thrown. `environment` nil inherits ours.
    public static func run(
        _ path: String, _ arguments: [String], environment: [String: String]? = nil, timeoutSeconds: Double? = nil
    ) throws -> (exit: Exit, stdout: String, stderr: String, seconds: Double) {
        func temp() -> Int32 {
            var template = Array("/tmp/rch-run-XXXXXX".utf8CString)
            let fd = template.withUnsafeMutableBufferPointer { mkstemp($0.baseAddress!) }
            if fd >= 0 { template.withUnsafeBufferPointer { _ = unlink($0.baseAddress!) } }
            return fd
        }
        let out = temp()
        let err = temp()
        let devnull = open("/dev/null", O_RDONLY | O_CLOEXEC)
        defer {
            close(out)
            close(err)
            close(devnull)
        }
        guard out >= 0, err >= 0 else { throw SystemError("mkstemp", path: "/tmp", errno: Errno(rawValue: errno)) }
        let started = Timestamp.nowNanos()
        let pid = try start(
            path, arguments, environment: environment, stdin: devnull, stdout: out, stderr: err,
            newSession: timeoutSeconds != nil)
        let exit: Exit
        if let timeoutSeconds {
            let deadline = started + Int64(timeoutSeconds * 1e9)
            var ended: Exit? = nil
            while ended == nil {
                ended = poll(pid)
                if ended == nil && Timestamp.nowNanos() > deadline {
                    kill(-pid, SIGKILL)
                    _ = wait(pid)
                    throw TimedOut(command: path, seconds: timeoutSeconds)
                }
                if ended == nil { usleep(5_000) }
            }
            exit = ended!
        } else {
            exit = wait(pid)
        }
        let seconds = Double(Timestamp.nowNanos() - started) / 1e9
        func text(_ fd: Int32) -> String {
            var bytes: [UInt8] = []
            var chunk = [UInt8](repeating: 0, count: 1 << 16)
            var off: off_t = 0
            while true {
                let n = chunk.withUnsafeMutableBytes { pread(fd, $0.baseAddress, $0.count, off) }
                if n <= 0 { break }
                bytes += chunk[0..<n]
                off += off_t(n)
            }
            return String(decoding: bytes, as: UTF8.self)
        }
        return (exit, text(out), text(err), seconds)
    }

    /// A child that did not end within its time limit (it was killed).
    public struct TimedOut: Error, CustomStringConvertible, Sendable {
        public var command: String
        public var seconds: Double
        public var description: String { "\(command) did not finish within \(seconds) s (killed)" }
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
