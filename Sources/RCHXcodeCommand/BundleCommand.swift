import ArgumentParser
import RCHBundle
import RCHCLISupport
import RCHCore
import RCHStore

struct BundleCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bundle",
        abstract: "Bundle a repository into a canonical .tar.zst and print its source_sha256.",
        discussion: """
            Without --output the bundle and its source_manifest.json go into the local store \
            (bundles/<source_sha256>.tar.zst); an unchanged tree is recognised from the stat cache \
            without reading file contents.
            """)

    @Argument(help: "Repository root.") var path: String = "."
    @Option(help: "Write the .tar.zst here instead of into the store.") var output: String?
    @Option(help: "Also write source_manifest.json here.") var manifest: String?
    @Option(
        help:
            "Selection: worktree (walk the tree), git_index (the index only) or git (tracked and untracked files git does not ignore)."
    ) var mode: String = "worktree"
    @Option(help: "zstd level 1-19 (transport only).") var level: Int = 3
    @Option(help: "zstd worker threads (transport only; default: cores, at most 4).") var threads: Int?
    @Option(
        name: .customLong("max-bytes"), help: "Refuse a canonical tar larger than this (e.g. 500MiB; 0 = no limit).")
    var maxBytes: String = "0"
    @Option(name: .customLong("run-id"), help: "run_id to record in the manifest.") var runID: String?
    @Flag(help: "List every path with in/out and the rule that decided; bundle nothing.") var list = false
    @Flag(name: .customLong("no-stat-cache"), help: "Read every file even if the stat cache says it is unchanged.")
    var noStatCache = false
    @OptionGroup var out: OutputOptions
    @OptionGroup var storeOptions: StoreOptions

    func validate() throws {
        guard SelectionMode(rawValue: mode) != nil else {
            throw ValidationError(SelectionMode.usage)
        }
        if list && (output != nil || manifest != nil) {
            throw ValidationError("--list writes nothing; drop --output and --manifest")
        }
        guard (1...19).contains(level) else { throw ValidationError("--level must be between 1 and 19") }
        guard parseSize(maxBytes) != nil else {
            throw ValidationError("--max-bytes takes a byte count such as 524288000 or 500MiB")
        }
        if let threads, threads < 0 { throw ValidationError("--threads must be 0 or more") }
    }

    func run() throws {
        try runReportingFailures(out) {
            if list {
                let listing = try BundleListing(root: path, mode: SelectionMode(rawValue: mode)!)
                print(out.json ? listing.json.canonicalString : listing.text)
                return
            }
            var opts = BundleOptions()
            opts.mode = SelectionMode(rawValue: mode)!
            opts.compressionLevel = level
            if let threads { opts.compressionWorkers = threads }
            opts.maxBytes = parseSize(maxBytes)!
            opts.runID = runID
            let store = try LocalStore(root: storeOptions.store ?? LocalStore.defaultRoot)
            let report = try HostBundler(store: store).bundle(
                root: path, options: opts, output: output, manifestOutput: manifest, useStatCache: !noStatCache)
            print(out.json ? report.json.canonicalString : report.sourceSHA256.hex)
            for w in report.warnings { Console.shared.warning(w) }
        }
    }
}
