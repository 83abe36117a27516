import Foundation
import RCHBundle
import RCHCore
import RCHHost
import RCHJob
import RCHLoopback
import RCHProtocol
import RCHRun
import RCHStore
import RCHTestSupport
import XcodeTreeGen

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// A worker store + config, reachable as a local subprocess or through a real `sshd` on 127.0.0.1
/// (own host key, own authorized_keys with the forced command; stopped on release).
final class LaneFixture {
    let dir = TempDir()
    var workerStore: String { dir.sub("worker-store") }
    var hostStore: String { dir.sub("host-store") }
    var configPath: String { dir.sub("worker.toml") }
    var inventory: String { dir.sub("workers.toml") }
    let workerExe = TestPaths.executable("rch-worker")
    private var sshd: LoopbackSSHD?
    private var clients: [WorkerClient] = []

    /// Fakes of Apple's tools, first on the worker's PATH when the fixture was made with `fakeTools`.
    private(set) var fakes: FakeAppleTools?

    init(config: String = "", ssh: Bool, fakeTools: Bool = false) throws {
        if fakeTools { fakes = try FakeAppleTools(directory: dir.sub("apple-tools")) }
        try writeConfig(config)
        if ssh {
            try startSSHD()
        } else {
            try
                "[[workers]]\nname = \"w\"\ntransport = \"local\"\nstore = \"\(workerStore)\"\nconfig = \"\(configPath)\"\nbinary = \"\(workerExe)\"\n"
                .write(toFile: inventory, atomically: true, encoding: .utf8)
        }
    }

    /// The worker's PATH: the fakes first when there are any, else a system PATH without Xcode.
    var workerPath: String { fakes?.path ?? "/usr/local/bin:/usr/bin:/bin" }

    deinit {
        for c in clients { c.closeConnection() }
        sshd?.stop()
        // Let detached job runners finish before the directory goes away.
        for _ in 0..<100
        where (try? FileManager.default.contentsOfDirectory(atPath: workerStore + "/work/active"))?.isEmpty == false {
            usleep(50_000)
        }
    }

    /// Writes worker.toml: `text` under `[worker]` (it may open other tables). The executor kind is
    /// `recording` unless `text` sets one (the mock must always be chosen explicitly).
    func writeConfig(_ text: String, minFree: String = "0") throws {
        var body = text
        if !body.contains("kind =") && !body.contains("# no executor kind") {
            body =
                body.contains("[executor]")
                ? body.replacingOccurrences(of: "[executor]", with: "[executor]\nkind = \"recording\"")
                : body + "\n[executor]\nkind = \"recording\""
        }
        try ("[worker]\nname = \"test-worker\"\n" + body + "\n[gc]\nauto_gc_at = \"\"\nmin_free = \"\(minFree)\"\n")
            .write(toFile: configPath, atomically: true, encoding: .utf8)
    }

    func client(hostStore: String? = nil) throws -> WorkerClient {
        let c = try WorkerClient(
            worker: try WorkerInventory.find("w", path: inventory),
            hostStore: try LocalStore(root: hostStore ?? self.hostStore))
        clients.append(c)
        return c
    }

    func startSSHD() throws {
        let d = try LoopbackSSHD(
            directory: dir.sub("sshd"),
            forcedCommand: "PATH=\(workerPath) \(workerExe) rpc --store \(workerStore) --config \(configPath)")
        sshd = d
        try d.inventoryEntry(name: "w").write(toFile: inventory, atomically: true, encoding: .utf8)
    }

    /// Appends a key to the inventory's worker entry (the last table of the file).
    func pinInventory(_ line: String) throws {
        let text = try String(contentsOfFile: inventory, encoding: .utf8)
        try (text + line + "\n").write(toFile: inventory, atomically: true, encoding: .utf8)
    }

    /// Runs `rch-worker` on this fixture's store (and config, with `config`) with the worker's PATH.
    func worker(_ args: [String], config: Bool = true) throws -> Sub.Result {
        try Sub.run(
            "/usr/bin/env",
            ["PATH=\(workerPath)", workerExe] + args + ["--store", workerStore]
                + (config ? ["--config", configPath] : []))
    }

    /// The ssh command line that reaches the forced command (for raw-byte tests).
    var sshArgv: [String] { ["/usr/bin/ssh"] + sshd!.sshOptions(key: sshd!.laneKey) + ["127.0.0.1"] }

    /// Sends raw bytes to one `rch-worker rpc` (local process) and returns the parsed reply header.
    func raw(_ bytes: [UInt8], via argv: [String]? = nil) throws -> JSONValue {
        let t = ProcessTransport(argv: argv ?? [workerExe, "rpc", "--store", workerStore, "--config", configPath])
        let file = dir.sub("raw-" + String(UInt64.random(in: 0...UInt64.max), radix: 36))
        FileManager.default.createFile(atPath: file, contents: Data(bytes))
        defer { unlink(file) }
        return try t.exchange(header: [], body: (file, UInt64(bytes.count))).header
    }

    /// A sample repository (the project's generator at a small scale).
    func tree(_ name: String = "repo", scale: Double = 0.05) throws -> String {
        let root = dir.sub(name)
        try XcodeTreeGen(scale: scale).makeTree(at: root)
        return root
    }

    /// Pushes `root` through a new client and prepares (does not submit) a job of `argv`.
    func job(_ root: String, argv: [String] = iPhone) throws -> (
        client: WorkerClient, push: PushReport, inputs: JobKeyInputs, spec: JobSpec
    ) {
        let c = try client()
        let push = try Pusher(client: c).push(root: root, options: BundleOptions())
        let inputs = try JobInputsBuilder.build(
            argv: argv, sourceSHA256: push.sourceSHA256, capabilities: c.capabilities!)
        let spec = try JobSpec(
            runID: Identifier.generate(), jobID: Identifier.generate(), inputs: inputs, effectiveConfig: [:])
        return (c, push, inputs, spec)
    }

    func edit(_ root: String, files: Int = 1) throws {
        _ = try XcodeTreeGen(scale: 0.05).editTree(at: root, count: files)
    }

    /// Every file under the worker store except locks and capabilities (to prove "nothing written";
    /// empty directories do not count).
    func snapshot() -> [String] {
        let e = FileManager.default.enumerator(atPath: workerStore)
        var out: [String] = []
        while let p = e?.nextObject() as? String {
            if e?.fileAttributes?[.type] as? FileAttributeType != .typeDirectory && !p.hasPrefix("locks")
                && p != "capabilities.json"
            {
                out.append(p)
            }
        }
        return out.sorted()
    }
}

/// Child processes without Foundation's Process (whose child reaping does not mix with posix_spawn +
/// waitpid in one test process): stdout/stderr through temp files.
enum Sub {
    struct Result {
        var status: Int32
        var stdout: String
        var stderr: String
    }

    @discardableResult
    static func run(_ exe: String, _ args: [String]) throws -> Result {
        let r = try Spawn.run(exe, args)
        let status: Int32
        switch r.exit {
        case .code(let c): status = c
        case .signal(let s): status = 128 + s
        }
        return Result(status: status, stdout: r.stdout, stderr: r.stderr)
    }

    static func validate(_ file: String, schema: String) throws -> (status: Int32, output: String) {
        let r = try run(
            "/usr/bin/env",
            [
                "check-jsonschema", "--schemafile", TestPaths.packageRoot + "/schemas/rch-xcode/\(schema).schema.json",
                file,
            ])
        return (r.status, r.stdout + r.stderr)
    }
}

let iPhone = ["build", "-scheme", "App", "-destination", "platform=iOS Simulator,name=iPhone 16"]
let iPhoneTest = ["test", "-scheme", "App", "-destination", "platform=iOS Simulator,name=iPhone 16"]
