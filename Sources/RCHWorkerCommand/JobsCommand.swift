import ArgumentParser
import RCHCLISupport
import RCHCore
import RCHStore
import RCHWorker

/// `rch-worker jobs`: running, queued and recent jobs of this worker.
struct JobsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "jobs", abstract: "List the worker's jobs: running, queued and recent ones, newest first.")

    @Option(help: "Only jobs in this state (QUEUED, RUNNING, SUCCEEDED, FAILED, CANCELLED).") var state: String?
    @Option(help: "Worker config file (default ~/.config/rch/worker.toml).") var config: String?
    @OptionGroup var out: OutputOptions
    @OptionGroup var storeOptions: WorkerStoreOptions

    func validate() throws {
        if let state, !JobListing.states.contains(state) {
            throw ValidationError("--state must be one of \(JobListing.states.joined(separator: ", "))")
        }
    }

    func run() throws {
        try runReportingFailures(out) {
            let listing = JobListing(
                store: try storeOptions.openExisting(config: config), config: try WorkerConfig.load(config))
            let items = listing.list(state: state)
            if out.json {
                printJSON(.obj(["jobs": .array(items.map(\.json))]))
                return
            }
            JobTable.print(items.map(\.json))
        }
    }
}

/// `rch-worker init`: creates the worker's store (and its attestation key) where the worker will use it.
struct InitCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "init", abstract: "Create the worker's store (and its attestation key); prints where it is.")

    @Option(help: "Worker config file (default ~/.config/rch/worker.toml).") var config: String?
    @OptionGroup var out: OutputOptions
    @OptionGroup var storeOptions: WorkerStoreOptions

    func run() throws {
        try runReportingFailures(out) {
            let store = try storeOptions.open(config: config)
            let key = try store.attestationKey()
            if out.json {
                printJSON(
                    .obj([
                        "store": .string(store.root), "store_id": .string(store.storeID),
                        "attestation_key_fingerprint": .string(key.fingerprint.hex),
                    ]))
            } else {
                print("store \(store.root) (id \(store.storeID)); attestation key fingerprint \(key.fingerprint.hex)")
            }
        }
    }
}
