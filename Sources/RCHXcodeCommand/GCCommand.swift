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
            Runs still in progress (their .run.lock is held) or interrupted (run_state not terminal; resumable)             are never removed. --max-size then removes the oldest finished runs until the rest fit. Evictions             are logged to <artifacts>/gc.log.
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
            if out.json {
                printJSON(report.json)
            } else {
                for x in report.removed { print("\(dryRun ? "would remove" : "removed") \(x)") }
                print(
                    "\(report.removed.count) removed, \(report.kept) kept (\(report.running.count) running), \(report.bytesFreed) bytes freed"
                )
            }
        }
    }
}
