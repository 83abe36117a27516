import ArgumentParser
import RCHCLISupport
import RCHCore
import RCHFleet
import RCHHost

/// `rch-xcode workers`: the fleet at a glance.
struct WorkersCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "workers",
        abstract:
            "List the inventory's workers: tags, priority, last snapshot age, reachability, Xcode, macOS, free slots.",
        discussion: """
            Reads the host's cached capability snapshots (nothing goes over the network); --probe probes every \
            worker now, in parallel (the same as probe --all). verify, run and push choose among these workers \
            when --worker is not given.
            """)

    @Flag(help: "Probe every worker now instead of showing the cached snapshots.") var probe = false
    @Option(help: "Worker inventory (default: $RCH_WORKERS, else ~/.config/rch/workers.toml).") var inventory: String?
    @OptionGroup var out: OutputOptions
    @OptionGroup var storeOptions: StoreOptions

    func run() throws {
        try runReportingFailures(out) {
            let all = WorkerStatus.collect(
                inventory: try WorkerInventory.load(inventory), hostStore: try storeOptions.open(), probe: probe)
            WorkerTable.print(all, json: out.json)
        }
    }
}

/// The table of `workers` and `probe --all`.
enum WorkerTable {
    static func print(_ all: [WorkerStatus], json: Bool) {
        if json {
            printJSON(.obj(["workers": .array(all.map(\.json))]))
            return
        }
        Swift.print("NAME         PRI  TAGS                 SNAPSHOT   REACHABLE  XCODE             MACOS    FREE")
        for s in all {
            let j = s.json
            func col(_ v: String, _ w: Int) -> String {
                v.padding(toLength: max(w, v.count), withPad: " ", startingAt: 0)
            }
            let age = s.snapshotAgeSeconds.map { "\($0)s ago" } ?? "never"
            let reach = s.reachable.map { $0 ? "yes" : "NO" } ?? "?"
            let xcode = j["xcode_version"]?.stringValue.map { "\($0) (\(j["xcode_build"]?.stringValue ?? "?"))" } ?? "-"
            let free = j["free_slots"]?.intValue.map { "\($0)/\(j["max_concurrent_jobs"]?.intValue ?? 0)" } ?? "-"
            Swift.print(
                [
                    col(s.entry.name, 12), col(String(s.entry.priority), 4),
                    col(s.entry.tags.joined(separator: ","), 20),
                    col(age, 10), col(reach, 10), col(xcode, 17), col(j["macos_version"]?.stringValue ?? "-", 8), free,
                ].joined(separator: " "))
            if let e = s.unreachable { Swift.print("  \(s.entry.name): \(e)") }
        }
    }
}
