import ArgumentParser
import Foundation
import RCHCore
import RCHStore

/// Runs a command body, turning lane errors into the stable exit code and a clear message
/// (and, with `--json`, a JSON error object on stdout).
public func runReportingFailures(json: Bool, _ body: () throws -> Void) throws {
    do {
        try body()
    } catch let e as LaneError {
        report(kind: e.failureKind.rawValue, subkind: e.failureSubkind, message: e.description, json: json)
        throw ExitCode(e.failureKind.exitCode)
    } catch let e as SystemError {
        report(kind: FailureKind.executor.rawValue, subkind: "IO_ERROR", message: e.description, json: json)
        throw ExitCode(FailureKind.executor.exitCode)
    }
}

private func report(kind: String, subkind: String?, message: String, json: Bool) {
    FileHandle.standardError.write(Data("error: \(message)\n".utf8))
    if json {
        let v = JSONValue.obj([
            "ok": .bool(false), "failure_kind": .string(kind),
            "failure_subkind": subkind.map { .string($0) } ?? .null, "message": .string(message),
        ])
        print(v.canonicalString)
    }
}

/// `--store DIR`, shared by every command that touches the local store.
public struct StoreOptions: ParsableArguments {
    @Option(name: .long, help: "Local store directory (default: $RCH_STORE, else ~/.local/share/rch/store).")
    public var store: String?

    public init() {}

    /// Opens the selected store.
    public func open() throws -> LocalStore { try LocalStore(root: store ?? LocalStore.defaultRoot) }
}

public func printError(_ s: String) {
    FileHandle.standardError.write(Data((s + "\n").utf8))
}

/// Prints a JSON value (canonical form) on stdout.
public func printJSON(_ v: JSONValue) { print(v.canonicalString) }

/// Parses a digest argument for `validate()`.
public func digestArgument(_ s: String, _ name: String) throws -> SHA256Digest {
    guard let d = SHA256Digest(hex: s) else { throw ValidationError("\(name) takes 64 lowercase hex characters") }
    return d
}
