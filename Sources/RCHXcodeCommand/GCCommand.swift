import ArgumentParser
import RCHCLISupport
import RCHCore
import RCHStore

struct HostGCCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "gc",
        abstract:
            "Remove old run artifacts and bundles on this host (keep the newest N and anything newer than D days).",
        discussion: """
            Runs still in progress (their .run.lock is held) or interrupted (run_state not terminal; resumable)             are never removed. --max-size then removes the oldest finished runs until the rest fit. Evictions             are logged to <artifacts>/gc.log. The host store's fetched artifact sets (the blobs delta fetches             reuse) unused for --keep-days go too, and their blobs once no set refers to them.
            """)

    @Option(name: .customLong("keep-runs"), help: "Keep at least this many newest runs (and bundles).") var keepRuns:
        Int = 100
    @Option(name: .customLong("keep-days"), help: "Keep everything newer than this many days.") var keepDays: Int = 30
    @Option(help: "Artifact root (default ~/.local/share/rch/artifacts/xcode).") var artifacts: String?
    @Option(
        name: .customLong("max-size"),
        help: "Largest total size of the runs, e.g. 20GiB (oldest finished runs go first).")
    var maxSize: String?
    @Flag(name: .customLong("dry-run"), help: "Change nothing; print what would be removed.") var dryRun = false
    @OptionGroup var out: OutputOptions
    @OptionGroup var storeOptions: StoreOptions

    func validate() throws {
        guard keepRuns >= 0, keepDays >= 0 else {
            throw ValidationError("--keep-runs and --keep-days must be 0 or more")
        }
        if let maxSize, parseSize(maxSize) == nil { throw ValidationError("--max-size must be a size such as 20GiB") }
    }

    func run() throws {
        try runReportingFailures(out) {
            var r = HostRetention(
                artifactRoot: artifacts ?? HostRetention.defaultArtifactRoot, store: try storeOptions.open())
            r.keepRuns = keepRuns
            r.keepDays = keepDays
            r.dryRun = dryRun
            r.maxSize = maxSize.flatMap(parseSize)
            let report = try r.run()
            var blobs = GarbageCollector(store: try storeOptions.open())
            blobs.maxAgeSeconds = Int64(keepDays) * 86_400
            blobs.namespace = HostArtifacts.namespace
            blobs.dryRun = dryRun
            let fetched = try blobs.run()
            if out.json {
                var o = report.json.objectValue ?? JSONObject()
                o["fetched_sets_removed"] = .int(Int64(fetched.entries.count))
                o["fetched_blobs_removed"] = .int(Int64(fetched.blobs))
                o["fetched_bytes_freed"] = .int(Int64(fetched.bytesFreed))
                printJSON(.object(o))
            } else {
                print(
                    "fetched artifact sets: \(fetched.entries.count) \(dryRun ? "would be removed" : "removed"), \(fetched.blobs) blobs, \(fetched.bytesFreed) bytes"
                )
                for x in report.removed { print("\(dryRun ? "would remove" : "removed") \(x)") }
                print(
                    "\(report.removed.count) removed, \(report.kept) kept (\(report.running.count) running), \(report.bytesFreed) bytes freed"
                )
            }
        }
    }
}
