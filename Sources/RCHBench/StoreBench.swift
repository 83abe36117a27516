import ArgumentParser
import Foundation
import RCHCore
import RCHStore
import XcodeTreeGen

struct StoreBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "store",
        abstract: "Ingest and materialise a source, serve a cache hit — each against its peer, in one run.")

    @Option(help: "Path of the rch-xcode binary.") var rch: String
    @Option(help: "Path of the rch-worker binary.") var worker: String
    @Option(help: "Working directory.") var work: String = "bench-out"
    @Option(help: "Scale of the source tree and of the result set.") var scale: Double = 1
    @Option(help: "Measured runs per command (median reported).") var runs: Int = 5

    func run() throws {
        let fm = FileManager.default
        try fm.createDirectory(atPath: work, withIntermediateDirectories: true)
        let work = URL(fileURLWithPath: work).standardizedFileURL.path
        let tree = work + "/tree-\(scale)"
        if !fm.fileExists(atPath: tree) { try XcodeTreeGen(seed: 1, scale: scale).makeTree(at: tree) }
        let bundle = work + "/source.tar.zst"
        _ = try Measure.run([
            rch, "bundle", tree, "--output", bundle, "--store", work + "/host-store", "--no-stat-cache",
        ])
        let out = work + "/out"
        let clean = { () throws -> Void in try? fm.removeItem(atPath: out) }
        // Ingest publishes durably (syncfs), so its peer is synced too; materialisation and cache hits write
        // disposable job directories without syncing, as their peers (untar, cp -r) do.
        func untarPeer(sync: Bool) throws -> Sample {
            try Measure.median(
                runs: runs,
                prepare: {
                    try clean()
                    try fm.createDirectory(atPath: out, withIntermediateDirectories: true)
                }
            ) {
                try Measure.run([
                    "/bin/sh", "-c", "zstd -dc '\(bundle)' | tar -x -C '\(out)'" + (sync ? " && sync -f '\(out)'" : ""),
                ])
            }
        }
        let untar = try untarPeer(sync: false)
        let untarSynced = try untarPeer(sync: true)
        let ingestStore = work + "/ingest-store"
        let ingest = try Measure.median(runs: runs, prepare: { try? fm.removeItem(atPath: ingestStore) }) {
            try Measure.run([worker, "store", "ingest", bundle, "--store", ingestStore])
        }
        let sha = try String(
            contentsOfFile: work + "/sha.txt", encoding: .utf8,
            orCreate: {
                let p = Pipe()
                let proc = Process()
                proc.executableURL = URL(fileURLWithPath: worker)
                proc.arguments = ["store", "ingest", bundle, "--store", ingestStore]
                proc.standardOutput = p
                try proc.run()
                proc.waitUntilExit()
                return String(decoding: p.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self).trimmingCharacters(
                    in: .whitespacesAndNewlines)
            })
        var n = 0
        let materialise = try Measure.median(runs: runs, prepare: clean) {
            n += 1
            return try Measure.run([
                worker, "store", "materialise-source", sha, "--job-id", String(format: "job_bench%05d", n), "--into",
                out, "--store", ingestStore,
            ])
        }

        // A result set shaped like a test job's, recorded once, then served as hits.
        let art = work + "/results-\(scale)"
        let key = SHA256Digest.of(Array("bench-key-\(scale)".utf8)).hex
        try ResultSet.make(at: art, scale: scale, key: key, source: sha)
        _ = try Measure.run([
            worker, "store", "record-result", art, "--job-key", key, "--namespace", "bench", "--executor-class",
            "recording", "--store", ingestStore,
        ])
        let copy = try Measure.median(runs: runs, prepare: clean) { try Measure.run(["cp", "-r", art, out]) }
        // As the worker serves a hit: by reference into the store's job directory (no file copied).
        let hit = try Measure.median(runs: runs, prepare: clean) {
            n += 1
            return try Measure.run([
                worker, "store", "materialise-result", key, "--namespace", "bench", "--executor-class", "recording",
                "--job-id", String(format: "job_bench%05d", n), "--run-id", "run_bench00002", "--store", ingestStore,
            ])
        }
        // An export of the same hit: every file copied out of the store, verified.
        let export = try Measure.median(runs: runs, prepare: clean) {
            n += 1
            return try Measure.run([
                worker, "store", "materialise-result", key, "--namespace", "bench", "--executor-class", "recording",
                "--job-id", String(format: "job_bench%05d", n), "--run-id", "run_bench00002", "--into", out,
                "--store", ingestStore,
            ])
        }
        let inProcess = try serveTiming(store: ingestStore, key: key)
        try? fm.removeItem(atPath: ingestStore + "/work")
        try clean()

        print("")
        print("store benchmark, scale \(scale), median of \(runs) runs (verification on), in \(work)")
        print("  peer: zstd -dc bundle | tar -x && sync -f      \(format(untarSynced.seconds))")
        print(
            "  ingest the bundle into a fresh store            \(format(ingest.seconds))   ratio \(formatRatio(ingest.seconds / untarSynced.seconds))   (target ≤ 1.5)"
        )
        print("  peer: zstd -dc bundle | tar -x                 \(format(untar.seconds))")
        print(
            "  materialise the source into a new job dir       \(format(materialise.seconds))   ratio \(formatRatio(materialise.seconds / untar.seconds))   (target ≤ 1.0)"
        )
        print("  peer: cp -r of the result set                   \(format(copy.seconds))")
        print(
            "  serve a cache hit (by reference, as the worker) \(format(hit.seconds))   ratio \(formatRatio(hit.seconds / copy.seconds))   (target ≤ 1.0; a process start included)"
        )
        print(
            "  the same serve inside the worker's process       \(format(inProcess))   ratio \(formatRatio(inProcess / copy.seconds))   (median of 9; target ≤ 0.1 on reflink XFS)"
        )
        print(
            "  export a cache hit (every file copied, verified) \(format(export.seconds))   ratio \(formatRatio(export.seconds / copy.seconds))   (an operator's copy)"
        )
    }
}

extension String {
    /// Reads `path`, or creates it with `make()` first.
    init(contentsOfFile path: String, encoding: String.Encoding, orCreate make: () throws -> String) throws {
        if let s = try? String(contentsOfFile: path, encoding: encoding), !s.isEmpty {
            self = s
            return
        }
        let s = try make()
        try Data(s.utf8).write(to: URL(fileURLWithPath: path))
        self = s
    }
}

extension StoreBench {
    /// Times a hit served by reference as the worker's `submit` serves it, inside the process (no process
    /// start): lookup, reference record, rewritten records, manifest, attestation, job_index, rename.
    func serveTiming(store root: String, key: String) throws -> Double {
        let store = try LocalStore(root: root)
        let worker = WorkerIdentity(name: "bench", key: try store.attestationKey())
        let jobKey = SHA256Digest(hex: key)!
        var samples: [Double] = []
        for i in 0..<10 {
            let jobID = String(format: "job_inproc%05d", i)
            sync()
            let start = DispatchTime.now().uptimeNanoseconds
            _ = try ResultStore(store: store).materialize(
                jobKey: jobKey, namespace: "bench", profile: .minimal, executorClass: "recording", jobID: jobID,
                runID: "run_bench00003", into: root + "/work/" + jobID + "/artifacts", worker: worker,
                byReference: true)
            if i > 0 { samples.append(Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9) }
        }
        return samples.sorted()[samples.count / 2]
    }
}
