import ArgumentParser
import Foundation
import XcodeTreeGen

@main
struct RCHBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rch-bench",
        abstract: "Benchmarks rch-xcode against its peers in one run and prints the ratios.",
        subcommands: [
            BundleBench.self, JCSBench.self, StoreBench.self, GCBench.self, PushBench.self, FetchBench.self,
            SharedBench.self,
        ])
}

struct BundleBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bundle",
        abstract: "Cold bundle vs tar|zstd|sha256sum, warm re-bundle vs cold, peak RSS on a large tree.")

    @Option(help: "Path of the rch-xcode binary to measure.") var rch: String
    @Option(help: "Working directory for trees and stores.") var work: String = "bench-out"
    @Option(help: "Tree scale for the timing runs (1 = ~120 MB, 3,900 files).") var scale: Double = 1
    @Option(help: "Measured runs per command (median reported).") var runs: Int = 7
    @Option(help: "Tree scale for the peak-RSS run (8.7 = ~1 GB); 0 skips it.") var rssScale: Double = 8.7

    func run() throws {
        let fm = FileManager.default
        try fm.createDirectory(atPath: work, withIntermediateDirectories: true)
        let work = URL(fileURLWithPath: work).standardizedFileURL.path
        let tree = work + "/tree-\(scale)"
        if !fm.fileExists(atPath: tree) {
            print("generating a scale-\(scale) tree in \(tree) …")
            try XcodeTreeGen(seed: 1, scale: scale).makeTree(at: tree)
        }
        // warm the page cache
        _ = try Measure.run(["/bin/sh", "-c", "find . -type f -exec cat {} + > /dev/null"], cwd: tree)
        Thread.sleep(forTimeInterval: 2.5)  // let fresh files leave the stat cache's racy window

        let coldStore = work + "/store-cold"
        let ours = try Measure.median(runs: runs, prepare: { try? fm.removeItem(atPath: coldStore) }) {
            try Measure.run([rch, "bundle", tree, "--store", coldStore, "--no-stat-cache"])
        }
        let peer = try Measure.median(runs: runs) {
            try Measure.run(
                [
                    "/bin/sh", "-c",
                    "tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner --format=posix -cf - . | zstd -3 -q | sha256sum > /dev/null",
                ],
                cwd: tree)
        }
        let warmStore = work + "/store-warm"
        try? fm.removeItem(atPath: warmStore)
        _ = try Measure.run([rch, "bundle", tree, "--store", warmStore])  // fills the stat cache
        let warm = try Measure.median(runs: runs) { try Measure.run([rch, "bundle", tree, "--store", warmStore]) }
        let floor = try Measure.median(runs: runs) { try Measure.run([rch, "--help"]) }
        // What merely listing and stat'ing every entry costs (GNU find, one thread, no hashing): the
        // kernel work any stat-based "unchanged?" check must do.
        let statWalk = try Measure.median(runs: runs) {
            try Measure.run(["/usr/bin/find", ".", "-printf", "%s %T@ %C@ %i\n"], cwd: tree)
        }

        print("")
        print("bundle benchmark, scale \(scale) tree (\(try treeSummary(tree))), median of \(runs) runs")
        print(
            "  ours cold  (tar + zstd -3 + sha256 + manifest, into a fresh store) \(format(ours.seconds))   peak RSS \(ours.maxRSSKiB / 1024) MiB"
        )
        print("  peer       (tar --sort=name … | zstd -3 | sha256sum)               \(format(peer.seconds))")
        print("  ours warm  (re-bundle of the unchanged tree, stat cache)           \(format(warm.seconds))")
        print("  process floor (rch-xcode --help)                                   \(format(floor.seconds))")
        print(
            "  stat walk floor (find . -printf '%s %T@ %C@ %i', every entry)      \(format(statWalk.seconds))   (budget for warm at 0.05×: \(format(ours.seconds * 0.05)))"
        )
        print("  ratio cold/peer  = \(formatRatio(ours.seconds / peer.seconds))   (target ≤ 0.8)")
        print("  ratio warm/cold  = \(formatRatio(warm.seconds / ours.seconds))   (target ≤ 0.05)")

        if rssScale > 0 {
            let big = work + "/tree-\(rssScale)"
            if !fm.fileExists(atPath: big) {
                print("generating a scale-\(rssScale) tree in \(big) …")
                try XcodeTreeGen(seed: 2, scale: rssScale).makeTree(at: big)
            }
            let bigStore = work + "/store-big"
            try? fm.removeItem(atPath: bigStore)
            let s = try Measure.run([rch, "bundle", big, "--store", bigStore, "--no-stat-cache"])
            try? fm.removeItem(atPath: bigStore)
            print(
                "  large tree (\(try treeSummary(big))): cold bundle \(format(s.seconds)), peak RSS \(s.maxRSSKiB / 1024) MiB   (target ≤ 64 MiB)"
            )
        }
    }

    func treeSummary(_ path: String) throws -> String {
        var bytes: UInt64 = 0
        var files = 0
        let e = FileManager.default.enumerator(atPath: path)
        while let p = e?.nextObject() as? String {
            if let a = e?.fileAttributes, a[.type] as? FileAttributeType == .typeRegular {
                files += 1
                bytes += (a[.size] as? UInt64) ?? 0
                _ = p
            }
        }
        return "\(bytes / 1_000_000) MB in \(files) files"
    }
}
