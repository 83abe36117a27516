import ArgumentParser
import RCHCLISupport

@main
struct RCHXcode: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rch-xcode",
        abstract: "Host side of the RCH Xcode lane: deterministic source bundles and the local store.",
        discussion: "Failures exit with the lane's stable codes (92 = BUNDLER); see PLAN.md.",
        version: VersionInfo.text,
        subcommands: [
            BundleCommand.self, PushCommand.self, VerifyCommand.self, RunCommand.self, ProbeCommand.self, JobOpCommand.self,
            FetchCommand.self, ExtractCommand.self, CanonicalizeCommand.self, KeyCommand.self, VerifyArtifactsCommand.self,
            HostGCCommand.self,
        ])
}
