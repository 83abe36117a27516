import Foundation
import RCHCore
import SystemPackage

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// A local account to run the worker side of a benchmark as, the way a worker is deployed: its own user
/// with a plain `/bin/sh` and an empty home, so an SSH session costs what sshd costs and not what the
/// caller's shell start-up files cost. (`sshd` runs every command through the account's shell, and bash
/// reads `~/.bashrc` when started by sshd: on the development VM root's `~/.bashrc` runs `pyenv init`,
/// 80–95 ms per session — for rsync as much as for us.)
///
/// Linux only (`useradd`), and only as root; ``ensure(_:home:)`` returns nil otherwise.
public struct ServiceAccount: Sendable {
    public let name: String
    public let uid: uid_t
    public let gid: gid_t

    /// Creates `name` if missing (system account, shell `/bin/sh`, home `/var/lib/<name>`, password field `*` —
    /// not locked, so sshd without PAM lets a key in) and returns it; an existing account is used as it is.
    public static func ensure(_ name: String) throws -> ServiceAccount? {
        #if os(Linux)
            guard getuid() == 0, access("/usr/sbin/useradd", X_OK) == 0 else { return nil }
            let home = "/var/lib/" + name
            if getpwnam(name) == nil {
                let r = try Spawn.run(
                    "/usr/sbin/useradd",
                    [
                        "--system", "--shell", "/bin/sh", "--home-dir", home, "--create-home", "-p", "*",
                        name,
                    ])
                guard r.exit == .code(0) else {
                    throw SystemError("useradd \(name): \(r.stderr)", path: home, errno: .permissionDenied)
                }
            }
            guard let pw = getpwnam(name) else { return nil }
            return ServiceAccount(name: name, uid: pw.pointee.pw_uid, gid: pw.pointee.pw_gid)
        #else
            return nil
        #endif
    }

    /// Makes `path` (not what is below it) belong to the account.
    public func own(_ path: String) throws {
        guard chown(path, uid, gid) == 0 else {
            throw SystemError("chown to \(name)", path: path, errno: Errno(rawValue: errno))
        }
    }
}
