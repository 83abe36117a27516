import ArgumentParser
import Foundation
import RCHCLISupport
import RCHCore
import RCHJob

struct CanonicalizeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "canonicalize",
        abstract: "Print the RFC 8785 (JCS) canonical form of a JSON document.",
        discussion:
            "Strict: duplicate keys, lone surrogates, invalid UTF-8, NaN/Infinity and trailing data are errors (exit 65)."
    )

    @Argument(help: "JSON file, or - for standard input.") var file: String = "-"
    @OptionGroup var out: OutputOptions

    func run() throws {
        out.activate()
        let bytes = try readInput(file, json: out.json)
        do {
            let v = try JSONParser().parse(bytes)
            FileHandle.standardOutput.write(Data(v.canonicalBytes))
        } catch {
            let message = "\(file == "-" ? "stdin" : file) is not a JSON document we accept: \(error)"
            reportFailure(kind: "USAGE", subkind: "INVALID_JSON", message: message, exit: 65, json: out.json)
            throw ExitCode(65)
        }
    }
}

struct KeyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "key",
        abstract: "Validate job_key_inputs and print its job_key (SHA-256 of the canonical JSON).",
        discussion:
            "Accepts a job_key_inputs.json or a job.json (its job_key_inputs member). Invalid inputs exit 10 (CLASSIFIER_REJECTED)."
    )

    @Argument(help: "job_key_inputs.json or job.json, or - for standard input.") var file: String = "-"
    @OptionGroup var out: OutputOptions

    func run() throws {
        let bytes = try readInput(file, json: out.json)
        try runReportingFailures(out) {
            let doc: JSONValue
            do { doc = try JSONParser().parse(bytes) } catch {
                throw JobKeyError("", "\(error)")
            }
            let inputs = try JobKeyInputs(json: doc["job_key_inputs"] ?? doc)
            if out.json {
                print(
                    JSONValue.obj(["job_key": .string(inputs.jobKey.hex), "job_key_inputs": inputs.json])
                        .canonicalString)
            } else {
                print(inputs.jobKey.hex)
            }
        }
    }
}

func readInput(_ file: String, json: Bool) throws -> [UInt8] {
    if file == "-" { return Array(FileHandle.standardInput.readDataToEndOfFile()) }
    guard let d = FileManager.default.contents(atPath: file) else {
        let message = "cannot read \(file); give a readable file, or - for standard input"
        reportFailure(kind: "USAGE", subkind: "NOT_FOUND", message: message, exit: CommandExit.notFound, json: json)
        throw ExitCode(CommandExit.notFound)
    }
    return Array(d)
}
