import ArgumentParser
import Foundation
import RCHCore
import RCHLoopback
import XcodeTreeGen

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// `rch-xcode fetch` (delta fetch into the host's artifact store) vs `rsync -az` of the job's artifact directory,
/// over one loopback sshd, in one run: the first fetch of a test-shaped result set, a refetch of the same result
/// served to a new job (a cache hit), and a result that shares 90 % of its files with the fetched one.
///
/// How the results get there is the lane's own path: a job whose executor fails gives the job_key the host
/// computes for the tree; the result set is recorded under that key on the worker (`rch-worker store
/// record-result`, run over ssh as the worker's account); the next `rch-xcode run --no-fetch` is a cache hit,
/// materialised by the worker into a new job; then `rch-xcode fetch` is measured. rsync copies the same result's
/// whole artifact set (a verified export on the worker: a hit's job directory holds only its own records) into
/// one destination kept across the three steps (its basis, as the host store is ours).
/// Bytes: ours from the transport's counters (`wire.bytes_total`), rsync's from `--stats` sent + received.
struct FetchBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "fetch",
        abstract: "Fetch vs rsync -az of the artifact directory: first fetch, refetch of a hit, a 90 %-shared result.")

    @Option(help: "Path of the rch-xcode binary.") var rch: String
    @Option(help: "Path of the rch-worker binary (the forced command).") var worker: String
    @Option(help: "Working directory.") var work: String = "bench-out"
    @Option(help: "Scale of the result set (1 ≈ 239 MB, 3,000 files).") var scale: Double = 1
    @Option(help: "Account the worker side runs as (root only; created if missing). Empty: the caller's.")
    var account = "rch-bench"

    static let argv = ["test", "-scheme", "App", "-destination", "platform=iOS Simulator,name=iPhone 16"]

    func run() throws {
        let base = URL(fileURLWithPath: work).standardizedFileURL.path + "/fetch"
        removeTree(base)
        let ws = base + "/worker"
        let peerDest = base + "/rsync-dest"
        for d in [base, ws, peerDest] { try Syscalls.makeDirectories(d) }
        let service = account.isEmpty ? nil : try ServiceAccount.ensure(account)
        try service?.own(ws)
        let config = base + "/worker.toml"
        try "[executor]\nkind = \"recording\"\n".write(
            toFile: config, atomically: true, encoding: .utf8)
        let sshd = try LoopbackSSHD(
            directory: base + "/sshd", forcedCommand: "\(worker) rpc --store \(ws) --config \(config)",
            user: service?.name)
        defer { sshd.stop() }
        let inventory = base + "/workers.toml"
        try sshd.inventoryEntry(name: "bench").write(toFile: inventory, atomically: true, encoding: .utf8)
        let ssh = ["/usr/bin/ssh"] + sshd.sshOptions(key: sshd.plainKey) + ["\(sshd.user)@127.0.0.1"]
        let lane = ["--worker", "bench", "--inventory", inventory, "--store", base + "/host"]

        let tree = base + "/tree"
        try XcodeTreeGen(seed: 1, scale: 0.05).makeTree(at: tree)
        let setA = base + "/results-a"
        let setB = base + "/results-b"

        /// A job of the tree as it is now (a miss: the recording executor runs and its result is cached): its
        /// job_key, cache namespace and artifact directory on the worker.
        func job() throws -> (key: String, namespace: String, artifacts: String) {
            let (_, out) = try capture(
                [rch, "run", tree, "--no-fetch", "--json", "--artifacts", base + "/runs"] + lane + ["--"] + Self.argv)
            let v = try JSONParser().parse(Array(out.utf8))
            guard let step = v["steps"]?.arrayValue?.first, step["cached"]?.boolValue == false,
                let key = step["job_key"]?.stringValue, let job = step["job_id"]?.stringValue,
                let namespace = try JSONParser().parse(try DurableFile.read("\(ws)/work/\(job)/artifacts/job.json"))[
                    "effective_config"]?["cache"]?["namespace"]?.stringValue
            else { throw BenchError("expected a job that ran: \(out.prefix(300))") }
            return (key, namespace, "\(ws)/work/\(job)/artifacts")
        }
        /// Replaces the job's cached result by `set` (the job's own files with a generated test result set laid
        /// over them), as the worker's account.
        func record(_ set: String, for job: (key: String, namespace: String, artifacts: String)) throws {
            let entry = "\(ws)/results/\(job.namespace)/\(job.key.prefix(2))/\(job.key).json"
            _ = try capture(ssh + ["rm", entry])
            _ = try capture(
                ssh + [
                    worker, "store", "record-result", set, "--job-key", job.key, "--executor-class", "recording",
                    "--namespace", job.namespace, "--store", ws, "--config", config,
                ])
        }
        /// A run that must be a cache hit; its job_id.
        func hit() throws -> String {
            let (_, out) = try capture(
                [rch, "run", tree, "--no-fetch", "--json", "--artifacts", base + "/runs"] + lane + ["--"] + Self.argv)
            let v = try JSONParser().parse(Array(out.utf8))
            guard v["steps"]?.arrayValue?.first?["cached"]?.boolValue == true,
                let job = v["steps"]?.arrayValue?.first?["job_id"]?.stringValue
            else {
                throw BenchError("expected a cache hit: \(out.prefix(300))")
            }
            return job
        }
        var n = 0
        func ours(_ job: String) throws -> (Double, Int64) {
            n += 1
            sync()
            let (t, out) = try capture([rch, "fetch", job, "--into", base + "/fetched-\(n)", "--json"] + lane)
            let v = try JSONParser().parse(Array(out.utf8))
            return (t, v["wire"]?["bytes_total"]?.intValue ?? -1)
        }
        /// rsync of the whole artifact set of `entry`'s result. A hit's job directory on the worker holds only
        /// the job's own records (the rest is served from the store by reference, §7), so the peer copies a
        /// full, verified export of the same result, made beforehand as the worker's account (untimed).
        func peer(_ entry: (key: String, namespace: String, artifacts: String)) throws -> (Double, Int64) {
            n += 1
            let source = "\(ws)/peer-source-\(n)"
            _ = try capture(
                ssh + [
                    worker, "store", "materialise-result", entry.key, "--namespace", entry.namespace,
                    "--executor-class", "recording", "--job-id", String(format: "job_p%09d", n), "--run-id",
                    "run_0000000001", "--into", source, "--store", ws,
                ])
            sync()
            let e = (["ssh"] + sshd.sshOptions(key: sshd.plainKey)).joined(separator: " ")
            // The host store publishes durably: rsync's writes are synced too.
            let (t, out) = try capture([
                "/bin/sh", "-c", "\"$0\" \"$@\" && sync -f '\(peerDest)'", "/usr/bin/rsync", "-az", "--delete",
                "--stats", "-e", e, "\(sshd.user)@127.0.0.1:\(source)/", peerDest + "/",
            ])
            return (t, rsyncBytes(out))
        }

        print("generating result sets (scale \(scale)) …")
        let job0 = try job()
        try ResultSet.overlay(job0.artifacts, at: setA, scale: scale)
        try record(setA, for: job0)
        let job1 = try hit()
        let first = try ours(job1)
        let firstPeer = try peer(job0)
        let job2 = try hit()
        let again = try ours(job2)
        let againPeer = try peer(job0)
        _ = try XcodeTreeGen(seed: 1, scale: 0.05).editTree(at: tree, count: 1)
        let edited = try job()
        try ResultSet.overlay(edited.artifacts, at: setB, scale: scale)
        let changed = try ResultSet.rewrite(setB, fraction: 0.1)
        try record(setB, for: edited)
        let job3 = try hit()
        let shared = try ours(job3)
        let sharedPeer = try peer(edited)

        let (files, bytes) = try SharedBench.size(setA)
        func pct(_ a: Int64, _ b: Int64) -> String { String(format: "%.2f %%", 100 * Double(a) / Double(b)) }
        print("")
        print("fetch benchmark over one loopback sshd: result set of \(files) files, \(bytes / 1_000_000) MB")
        print(
            "  peer: rsync -az --delete (+ sync -f) of the result's whole artifact set (a verified export on the worker) into one destination kept across the steps"
        )
        print(
            "  first fetch           ours \(first.1) B (\(format(first.0)))   rsync \(firstPeer.1) B (\(format(firstPeer.0)))   time ratio \(formatRatio(first.0 / firstPeer.0))"
        )
        print(
            "  refetch of a hit      ours \(again.1) B = \(pct(again.1, first.1)) of the first (goal ≤ 5 %)   rsync \(againPeer.1) B = \(pct(againPeer.1, firstPeer.1))   "
                + "time \(format(again.0)) vs \(format(againPeer.0)) = \(formatRatio(again.0 / againPeer.0))")
        print(
            "  90 % of files shared  ours \(shared.1) B = \(pct(shared.1, first.1)) of the first (goal ≤ 15 %)   rsync \(sharedPeer.1) B = \(pct(sharedPeer.1, firstPeer.1))   "
                + "time \(format(shared.0)) vs \(format(sharedPeer.0)) = \(formatRatio(shared.0 / sharedPeer.0))   (\(changed) files rewritten)"
        )
    }
}
