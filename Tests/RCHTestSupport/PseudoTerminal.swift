import Foundation

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Runs a command with its stderr on a pseudo terminal (what a user at a terminal sees) and its stdout
/// on a file, and returns both once it exits.
public enum PseudoTerminal {
    public struct Result {
        public var status: Int32
        public var stdout: String
        /// Everything written to the terminal (stderr), control sequences included.
        public var terminal: String
    }

    public static func run(_ exe: String, _ args: [String], environment: [String: String]) throws -> Result {
        let (master, slavePath) = try openMaster()
        defer { close(master) }
        let slave = open(slavePath, O_RDWR | O_NOCTTY)
        guard slave >= 0 else { throw PTYError(what: "open \(slavePath): \(String(cString: strerror(errno)))") }
        let outPath = NSTemporaryDirectory() + "/pty-out-\(UInt64.random(in: 0...UInt64.max))"
        let out = open(outPath, O_RDWR | O_CREAT | O_TRUNC, 0o600)
        unlink(outPath)
        defer { close(out) }
        let p = Process()
        p.executableURL = URL(fileURLWithPath: exe)
        p.arguments = args
        p.environment = environment
        p.standardInput = FileHandle.nullDevice
        p.standardOutput = FileHandle(fileDescriptor: out, closeOnDealloc: false)
        p.standardError = FileHandle(fileDescriptor: slave, closeOnDealloc: false)
        try p.run()
        close(slave)
        var terminal: [UInt8] = []
        var buf = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = read(master, &buf, buf.count)
            if n > 0 {
                terminal += buf[0..<n]
            } else if n < 0 && errno == EINTR {
                continue
            } else {
                break  // EIO: every writer of the slave side has gone
            }
        }
        p.waitUntilExit()
        var stdout = [UInt8](repeating: 0, count: 1 << 20)
        let m = pread(out, &stdout, stdout.count, 0)
        return Result(
            status: p.terminationStatus, stdout: String(decoding: stdout[0..<max(0, m)], as: UTF8.self),
            terminal: String(decoding: terminal, as: UTF8.self))
    }
}

extension PseudoTerminal {
    /// A pseudo-terminal master and the path of its slave side.
    static func openMaster() throws -> (Int32, String) {
        #if canImport(Glibc)
            // posix_openpt/grantpt/unlockpt are not visible through Swift's Glibc module: the Linux ioctls.
            let master = open("/dev/ptmx", O_RDWR | O_NOCTTY)
            var unlock: Int32 = 0
            var number: UInt32 = 0
            guard master >= 0, ioctl(master, 0x4004_5431 /* TIOCSPTLCK */, &unlock) == 0,
                ioctl(master, 0x8004_5430 /* TIOCGPTN */, &number) == 0
            else { throw PTYError(what: "/dev/ptmx: \(String(cString: strerror(errno)))") }
            return (master, "/dev/pts/\(number)")
        #else
            let master = posix_openpt(O_RDWR | O_NOCTTY)
            guard master >= 0, grantpt(master) == 0, unlockpt(master) == 0, let name = ptsname(master) else {
                throw PTYError(what: "posix_openpt: \(String(cString: strerror(errno)))")
            }
            return (master, String(cString: name))
        #endif
    }
}

struct PTYError: Error {
    var what: String
}
