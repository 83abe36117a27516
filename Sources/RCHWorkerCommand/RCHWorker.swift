import ArgumentParser
import RCHCLISupport

@main
struct RCHWorker: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rch-worker",
        abstract: "Worker side of the RCH Xcode lane: the content store of sources and cached results.",
        discussion: """
            Exit codes: 0 success, 30 transfer/store full, 40 executor, 70 artifacts/integrity, 90 busy, 92 bundler; \
            64 usage, 78 configuration.
            """,
        version: VersionInfo.text,
        subcommands: [
            InitCommand.self, StoreCommand.self, RPCCommand.self, RunJobCommand.self, IdentityCommand.self,
            JobsCommand.self,
            GCCommand.self, FsckCommand.self, StatsCommand.self, SharedCommand.self,
        ])
}

struct StoreCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "store",
        abstract: "Operate the content store directly (operators, scripts and tests).",
        subcommands: [
            IngestCommand.self, HasSourceCommand.self, MaterialiseSourceCommand.self, ExportSourceCommand.self,
            RecordResultCommand.self, LookupCommand.self, MaterialiseResultCommand.self,
        ])

    static func main() { CommandMain.run(Self.self) }
}
