import ArgumentParser
import RCHCLISupport

@main
struct RCHXcode: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rch-xcode",
        abstract: "Host side of the RCH Xcode lane: deterministic source bundles and the local store.",
        discussion: """
            Exit codes: 0 success, 10 rejected arguments, 20 SSH, 30 transfer, 40 executor, 50 xcodebuild failed, \
            70 artifacts, 80 cancelled, 90 worker busy, 91 worker incompatible, 92 bundler, 93 attestation; \
            64 usage, 66 not found, 78 configuration.
            """,
        version: VersionInfo.text,
        subcommands: [
            BundleCommand.self, PushCommand.self, VerifyCommand.self, RunCommand.self, ProbeCommand.self,
            JobOpCommand.self, WorkersCommand.self,
            FetchCommand.self, ExtractCommand.self, CanonicalizeCommand.self, KeyCommand.self,
            VerifyArtifactsCommand.self,
            HostGCCommand.self,
        ])

    static func main() { CommandMain.run(Self.self) }
}
