import Foundation
import RCHCore

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// A private `sshd` on 127.0.0.1 for tests and benchmarks: its own host key, its own authorized_keys
/// holding a forced-command key (the lane's `rch-worker rpc …`) and an unrestricted key (for peers such
/// as rsync), a random free port; stopped by ``stop()`` or on release.
public final class LoopbackSSHD {
    public let directory: String
    public private(set) var port = 0
    private var pid: pid_t?

    public var hostKey: String { directory + "/host_key" }
    /// The key bound to the forced command.
    public var laneKey: String { directory + "/lane_key" }
    /// An unrestricted key (runs any command).
    public var plainKey: String { directory + "/plain_key" }
    public var knownHosts: String { directory + "/known_hosts" }
    /// The account both keys log in as: the caller's own unless another was given.
    public let user: String

    /// - Parameters:
    ///   - forcedCommand: what the lane key runs (e.g. `/path/rch-worker rpc --store S --config C`).
    ///   - user: the account to log in as (default: the caller's); another needs root (see ``ServiceAccount``).
    public init(directory: String, forcedCommand: String, user: String? = nil) throws {
        self.directory = directory
        self.user = user ?? String(cString: getpwuid(getuid())!.pointee.pw_name)
        try Syscalls.makeDirectories(directory)
        for key in [hostKey, laneKey, plainKey] where access(key, F_OK) != 0 {
            try Self.run("/usr/bin/ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", key])
        }
        let lane = try Self.read(laneKey + ".pub")
        let plain = try Self.read(plainKey + ".pub")
        try "command=\"\(forcedCommand)\",restrict \(lane)\n\(plain)\n".write(
            toFile: directory + "/authorized_keys", atomically: true, encoding: .utf8)
        if getuid() == 0 { mkdir("/run/sshd", 0o755) }
        for _ in 0..<20 {
            port = Int.random(in: 20000...60000)
            try """
            Port \(port)
            ListenAddress 127.0.0.1
            HostKey \(hostKey)
            AuthorizedKeysFile \(directory)/authorized_keys
            PidFile \(directory)/sshd.pid
            StrictModes no
            PasswordAuthentication no
            KbdInteractiveAuthentication no
            UsePAM no
            PermitRootLogin prohibit-password
            MaxStartups 100
            MaxSessions 100
            LogLevel ERROR

            """.write(toFile: directory + "/sshd_config", atomically: true, encoding: .utf8)
            let devnull = open("/dev/null", O_RDWR | O_CLOEXEC)
            defer { close(devnull) }
            let p = try Spawn.start(
                "/usr/sbin/sshd", ["-D", "-e", "-f", directory + "/sshd_config"], stdin: devnull, stdout: devnull,
                stderr: devnull)
            var exited = false
            for _ in 0..<150 {
                if Self.canConnect(port) { break }
                usleep(20_000)
                if Spawn.poll(p) != nil {
                    exited = true
                    break
                }
            }
            if !exited && Self.canConnect(port) {
                pid = p
                break
            }
            kill(p, SIGKILL)
            _ = Spawn.poll(p)
        }
        guard pid != nil else { throw SystemError("start sshd", path: directory, errno: .connectionRefused) }
        try "[127.0.0.1]:\(port) \(try Self.read(hostKey + ".pub"))\n".write(
            toFile: knownHosts, atomically: true, encoding: .utf8)
    }

    deinit { stop() }

    public func stop() {
        guard let p = pid else { return }
        kill(p, SIGTERM)
        for _ in 0..<100 where Spawn.poll(p) == nil { usleep(20_000) }
        kill(p, SIGKILL)
        _ = Spawn.poll(p)
        pid = nil
    }

    /// ssh options (before the destination) for `key`, with the lane's cipher preference (so the benchmarks'
    /// peers move their bytes through ssh exactly as the lane does).
    public func sshOptions(key: String) -> [String] {
        [
            "-o", "BatchMode=yes", "-o", "UserKnownHostsFile=\(knownHosts)", "-o", "StrictHostKeyChecking=yes", "-i",
            key, "-o", "IdentitiesOnly=yes",
            "-p", String(port),
        ] + SSHDefaults.cipherOptions
    }

    /// A `workers.toml` entry named `name` that reaches the forced command.
    public func inventoryEntry(name: String) -> String {
        """
        [[workers]]
        name = "\(name)"
        host = "127.0.0.1"
        port = \(port)
        user = "\(user)"
        identity_file = "\(laneKey)"
        known_hosts = "\(knownHosts)"

        """
    }

    static func read(_ p: String) throws -> String {
        try String(contentsOfFile: p, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
    }

    static func run(_ exe: String, _ args: [String]) throws {
        guard try Spawn.run(exe, args).exit == .code(0) else {
            throw SystemError(exe, path: args.last ?? "", errno: .ioError)
        }
    }

    public static func canConnect(_ port: Int) -> Bool {
        let s = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(s) }
        var a = sockaddr_in()
        a.sin_family = sa_family_t(AF_INET)
        a.sin_port = in_port_t(UInt16(port).bigEndian)
        a.sin_addr.s_addr = inet_addr("127.0.0.1")
        return withUnsafePointer(to: &a) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(s, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        } == 0
    }
}
