import Foundation
import RCHCore
import RCHJob
import RCHStore

/// One worker of the host inventory (`~/.config/rch/workers.toml`, `[[workers]]` tables).
///
/// | key | default | meaning |
/// | --- | --- | --- |
/// | `name` | (required) | how commands refer to it (`--worker NAME`) |
/// | `transport` | `"ssh"` | `ssh`, or `local` (a `rch-worker rpc` subprocess on this machine) |
/// | `host`, `user`, `port` | —, login user, 22 | ssh destination |
/// | `identity_file`, `known_hosts` | ssh defaults | `-i` and `UserKnownHostsFile` (host keys are always checked) |
/// | `ssh_options` | `[]` | extra ssh arguments |
/// | `remote_command` | `"rch-worker rpc"` | what ssh asks to run (a forced command overrides it) |
/// | `store`, `config`, `binary` | embedded store, none, `rch-worker` next to `rch-xcode` | local transport |
/// | `probe_ttl_seconds` | 600 | how long a cached probe (capabilities) is trusted |
/// | `connect_timeout_seconds` | 15 | ssh `ConnectTimeout` (`[timeouts] connect_seconds` of a run overrides it) |
/// | `attestation_pubkey_fingerprint` | none | pins the worker's attestation key (64 hex, `rch-worker identity` prints it) |
/// | `tags` | `["macos", "xcode"]` | what fleet selection filters on (a run requires `macos`, `xcode` and the repo's `[worker] tags`) |
/// | `priority` | 0 | fleet selection order: higher first, then name |
///
/// Without an entry named `local`, `--worker local` is the embedded worker: a local store under
/// `~/.local/share/rch/worker-store` (or `$RCH_WORKER_STORE`), configured by `~/.config/rch/worker.toml`
/// (or `$RCH_WORKER_CONFIG`).
public struct WorkerEntry: Sendable {
    public var name: String
    public var transport = "ssh"
    public var host: String?
    public var user: String?
    public var port: Int?
    public var identityFile: String?
    public var knownHosts: String?
    public var sshOptions: [String] = []
    public var remoteCommand = "rch-worker rpc"
    public var store: String?
    public var config: String?
    public var binary: String?
    public var probeTTLSeconds: Int64 = 600
    public var connectTimeoutSeconds: Int64 = 15
    /// The pinned attestation key fingerprint (SHA-256 of the raw Ed25519 public key, 64 hex).
    public var attestationPubkeyFingerprint: String?
    /// Fleet selection: the worker's tags (sorted, unique) and its priority (higher is chosen first).
    public var tags: [String] = WorkerEntry.defaultTags
    public var priority: Int64 = 0
    /// Whether this entry comes from the inventory file (the embedded `local` does not).
    public var fromInventory = false

    public static let defaultTags = ["macos", "xcode"]

    public init(name: String) { self.name = name }

    /// The embedded local worker.
    public static func embedded(environment: [String: String] = ProcessInfo.processInfo.environment) -> WorkerEntry {
        var w = WorkerEntry(name: "local")
        w.transport = "local"
        w.store = environment["RCH_WORKER_STORE"] ?? (UserDirectories.dataHome(environment) + "/rch/worker-store")
        if let c = environment["RCH_WORKER_CONFIG"], !c.isEmpty { w.config = c }
        return w
    }

    /// The command line of one RPC exchange.
    public func rpcArgv(mux: String?) throws -> [String] {
        switch transport {
        case "local":
            let bin = binary ?? Self.siblingWorkerBinary()
            var argv = [bin, "rpc"]
            if let store { argv += ["--store", store] }
            if let config { argv += ["--config", config] }
            return argv
        default:
            guard let host else { throw InventoryError("worker '\(name)' has no host") }
            // ConnectTimeout bounds an unreachable worker; ServerAlive* notice a connection that died mid-run.
            var argv = [
                Self.which("ssh") ?? "/usr/bin/ssh", "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=yes", "-T",
                "-x", "-a",
                "-o", "ConnectTimeout=\(connectTimeoutSeconds)", "-o", "ServerAliveInterval=15", "-o",
                "ServerAliveCountMax=3",
            ]
            if let mux {
                argv += [
                    "-o", "ControlMaster=auto", "-o", "ControlPath=\(mux)/\(controlName)", "-o", "ControlPersist=600",
                ]
            }
            if let port { argv += ["-p", String(port)] }
            if let identityFile { argv += ["-i", Self.expand(identityFile), "-o", "IdentitiesOnly=yes"] }
            if let knownHosts { argv += ["-o", "UserKnownHostsFile=\(Self.expand(knownHosts))"] }
            argv += sshOptions
            argv += SSHDefaults.cipherOptions
            argv.append(user.map { "\($0)@\(host)" } ?? host)
            argv.append(remoteCommand)
            return argv
        }
    }

    /// The control socket's name: the digest of everything that decides where, as whom, with which keys
    /// and options ssh connects and what it runs — never ssh's `%C` (local host, host, port and user only),
    /// which would let an entry reuse a master opened for another entry to the same account: another key,
    /// hence another forced command and store, or a host key checked against another `known_hosts`.
    var controlName: String {
        var parts = [host ?? "", user ?? "", port.map(String.init) ?? "", identityFile ?? "", knownHosts ?? ""]
        parts += [remoteCommand, String(sshOptions.count)] + sshOptions + SSHDefaults.cipherOptions
        let digest = SHA256Digest.of(parts.joined(separator: "\u{0}").utf8)
        return "m-" + String(digest.hex.prefix(40))
    }

    /// Ends the control master of this entry under `mux` (`ssh -O exit`), if one is running.
    public func closeMaster(mux: String) {
        guard transport == "ssh", var argv = try? rpcArgv(mux: mux) else { return }
        argv.removeLast()  // the remote command
        argv.insert(contentsOf: ["-O", "exit"], at: 1)
        _ = try? Spawn.run(argv[0], Array(argv.dropFirst()))
    }

    /// `rch-worker` next to the running executable, else on PATH.
    public static func siblingWorkerBinary() -> String {
        let me = Bundle.main.executablePath ?? CommandLine.arguments[0]
        let sibling = (me as NSString).deletingLastPathComponent + "/rch-worker"
        if FileManager.default.isExecutableFile(atPath: sibling) { return sibling }
        return which("rch-worker") ?? "rch-worker"
    }

    static func which(_ name: String) -> String? {
        for dir in (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin").split(separator: ":") {
            let p = "\(dir)/\(name)"
            if FileManager.default.isExecutableFile(atPath: p) { return p }
        }
        return nil
    }

    static func expand(_ p: String) -> String { p.hasPrefix("~/") ? NSHomeDirectory() + String(p.dropFirst(1)) : p }
}

public struct InventoryError: LaneError {
    public let message: String
    public init(_ m: String) { message = m }
    public var failureKind: FailureKind { .ssh }
    public var failureSubkind: String? { "INVENTORY" }
    public var exitCode: Int32 { CommandExit.config }
    public var description: String { message }
}

public enum WorkerInventory {
    public static func defaultPath(environment: [String: String] = ProcessInfo.processInfo.environment) -> String {
        if let p = environment["RCH_WORKERS"], !p.isEmpty { return p }
        return UserDirectories.configHome(environment) + "/rch/workers.toml"
    }

    /// Every worker of the inventory file (plus the embedded `local` unless the file defines one).
    public static func load(_ path: String? = nil) throws -> [WorkerEntry] {
        let file = path ?? defaultPath()
        if let path, !FileManager.default.fileExists(atPath: path) {
            throw InventoryError(
                "the inventory \(path) does not exist; give an existing workers.toml (--inventory, $RCH_WORKERS)")
        }
        var out: [WorkerEntry] = []
        let parsed: Config.Layer?
        do { parsed = try Config.load(.host, path: file) } catch let e as JobKeyError {
            throw InventoryError("the inventory \(file) cannot be read: \(e.message)")
        }
        if let layer = parsed {
            for (i, v) in (layer.value["workers"]?.arrayValue ?? []).enumerated() {
                guard let o = v.objectValue, let name = o["name"]?.stringValue ?? o["id"]?.stringValue, !name.isEmpty
                else {
                    throw InventoryError("\(file): workers[\(i)] needs a name")
                }
                var w = WorkerEntry(name: name)
                w.transport = o["transport"]?.stringValue ?? "ssh"
                guard ["ssh", "local"].contains(w.transport) else {
                    throw InventoryError("\(file): worker '\(name)': transport must be ssh or local")
                }
                w.host = o["host"]?.stringValue
                w.user = o["user"]?.stringValue
                w.port = o["port"]?.intValue.map { Int($0) }
                w.identityFile = o["identity_file"]?.stringValue
                w.knownHosts = o["known_hosts"]?.stringValue
                w.sshOptions = (o["ssh_options"]?.arrayValue ?? []).compactMap(\.stringValue)
                w.remoteCommand = o["remote_command"]?.stringValue ?? w.remoteCommand
                w.store = o["store"]?.stringValue.map(WorkerEntry.expand)
                w.config = o["config"]?.stringValue.map(WorkerEntry.expand)
                w.binary = o["binary"]?.stringValue.map(WorkerEntry.expand)
                w.probeTTLSeconds = o["probe_ttl_seconds"]?.intValue ?? w.probeTTLSeconds
                if let c = o["connect_timeout_seconds"] {
                    guard let n = c.intValue, n > 0 else {
                        throw InventoryError(
                            "\(file): worker '\(name)': connect_timeout_seconds must be a positive integer")
                    }
                    w.connectTimeoutSeconds = n
                }
                if let pin = o["attestation_pubkey_fingerprint"] {
                    guard let hex = pin.stringValue, SHA256Digest(hex: hex) != nil else {
                        throw InventoryError(
                            "\(file): worker '\(name)': attestation_pubkey_fingerprint must be 64 lowercase hex characters"
                        )
                    }
                    w.attestationPubkeyFingerprint = hex
                }
                if let t = o["tags"] {
                    guard let list = t.arrayValue?.compactMap(\.stringValue), list.count == t.arrayValue?.count,
                        list.allSatisfy({ Identifier.isValid($0, .namespace) })
                    else {
                        throw InventoryError(
                            "\(file): worker '\(name)': tags must be a list of names (letters, digits, . _ -)")
                    }
                    w.tags = Array(Set(list)).sorted()
                }
                if let p = o["priority"] {
                    guard let n = p.intValue else {
                        throw InventoryError("\(file): worker '\(name)': priority must be an integer")
                    }
                    w.priority = n
                }
                w.fromInventory = true
                if out.contains(where: { $0.name == name }) {
                    throw InventoryError("\(file): two workers are named '\(name)'; names must be unique")
                }
                if w.transport == "ssh" && w.host == nil {
                    throw InventoryError("\(file): worker '\(name)' needs a host")
                }
                out.append(w)
            }
        }
        if !out.contains(where: { $0.name == "local" }) { out.append(.embedded()) }
        return out
    }

    public static func find(_ name: String, path: String? = nil) throws -> WorkerEntry {
        let all = try load(path)
        guard let w = all.first(where: { $0.name == name }) else {
            throw InventoryError(
                "no worker named '\(name)' in \(path ?? defaultPath()) (known: \(all.map(\.name).joined(separator: ", ")))"
            )
        }
        return w
    }
}
