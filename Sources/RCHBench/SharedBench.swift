import ArgumentParser
import Foundation
import RCHCore
import XcodeTreeGen

/// The shared tier against `aws s3 sync` on the same Ceph RGW bucket, in one run: a cross-worker hit of a
/// test-shaped result set (pull into a fresh worker store + serve it into a job directory) vs syncing the same
/// files down; and the publish (off the job's path) vs syncing them up. Both sides end with `sync`, so neither
/// leaves write-back for the other to pay.
struct SharedBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "shared", abstract: "Cross-worker hit through a Ceph RGW bucket vs aws s3 sync.")

    @Option(help: "Path of the rch-worker binary to measure.") var worker: String
    @Option(help: "Working directory.") var work: String = "bench-out"
    @Option(help: "The env file scripts/rgw start wrote (endpoint, bucket, credentials).") var rgwEnv: String
    @Option(help: "Scale of the result set (1 ≈ 233 MB, 3,000 files).") var scale: Double = 1
    @Option(help: "Measured runs (median reported).") var runs: Int = 3
    @Option(help: "shared.concurrency of both workers (default: the worker's default; aws s3 sync uses 10).")
    var concurrency: Int?

    func run() throws {
        let fm = FileManager.default
        try fm.createDirectory(atPath: work, withIntermediateDirectories: true)
        let work = URL(fileURLWithPath: work).standardizedFileURL.path
        var env: [String: String] = [:]
        for line in try String(contentsOfFile: rgwEnv, encoding: .utf8).split(separator: "\n") {
            let kv = line.split(separator: "=", maxSplits: 1).map(String.init)
            if kv.count == 2 { env[kv[0]] = kv[1] }
        }
        guard let endpoint = env["RCH_S3_ENDPOINT"], let bucket = env["RCH_S3_BUCKET"] else {
            throw BenchError("\(rgwEnv) lacks RCH_S3_ENDPOINT / RCH_S3_BUCKET")
        }
        for k in ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"] { setenv(k, env[k] ?? "", 1) }
        setenv("AWS_DEFAULT_REGION", env["RCH_S3_REGION"] ?? "us-east-1", 1)
        let run = "b\(UInt32.random(in: 0..<UInt32.max))"
        let prefix = "bench/\(run)/"

        // The result set, recorded in worker A's store.
        let art = work + "/shared-results-\(scale)"
        let key = SHA256Digest.of(Array("shared-bench-key-\(scale)".utf8)).hex
        try ResultSet.make(at: art, scale: scale, key: key, source: key)
        let (files, bytes) = try Self.size(art)
        let storeA = work + "/shared-a"
        let storeB = work + "/shared-b"
        try? fm.removeItem(atPath: storeA)
        let creds = work + "/shared-credentials"
        try
            "AWS_ACCESS_KEY_ID=\(env["AWS_ACCESS_KEY_ID"] ?? "")\nAWS_SECRET_ACCESS_KEY=\(env["AWS_SECRET_ACCESS_KEY"] ?? "")\n"
            .write(toFile: creds, atomically: true, encoding: .utf8)
        chmod(creds, 0o600)
        func config(_ path: String, trusted: [String]) throws {
            let keys = trusted.map { "\"\($0)\"" }.joined(separator: ", ")
            try """
            [executor]
            kind = "recording"
            [shared]
            endpoint = "\(endpoint)"
            bucket = "\(bucket)"
            prefix = "\(prefix)"
            credentials_file = "\(creds)"
            trusted_keys = [\(keys)]
            \(concurrency.map { "concurrency = \($0)" } ?? "")
            """.write(toFile: path, atomically: true, encoding: .utf8)
        }
        let configA = work + "/shared-a.toml"
        let configB = work + "/shared-b.toml"
        try config(configA, trusted: [])
        _ = try Measure.run([worker, "init", "--store", storeA, "--config", configA])
        _ = try Measure.run([
            worker, "store", "record-result", art, "--job-key", key, "--namespace", "bench", "--executor-class",
            "recording", "--store", storeA,
        ])
        let idFile = work + "/shared-a-identity.json"
        _ = try Measure.run([worker, "identity", "--json", "--store", storeA, "--config", configA], stdout: idFile)
        guard
            let fp = try JSONParser().parse(Array(try Data(contentsOf: URL(fileURLWithPath: idFile))))[
                "attestation_key_fingerprint"]?.stringValue
        else { throw BenchError("no attestation key fingerprint for worker A") }
        try config(configB, trusted: [fp])

        // Publish (the background drainer's work) vs aws s3 sync up — measured once each (the first upload).
        let publish = try Measure.run([
            worker, "shared", "publish", "--result", key, "--namespace", "bench", "--store", storeA, "--config",
            configA,
        ])
        let aws = ["aws", "--endpoint-url", endpoint, "s3", "sync", "--only-show-errors"]
        let up = try Measure.run(aws + [art, "s3://\(bucket)/\(prefix)peer/"])

        // Cross-worker hit: a fresh worker B pulls (verifies, ingests) and serves into a job directory.
        let out = work + "/shared-out"
        let clean = {
            try? fm.removeItem(atPath: storeB)
            try? fm.removeItem(atPath: out)
        }
        var pulls: [Double] = []
        var serves: [Double] = []
        var peers: [Double] = []
        var rss = 0
        for i in 0...runs {
            clean()
            _ = try Measure.run([worker, "init", "--store", storeB, "--config", configB])
            sync()
            let pull = try Measure.run([
                "/bin/sh", "-c", "\"$0\" \"$@\" && sync", worker, "shared", "pull", "--result", key, "--namespace",
                "bench", "--store", storeB, "--config", configB,
            ])
            let serve = try Measure.run([
                worker, "store", "materialise-result", key, "--namespace", "bench", "--executor-class", "recording",
                "--job-id", String(format: "job_shared%05d", i), "--run-id", "run_shared00002", "--into", out,
                "--store", storeB,
            ])
            clean()
            sync()
            let peer = try Measure.run(
                ["/bin/sh", "-c", "\"$0\" \"$@\" && sync"] + aws + ["s3://\(bucket)/\(prefix)peer/", out])
            if i == 0 { continue }  // warm-up
            pulls.append(pull.seconds)
            serves.append(serve.seconds)
            peers.append(peer.seconds)
            rss = max(rss, pull.maxRSSKiB)
        }
        clean()
        func median(_ v: [Double]) -> Double { v.sorted()[v.count / 2] }
        let hit = median(zip(pulls, serves).map { $0 + $1 })
        print("")
        print(
            "shared tier benchmark: \(files) files, \(bytes / 1_000_000) MB, Ceph RGW on 127.0.0.1, median of \(runs), "
                + "concurrency \(concurrency.map(String.init) ?? "default") (aws s3 sync: 10)")
        print("  peer: aws s3 sync bucket → dir (+ sync)         \(format(median(peers)))")
        print(
            "  pull into a fresh worker store (+ sync)         \(format(median(pulls)))   ratio \(formatRatio(median(pulls) / median(peers)))   peak RSS \(rss / 1024) MiB"
        )
        print(
            "  cross-worker hit: pull + serve into a job dir   \(format(hit))   ratio \(formatRatio(hit / median(peers)))   (target ≤ 1.0)"
        )
        print("  peer: aws s3 sync dir → bucket                  \(format(up.seconds))")
        print(
            "  publish the result set (background drainer)     \(format(publish.seconds))   ratio \(formatRatio(publish.seconds / up.seconds))   (off the job's path: the job only queues it)"
        )
        _ = try? Measure.run([
            "aws", "--endpoint-url", endpoint, "s3", "rm", "--recursive", "--only-show-errors",
            "s3://\(bucket)/\(prefix)",
        ])
    }

    static func size(_ dir: String) throws -> (Int, Int64) {
        var files = 0
        var bytes: Int64 = 0
        let e = FileManager.default.enumerator(atPath: dir)
        while let p = e?.nextObject() as? String {
            let a = try FileManager.default.attributesOfItem(atPath: dir + "/" + p)
            if a[.type] as? FileAttributeType == .typeRegular {
                files += 1
                bytes += (a[.size] as? Int64) ?? Int64((a[.size] as? Int) ?? 0)
            }
        }
        return (files, bytes)
    }
}
