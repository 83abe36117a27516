import ArgumentParser
import RCHCLISupport
import RCHCore
import RCHStore

struct VerifyArtifactsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "verify-artifacts",
        abstract: "Verify a fetched job artifact directory against its manifest.json.",
        discussion:
            "Recomputes artifact_root_sha256, checks every entry's size and digest, and refuses extra files. Problems exit 70 (ARTIFACTS / INTEGRITY_MISMATCH) and list the paths."
    )

    @Argument(help: "The job's artifact directory.") var directory: String
    @OptionGroup var out: OutputOptions

    func run() throws {
        let errors = ArtifactManifest.verify(directory)
        if out.json {
            printJSON(
                .obj([
                    "ok": .bool(errors.isEmpty),
                    "failure_kind": errors.isEmpty ? .null : .string(FailureKind.artifacts.rawValue),
                    "failure_subkind": errors.isEmpty ? .null : .string("INTEGRITY_MISMATCH"),
                    "integrity_errors": .array(errors.map(\.json)),
                ]))
        } else if errors.isEmpty {
            print("ok: \(directory) matches its manifest")
        }
        for e in errors { printError("integrity: \(e)") }
        if !errors.isEmpty { throw ExitCode(FailureKind.artifacts.exitCode) }
    }
}
