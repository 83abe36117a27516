import ArgumentParser
import RCHBundle
import RCHCLISupport
import RCHCore

struct ExtractCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "extract",
        abstract: "Verify a canonical bundle and extract it into a new, empty directory.",
        discussion: """
            The archive is decompressed and hashed, and every entry validated, before anything is \
            written; then it is extracted into a staging directory that is renamed to DIR.
            """)

    @Argument(help: "The .tar.zst bundle.") var file: String
    @Option(help: "Target directory (must not exist, or be empty).") var into: String
    @Option(help: "Expected source_sha256.") var expect: String?
    @Option(name: .customLong("max-bytes"), help: "Largest uncompressed tar accepted (default 8GiB).") var maxBytes:
        String = "8GiB"
    @Option(name: .customLong("max-entries"), help: "Most entries accepted.") var maxEntries: Int = ExtractLimits()
        .maxEntries
    @OptionGroup var out: OutputOptions

    func validate() throws {
        if let expect, SHA256Digest(hex: expect) == nil {
            throw ValidationError("--expect takes 64 lowercase hex characters")
        }
        guard parseSize(maxBytes) != nil else { throw ValidationError("--max-bytes takes a byte count such as 8GiB") }
        guard maxEntries > 0 else { throw ValidationError("--max-entries must be positive") }
    }

    func run() throws {
        try runReportingFailures(out) {
            var limits = ExtractLimits()
            limits.maxTarBytes = parseSize(maxBytes)!
            limits.maxEntries = maxEntries
            let result = try Extractor(limits: limits).extract(
                bundle: file, into: into, expected: expect.flatMap { SHA256Digest(hex: $0) })
            if out.json {
                print(
                    JSONValue.obj([
                        "ok": .bool(true), "source_sha256": .string(result.sourceSHA256.hex),
                        "tree_sha256": .string(result.treeSHA256.hex), "entry_count": .int(Int64(result.entryCount)),
                        "tar_bytes": .int(Int64(result.tarBytes)), "into": .string(into),
                    ]).canonicalString)
            } else {
                print(result.sourceSHA256.hex)
            }
        }
    }
}
