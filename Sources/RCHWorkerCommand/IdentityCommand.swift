import ArgumentParser
import RCHCLISupport
import RCHCore
import RCHProtocol
import RCHStore
import RCHWorker

/// `rch-worker identity`: what this worker reports as its toolchain — run it after an Xcode, macOS or
/// simulator runtime change to see what jobs will be keyed with from now on.
struct IdentityCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "identity",
        abstract:
            "Detect and print the worker's toolchain identity (Xcode, macOS, arch, simulators) and attestation key.",
        discussion: """
            With the xcodebuild executor the identity is detected now from xcode-select, xcodebuild -version, \
            sw_vers, uname -m and xcrun simctl (the cached identity is refreshed); with the recording executor it \
            is the [toolchain] table of worker.toml. Exit 40 (EXECUTOR) when there is no executor or detection fails.
            """)

    @Option(help: "Worker config file (default ~/.config/rch/worker.toml).") var config: String?
    @OptionGroup var out: OutputOptions
    @OptionGroup var storeOptions: WorkerStoreOptions

    func run() throws {
        try runReportingFailures(out) {
            let provider = WorkerIdentityProvider(store: try storeOptions.open(), config: try WorkerConfig.load(config))
            let identity: ToolchainIdentityReport
            do {
                identity = ToolchainIdentityReport(try provider.current(fresh: true), provider: provider)
            } catch let e as RPCError {
                throw IdentityUnavailable(message: e.message, subkind: e.failureSubkind)
            }
            let key = try provider.store.attestationKey()
            if out.json {
                var doc = identity.json
                doc["attestation_key_fingerprint"] = .string(key.fingerprint.hex)
                printJSON(.object(doc))
            } else {
                print(identity.text + "attestation key: Ed25519 \(key.fingerprint.hex)")
            }
        }
    }
}

struct IdentityUnavailable: LaneError {
    var message: String
    var subkind: String?
    var failureKind: FailureKind { .executor }
    var failureSubkind: String? { subkind }
    var description: String { message }
}
