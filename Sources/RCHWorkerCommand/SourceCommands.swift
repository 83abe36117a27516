import ArgumentParser
import RCHCLISupport
import RCHCore
import RCHStore

struct IngestCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ingest", abstract: "Verify a .tar.zst bundle and store it as a source (upload_source).")

    @Argument(help: "The .tar.zst bundle.") var bundle: String
    @Option(help: "Expected source_sha256.") var expect: String?
    @Option(name: .customLong("content-sha256"), help: "Expected SHA-256 of the compressed file as transferred.")
    var contentSHA256: String?
    @Option(help: "Worker config file (default ~/.config/rch/worker.toml).") var config: String?
    @OptionGroup var out: OutputOptions
    @OptionGroup var storeOptions: WorkerStoreOptions

    func validate() throws {
        if let expect { _ = try digestArgument(expect, "--expect") }
        if let contentSHA256 { _ = try digestArgument(contentSHA256, "--content-sha256") }
    }

    func run() throws {
        try runReportingFailures(out) {
            let (store, settings) = try ConfiguredStore.open(storeOptions, config: config)
            let r = try SourceStore(store: store).ingest(
                bundle: bundle, expected: expect.flatMap { SHA256Digest(hex: $0) },
                contentSHA256: contentSHA256.flatMap { SHA256Digest(hex: $0) })
            ConfiguredStore.maybeStartGC(store, settings, config: config)
            if out.json {
                printJSON(
                    .obj([
                        "ok": .bool(true), "source_sha256": .string(r.sourceSHA256.hex), "stored": .bool(r.stored),
                        "new_blobs": .int(Int64(r.newBlobs)), "new_bytes": .int(Int64(r.newBytes)),
                        "entry_count": .int(Int64(r.entryCount)),
                    ]))
            } else {
                print(r.sourceSHA256.hex)
            }
        }
    }
}

struct HasSourceCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "has-source", abstract: "Report which sources are present (complete); exit 1 if any is missing.")

    @Argument(help: "source_sha256 values.") var digests: [String]
    @OptionGroup var out: OutputOptions
    @OptionGroup var storeOptions: WorkerStoreOptions

    func validate() throws { for d in digests { _ = try digestArgument(d, "source_sha256") } }

    func run() throws {
        try runReportingFailures(out) {
            let sources = SourceStore(store: try storeOptions.openExisting())
            let present = sources.query(digests.map { SHA256Digest(hex: $0)! })
            var result = JSONObject()
            for (d, p) in zip(digests, present) { result[d] = .bool(p) }
            if out.json {
                printJSON(.object(result))
            } else {
                for (d, p) in zip(digests, present) { print("\(d) \(p ? "present" : "missing")") }
            }
            if result.members.contains(where: { $0.value == .bool(false) }) { throw ExitCode(1) }
        }
    }
}

struct MaterialiseSourceCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "materialise-source", abstract: "Write a stored source into a new, isolated job directory.")

    @Argument(help: "source_sha256.") var sha: String
    @Option(name: .customLong("job-id"), help: "The job the directory belongs to.") var jobID: String
    @Option(help: "The new directory (must not exist).") var into: String
    @Flag(name: .customLong("no-verify"), help: "Copy blobs without re-hashing them (reflink/in-kernel copy).")
    var noVerify = false
    @OptionGroup var out: OutputOptions
    @OptionGroup var storeOptions: WorkerStoreOptions

    func validate() throws {
        _ = try digestArgument(sha, "source_sha256")
        guard Identifier.isValid(jobID, .jobID) else {
            throw ValidationError(IdentifierError(kind: .jobID, value: jobID).description)
        }
    }

    func run() throws {
        try runReportingFailures(out) {
            let n = try SourceStore(store: storeOptions.openExisting()).materialize(
                SHA256Digest(hex: sha)!, jobID: jobID, into: into, verify: !noVerify)
            if out.json {
                printJSON(.obj(["ok": .bool(true), "entries": .int(Int64(n)), "into": .string(into)]))
            } else {
                print(into)
            }
        }
    }
}

struct ExportSourceCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "export-source", abstract: "Regenerate the canonical .tar.zst of a stored source.")

    @Argument(help: "source_sha256.") var sha: String
    @Option(help: "Output file.") var output: String
    @OptionGroup var storeOptions: WorkerStoreOptions

    func validate() throws { _ = try digestArgument(sha, "source_sha256") }

    func run() throws {
        try runReportingFailures(json: false) {
            let r = try SourceStore(store: storeOptions.openExisting()).export(SHA256Digest(hex: sha)!, to: output)
            print(r.sourceSHA256.hex)
        }
    }
}
