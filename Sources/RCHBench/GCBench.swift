import ArgumentParser
import Foundation
import RCHCore

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

struct GCBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "gc",
        abstract:
            "A synthetic store of 1,000,000 small blobs and 100,000 result entries: time stats (full scan, unchanged store) and a gc that removes ~10%."
    )

    @Option(help: "Path of the rch-worker binary.") var worker: String
    @Option(help: "Working directory.") var work: String = "bench-out"
    @Option(help: "Result entries (each references blobs-per-entry unique blobs).") var entries: Int = 100_000
    @Option(name: .customLong("blobs-per-entry")) var blobsPerEntry: Int = 10

    func run() throws {
        let root = URL(fileURLWithPath: work).standardizedFileURL.path + "/gc-store-\(entries)x\(blobsPerEntry)"
        if !FileManager.default.fileExists(atPath: root + "/results") {
            print("generating \(entries * blobsPerEntry) blobs and \(entries) entries in \(root) …")
            try generate(root)
        }
        // stats: a full scan (no shard summaries yet), then the same store unchanged (summaries reused).
        let out = work + "/stats-out.json"
        let summaries = root + "/cache/shard-summaries.bin"
        let full = try Measure.median(runs: 3, warmup: 0, prepare: { _ = unlink(summaries) }) {
            try Measure.run([worker, "stats", "--store", root, "--json"], stdout: out)
        }
        let fullShards = try shards(try? JSONParser().parse(DurableFile.read(out)))
        let unchanged = try Measure.median(runs: 3, warmup: 0) {
            try Measure.run([worker, "stats", "--store", root, "--json"], stdout: out)
        }
        let unchangedShards = try shards(try? JSONParser().parse(DurableFile.read(out)))
        // Peer: `du -s` of the store (one lstat per file, in C, and no entry reading at all).
        let du = try Measure.median(runs: 3, warmup: 0) { try Measure.run(["du", "-s", root]) }

        let pristine = root + ".pristine"
        // hardlink copy to restore after gc
        _ = try Measure.run(["/bin/sh", "-c", "rm -rf '\(pristine)' && cp -al '\(root)' '\(pristine)'"])
        sync()
        let probe = Pipe()
        let p = Process()
        p.executableURL = URL(fileURLWithPath: worker)
        p.arguments = ["gc", "--store", root, "--dry-run", "--json", "--grace", "0s", "--max-age", "3650d"]
        p.standardOutput = probe
        try p.run()
        let probed = probe.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        guard let v = try? JSONParser().parse(Array(probed)), let before = v["bytes_before"]?.intValue else {
            throw BenchError("cannot read the store size")
        }
        let budget = before - before / 10
        sync()
        let gc = try Measure.run([
            worker, "gc", "--store", root, "--max-size", String(budget), "--grace", "0s", "--max-age", "3650d",
        ])
        sync()
        let afterGC = try Measure.run([worker, "stats", "--store", root, "--json"], stdout: out)
        let after = try? JSONParser().parse(DurableFile.read(out))
        let afterShards = try shards(after)
        _ = try Measure.run(["/bin/sh", "-c", "rm -rf '\(root)' && mv '\(pristine)' '\(root)'"])
        print("")
        print(
            "gc benchmark: \(entries) entries, \(entries * blobsPerEntry) blobs, \(before) bytes on disk (stats: median of 3)"
        )
        print(
            "  stats, full scan (no summaries)   \(format(full.seconds))   peak RSS \(full.maxRSSKiB / 1024) MiB   shards rescanned \(fullShards)   (target ≤ 2 s)"
        )
        print(
            "  peer: du -s of the store          \(format(du.seconds))   → full scan \(formatRatio(full.seconds / du.seconds))×, unchanged \(formatRatio(unchanged.seconds / du.seconds))×"
        )
        print(
            "  stats, unchanged store            \(format(unchanged.seconds))   peak RSS \(unchanged.maxRSSKiB / 1024) MiB   shards rescanned \(unchangedShards)"
        )
        print(
            "  gc removing ~10% (LRU)            \(format(gc.seconds))   peak RSS \(gc.maxRSSKiB / 1024) MiB   (target ≤ 10 s, ≤ 256 MiB)"
        )
        print(
            "  stats right after that gc         \(format(afterGC.seconds))   peak RSS \(afterGC.maxRSSKiB / 1024) MiB   shards rescanned \(afterShards)"
        )
        if let a = after {
            print(
                "  after gc: \(a["entries"]?["results"]?.canonicalString ?? "?") result entries, \(a["blobs"]?.canonicalString ?? "?") blobs"
            )
        }
    }

    /// "rescanned/total" from the output of `stats --json`.
    func shards(_ v: JSONValue?) throws -> String {
        guard let v, let r = v["shards"]?["rescanned"]?.intValue,
            let t = v["shards"]?["total"]?.intValue
        else { throw BenchError("stats printed no shard counts") }
        return "\(r)/\(t)"
    }

    /// Writes blobs and entries directly (the layout of store-layout.md) for speed.
    func generate(_ root: String) throws {
        _ = try Measure.run(["/bin/sh", "-c", "mkdir -p '\(root)'"])
        let marker =
            "{\"created_at\":\"2026-11-22T00:00:00.000Z\",\"format_version\":1,\"schema_id\":\"rch-xcode/store@1\",\"schema_version\":1,\"store_id\":\"01BENCH0000000000000000000\"}\n"
        try Data(marker.utf8).write(to: URL(fileURLWithPath: root + "/store.json"))
        for i in 0..<256 {
            let shard = String(format: "%02x", i)
            try FileManager.default.createDirectory(
                atPath: root + "/blobs/sha256/" + shard, withIntermediateDirectories: true)
            try FileManager.default.createDirectory(
                atPath: root + "/results/bench/" + shard, withIntermediateDirectories: true)
        }
        let now = Int(Date().timeIntervalSince1970)
        for e in 0..<entries {
            var items: [String] = []
            for b in 0..<blobsPerEntry {
                let content = Array("blob \(e) \(b) of the gc benchmark\n".utf8)
                let d = SHA256Digest.of(content).hex
                let path = root + "/blobs/sha256/" + String(d.prefix(2)) + "/" + d
                let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o444)
                _ = content.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
                close(fd)
                items.append("{\"path\":\"f\(b)\",\"sha256\":\"\(d)\",\"size\":\(content.count),\"type\":\"file\"}")
            }
            let key = SHA256Digest.of(Array("entry \(e)".utf8)).hex
            let entry =
                "{\"entries\":[\(items.joined(separator: ","))],\"job_key\":\"\(key)\",\"namespace\":\"bench\",\"schema_id\":\"rch-xcode/result_entry@1\"}\n"
            let path = root + "/results/bench/" + String(key.prefix(2)) + "/" + key + ".json"
            try Data(entry.utf8).write(to: URL(fileURLWithPath: path))
            var t = [
                timespec(tv_sec: now - 86_400 * 30 + e * 7, tv_nsec: 0),
                timespec(tv_sec: now - 86_400 * 30 + e * 7, tv_nsec: 0),
            ]
            utimensat(AT_FDCWD, path, &t, 0)
        }
    }
}
