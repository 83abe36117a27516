import ArgumentParser
import Foundation
import RCHCLISupport
import RCHCore
import RCHStore
import RCHWorker
import SystemPackage

/// The path of the running executable (to start `run-job` children).
func selfExecutable() -> String {
    Bundle.main.executablePath ?? CommandLine.arguments[0]
}

/// `rch-worker shared drain` for this store and config (started detached by ``WorkerShared/startDrainer(_:store:config:)``).
func drainCommand(_ store: LocalStore, config: String?) -> [String] {
    [selfExecutable(), "shared", "drain", "--quiet", "--store", store.root] + (config.map { ["--config", $0] } ?? [])
}

struct RPCCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rpc",
        abstract: "Answer one lane RPC request on stdin/stdout (the SSH forced command).",
        discussion: """
            Reads one JSON header line (plus a framed body for uploads) and writes one response. Meant for \
            authorized_keys: command="rch-worker rpc --store DIR",restrict. With SSH_ORIGINAL_COMMAND set, \
            anything other than `rch-worker rpc` is answered with FORBIDDEN.
            """)

    @Option(help: "Worker config file (default ~/.config/rch/worker.toml).") var config: String?
    @OptionGroup var storeOptions: WorkerStoreOptions

    func run() throws {
        signal(SIGPIPE, SIG_IGN)
        let workerConfig: WorkerConfig
        let store: LocalStore
        let settings: GCSettings
        do {
            workerConfig = try WorkerConfig.load(config)
            (store, settings) = try ConfiguredStore.open(storeOptions, config: config)
        } catch {
            // Still answer in protocol form, so the host sees why.
            let reply = RPCReplyForStartupFailure(message: "\(error)")
            FileHandle.standardOutput.write(Data(reply))
            throw ExitCode(1)
        }
        var runner = [selfExecutable(), "run-job", "--store", store.root]
        if let config { runner += ["--config", config] }
        let server = WorkerServer(store: store, config: workerConfig, runnerCommand: runner)
        let (status, wrote) = server.serve(
            input: .standardInput, output: .standardOutput,
            originalCommand: ProcessInfo.processInfo.environment["SSH_ORIGINAL_COMMAND"])
        if wrote { ConfiguredStore.maybeStartGC(store, settings, config: config) }
        // Queued publishes to the shared tier go out in the background, never on this request's path.
        WorkerShared.startDrainer(drainCommand(store, config: config), store: store, config: workerConfig)
        if status != 0 { throw ExitCode(status) }
    }
}

struct RunJobCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run-job", abstract: "Run a submitted job to its end (started by submit; not for direct use).",
        shouldDisplay: false)

    @Argument(help: "The job_id.") var jobID: String
    @Option(help: "Worker config file.") var config: String?
    @OptionGroup var storeOptions: WorkerStoreOptions

    func validate() throws {
        guard Identifier.isValid(jobID, .jobID) else {
            throw ValidationError(IdentifierError(kind: .jobID, value: jobID).description)
        }
    }

    func run() throws {
        try runReportingFailures(json: false) {
            let (store, settings) = try ConfiguredStore.open(storeOptions, config: config)
            let workerConfig = try WorkerConfig.load(config)
            try JobRunner(store: store, config: workerConfig).run(jobID: jobID)
            WorkerShared.startDrainer(drainCommand(store, config: config), store: store, config: workerConfig)
            // Bounded worker disk: every finished job removes the finished jobs past [jobs] retention / max_size.
            var jobs = JobRetention(store: store)
            jobs.retentionSeconds = settings.jobRetentionSeconds
            jobs.maxBytes = settings.jobMaxBytes
            jobs.recordRetentionSeconds = settings.jobRecordRetentionSeconds
            _ = try? jobs.run()
            ConfiguredStore.maybeStartGC(store, settings, config: config)  // the job may have recorded a result
        }
    }
}
