import ArgumentParser
import XcodeTreeGen

@main
struct MakeXcodeTree: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "make-xcode-tree",
        abstract: "Generate a deterministic Xcode-shaped source tree (or an xcresult-like artifact set).")

    @Argument(help: "Output directory.") var out: String
    @Option(help: "Seed.") var seed: UInt64 = 1
    @Option(help: "Scale (1.0 is about 120 MB in 3,900 files).") var scale: Double = 0.05
    @Flag(help: "Leave out the debris bundles must exclude.") var clean = false
    @Flag(help: "Make OUT a git repository with one commit.") var git = false
    @Option(help: "Change K .swift files of an existing tree (prints their paths).") var edit: Int?
    @Flag(help: "Write an xcresult-like artifact set instead.") var results = false

    func validate() throws {
        guard scale > 0 && scale <= 20 else { throw ValidationError("--scale must be in (0, 20]") }
        if let edit, edit < 1 { throw ValidationError("--edit takes a positive count") }
    }

    func run() throws {
        let gen = XcodeTreeGen(seed: seed, scale: scale)
        if let edit {
            for p in try gen.editTree(at: out, count: edit) { print(p) }
        } else if results {
            try gen.makeResults(at: out)
        } else {
            try gen.makeTree(at: out, clean: clean)
            if git { try XcodeTreeGen.gitInit(at: out) }
        }
    }
}
