import ArgumentParser
import Foundation
import RCHCore
import RCHHost
import RCHLoopback
import RCHProtocol
import RCHStore
import RCHWorker
import SystemPackage
import XcodeTreeGen

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// `rch-xcode push` vs `rsync -az --compress-choice=zstd` over the same loopback sshd.
struct PushBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "push",
        abstract:
            "Push vs rsync over one loopback sshd: first push, unchanged, one-file edits; has_source for 10,000 digests."
    )

    @Option(help: "Path of the rch-xcode binary.") var rch: String
    @Option(help: "Path of the rch-worker binary (the forced command).") var worker: String
    @Option(help: "Working directory.") var work: String = "bench-out"
    @Option(help: "Tree scale (1 = ~120 MB, 3,900 files).") var scale: Double = 1
    @Option(help: "One-file edits to measure (medians reported).") var edits: Int = 5
    @Option(help: "First pushes to measure, each into an emptied worker store over a new SSH connection (median).")
    var firstRuns: Int = 3
    @Option(
        help:
            "Account both sides log in as on the worker (root only; created if missing, shell /bin/sh). Empty: the caller's."
    )
    var account = "rch-bench"

    func run() throws {
        let base = URL(fileURLWithPath: work).standardizedFileURL.path + "/push"
        removeTree(base)
        try Syscalls.makeDirectories(base)
        let tree = base + "/tree"
        let host = base + "/host"
        let ws = base + "/worker"
        let dest = base + "/rsync-dest"
        print("generating a scale-\(scale) tree …")
        try XcodeTreeGen(seed: 1, scale: scale).makeTree(at: tree)
        try Syscalls.makeDirectories(dest)
        try Syscalls.makeDirectories(ws)
        let service = account.isEmpty ? nil : try ServiceAccount.ensure(account)
        try service?.own(ws)
        try service?.own(dest)
        let sshd = try LoopbackSSHD(
            directory: base + "/sshd", forcedCommand: "\(worker) rpc --store \(ws)", user: service?.name)
        let inventory = base + "/workers.toml"
        try sshd.inventoryEntry(name: "bench").write(toFile: inventory, atomically: true, encoding: .utf8)
        defer {
            closeMaster(inventory)
            sshd.stop()
        }

        // rsync gets exactly the files the bundle selects.
        let list = base + "/files.txt"
        _ = try capture([rch, "bundle", tree, "--store", base + "/list-store", "--manifest", base + "/m.json"])
        let m = try JSONParser().parse(try DurableFile.read(base + "/m.json"))
        try ((m["entries"]?.arrayValue ?? []).compactMap { $0["path"]?.stringValue }.joined(separator: "\n") + "\n")
            .write(toFile: list, atomically: true, encoding: .utf8)
        let ssh = (["ssh"] + sshd.sshOptions(key: sshd.plainKey)).joined(separator: " ")
        // Our worker publishes durably: rsync's writes are synced too (`sync -f` of the destination's filesystem).
        let rsync = [
            "/bin/sh", "-c", "\"$0\" \"$@\" && sync -f '\(dest)'", "/usr/bin/rsync", "-az", "--compress-choice=zstd",
            "--stats", "--files-from=\(list)", "-e", ssh, tree + "/",
            "\(sshd.user)@127.0.0.1:\(dest)/",
        ]
        let push = [rch, "push", tree, "--worker", "bench", "--inventory", inventory, "--store", host, "--json"]
        Thread.sleep(forTimeInterval: 2.5)  // out of the stat cache's racy window

        // Each measured command starts with no dirty pages left by the previous one (untimed). Twice: on a
        // loop-mounted filesystem the first sync's writes land dirty in the backing file's filesystem.
        func settle() {
            sync()
            sync()
        }
        func ours() throws -> (Double, Int64, Int64, String) {
            settle()
            let (t, out) = try capture(push)
            let v = try JSONParser().parse(Array(out.utf8))
            return (
                t, v["wire"]?["bytes_total"]?.intValue ?? -1, v["wire"]?["round_trips"]?.intValue ?? -1,
                v["method"]?.stringValue ?? "?"
            )
        }
        func peer() throws -> (Double, Int64) {
            settle()
            let (t, out) = try capture(rsync)
            return (t, rsyncBytes(out))
        }

        // First pushes: each one from scratch on both sides — an empty worker store and a new host store (so
        // a fresh probe), an empty rsync destination, and no SSH master connection left from before; who goes
        // first alternates. The previous run's directories are moved aside, not deleted, until the benchmark
        // ends: ext4 does not reuse an inode freed less than a minute ago, and creating thousands of files
        // right after deleting thousands in the same block group scans past every one of them.
        var firsts: [(Double, Int64, Int64, String)] = []
        var peerFirsts: [(Double, Int64)] = []
        for run in 0..<max(1, firstRuns) {
            if run > 0 {
                for d in [ws, dest, host] where access(d, F_OK) == 0 {
                    let aside = base + "/.previous-\(run)-" + (d as NSString).lastPathComponent
                    guard rename(d, aside) == 0 else { throw BenchError("cannot move \(d) aside") }
                }
                for d in [ws, dest] {
                    try Syscalls.makeDirectories(d)
                    try service?.own(d)
                }
                closeMaster(inventory)
            }
            if run % 2 == 0 {
                firsts.append(try ours())
                peerFirsts.append(try peer())
            } else {
                peerFirsts.append(try peer())
                firsts.append(try ours())
            }
        }
        let (t1, b1, r1, m1) = firsts.sorted { $0.0 < $1.0 }[firsts.count / 2]
        let (p1, pb1) = peerFirsts.sorted { $0.0 < $1.0 }[peerFirsts.count / 2]
        let (t2, b2, r2, m2) = try ours()
        let (p2, pb2) = try peer()
        var times: [Double] = []
        var bytes: [Int64] = []
        var rts: [Int64] = []
        var ptimes: [Double] = []
        var pbytes: [Int64] = []
        var methods = Set<String>()
        for _ in 0..<edits {
            _ = try XcodeTreeGen(seed: 1, scale: scale).editTree(at: tree, count: 1)
            Thread.sleep(forTimeInterval: 2.5)
            let (t, b, r, method) = try ours()
            let (pt, pb) = try peer()
            times.append(t)
            bytes.append(b)
            rts.append(r)
            ptimes.append(pt)
            pbytes.append(pb)
            methods.insert(method)
        }
        func med<T: Comparable>(_ a: [T]) -> T { a.sorted()[a.count / 2] }
        for name in (try? Directory.list(base)) ?? [] where name.hasPrefix(".previous-") {
            removeTree(base + "/" + name)
        }
        let hs = try hasSourceTiming(store: ws)
        let floor = try sessionFloor(sshd, user: sshd.user, base: base)
        let caller = String(cString: getpwuid(getuid())!.pointee.pw_name)
        let callerFloor = caller == sshd.user ? nil : try sessionFloor(sshd, user: caller, base: base)

        print("")
        print(
            "push benchmark over one loopback sshd, scale \(scale) tree (\(m["file_count"]?.intValue ?? 0) files, \(m["total_bytes"]?.intValue ?? 0) bytes)"
        )
        print(
            "  peer: rsync -az --compress-choice=zstd (+ sync -f) over the same sshd, same file list; bytes = rsync --stats sent + received"
        )
        print(
            "  both log in as \(sshd.user); a new session on a warm control master (ssh … true) costs \(format(floor))"
                + (callerFloor.map { " (as \(caller), whose shell start-up files run: \(format($0)))" } ?? ""))
        print(
            "  first push      ours \(b1) B in \(r1) round trips (\(m1), \(format(t1)))   rsync \(pb1) B (\(format(p1)))   bytes ratio \(formatRatio(Double(b1) / Double(pb1)))   (target ≤ 1.0)   median of \(firsts.count)"
        )
        print(
            "  unchanged       ours \(b2) B in \(r2) round trip(s) (\(m2), \(format(t2)))   rsync \(pb2) B (\(format(p2)))   (target: 1 round trip, ≤ 4096 B)"
        )
        print(
            "    time ratio first \(formatRatio(t1 / p1)) (goal ≤ 0.8)   unchanged \(formatRatio(t2 / p2)) (goal ≤ 0.1)"
        )
        print(
            "  one-file edit   ours \(med(bytes)) B in \(med(rts)) round trips (\(methods.sorted().joined(separator: ",")), \(format(med(times))))   "
                + "rsync \(med(pbytes)) B (\(format(med(ptimes))))   median of \(edits)")
        print(
            "    bytes ratio \(formatRatio(Double(med(bytes)) / Double(med(pbytes))))   (target ≤ 0.1)   time ratio \(formatRatio(med(times) / med(ptimes)))   (goal ≤ 0.3)"
        )
        print(
            "  has_source, 10,000 digests (\(hs.present) present), server side: \(format(hs.seconds)) median of 9   (target ≤ 20 ms)"
        )
    }

    /// Ends the SSH master connection `rch-xcode` keeps to the bench worker, so the next push connects anew
    /// as a first push does.
    func closeMaster(_ inventory: String) {
        try? WorkerInventory.find("bench", path: inventory).closeMaster(mux: WorkerClient.muxDirectoryPath)
    }

    /// Median wall time of `ssh … true` as `user` over a control master already up (the plain key).
    func sessionFloor(_ sshd: LoopbackSSHD, user: String, base: String) throws -> Double {
        let mux = ["-o", "ControlPath=\(base)/mux-\(user)", "-o", "ControlMaster=auto", "-o", "ControlPersist=60"]
        let ssh = ["/usr/bin/ssh"] + sshd.sshOptions(key: sshd.plainKey) + mux
        var samples: [Double] = []
        for _ in 0..<8 {
            samples.append(try capture(ssh + ["\(user)@127.0.0.1", "true"]).0)
        }
        _ = try? Spawn.run(ssh[0], Array(ssh.dropFirst()) + ["-O", "exit", "\(user)@127.0.0.1"])
        return samples.dropFirst().sorted()[3]
    }

    /// Times the worker's handling of one `has_source` request with 10,000 digests (in process: parse,
    /// validate, look up, reply), the sources in the store included.
    func hasSourceTiming(store root: String) throws -> (seconds: Double, present: Int) {
        let store = try LocalStore(root: root)
        var digests =
            (try? Directory.list(store.sourcesDirectory))?.flatMap { shard in
                ((try? Directory.list(store.sourcesDirectory + "/" + shard)) ?? []).compactMap {
                    SHA256Digest(hex: $0.prefix(64))
                }
            } ?? []
        let present = digests.count
        var rng = SplitMix64(seed: 7)
        while digests.count < 10_000 {
            digests.append(SHA256Digest(bytes: (0..<4).flatMap { _ in withUnsafeBytes(of: rng.next()) { Array($0) } }))
        }
        let request = RPCRequest(
            protocolVersion: 1, op: .has_source,
            payload: ["source_sha256s": .array(digests.shuffled().map { .string($0.hex) })])
        let file = root + "/../has-source-request.json"
        _ = try DurableFile.write(request.headerLine, to: file, durable: false)
        var config = WorkerConfig()
        config.executorKind = "recording"
        let server = WorkerServer(store: store, config: config, runnerCommand: ["/bin/false"])
        var samples: [Double] = []
        for _ in 0..<9 {
            let input = try FileDescriptor.open(FilePath(file), .readOnly)
            let output = try FileDescriptor.open(FilePath("/dev/null"), .writeOnly)
            let start = DispatchTime.now().uptimeNanoseconds
            let (status, _) = server.serve(input: input, output: output, originalCommand: nil)
            samples.append(Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9)
            try input.close()
            try output.close()
            guard status == 0 else { throw BenchError("has_source failed") }
        }
        return (samples.sorted()[samples.count / 2], present)
    }
}

/// Runs argv with stdout captured and returns wall time and stdout.
func capture(_ argv: [String]) throws -> (Double, String) {
    let r = try Spawn.run(argv[0], Array(argv.dropFirst()))
    guard r.exit == .code(0) else { throw BenchError("\(argv.joined(separator: " ").prefix(200)) failed: \(r.exit)") }
    return (r.seconds, r.stdout)
}
