import ArgumentParser
import Foundation
import RCHCore
import RCHJob
import RCHProtocol
import RCHStore

/// Runs a command body with the output options applied, turning lane errors into the stable exit code and
/// a clear message on stderr (and, with `--json`, `{"ok":false,"error":{…}}` on stdout).
public func runReportingFailures(_ output: OutputOptions, _ body: () throws -> Void) throws {
    output.activate()
    defer { Console.shared.finish() }
    try runReportingFailures(json: output.json, body)
}

/// As above, for the commands whose stdout is a stream (`rpc`, `export-source`): no console options.
public func runReportingFailures(json: Bool, _ body: () throws -> Void) throws {
    do {
        try body()
    } catch let e as LaneError {
        reportFailure(
            kind: e.failureKind.rawValue, subkind: e.failureSubkind, message: e.description, exit: e.exitCode,
            json: json)
        throw ExitCode(e.exitCode)
    } catch let e as SystemError {
        let exit = FailureKind.executor.exitCode
        reportFailure(
            kind: FailureKind.executor.rawValue, subkind: "IO_ERROR", message: e.description, exit: exit, json: json)
        throw ExitCode(exit)
    }
}

/// Prints an error: the message on stderr and, with `--json`, `{"ok":false,"error":{…}}` on stdout.
public func reportFailure(kind: String, subkind: String?, message: String, exit: Int32, json: Bool) {
    Console.shared.write("error: \(message)\n")
    if json {
        let error = JSONValue.obj([
            "failure_kind": .string(kind), "failure_subkind": subkind.map { .string($0) } ?? .null,
            "message": .string(message), "exit_code": .int(Int64(exit)),
        ])
        print(JSONValue.obj(["ok": .bool(false), "error": error]).canonicalString)
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

/// `--store DIR` of `rch-worker`: the worker's one store. Precedence: `--store` (the forced command's) >
/// `$RCH_WORKER_STORE` > `[worker] store` of the worker config > `$XDG_DATA_HOME/rch/worker-store` (the
/// embedded worker's). Read-only commands open it with ``openExisting(config:)``: a directory that is not a
/// store is an error and nothing is created.
public struct WorkerStoreOptions: ParsableArguments {
    @Option(
        name: .long,
        help:
            "The worker's store (default: $RCH_WORKER_STORE, else [worker] store, else ~/.local/share/rch/worker-store)."
    )
    public var store: String?

    public init() {}

    public func path(config: String?, environment: [String: String] = ProcessInfo.processInfo.environment) throws
        -> String
    {
        if let store { return store }
        if let env = environment["RCH_WORKER_STORE"], !env.isEmpty { return env }
        let file = config ?? UserDirectories.configHome(environment) + "/rch/worker.toml"
        if let layer = try Config.load(.host, path: file), let s = layer.value["worker"]?["store"] {
            guard let p = s.stringValue, p.hasPrefix("/") || p.hasPrefix("~/") else {
                throw StoreError.invalid("\(file): [worker] store must be an absolute path")
            }
            return p.hasPrefix("~/") ? NSHomeDirectory() + String(p.dropFirst()) : p
        }
        return UserDirectories.dataHome(environment) + "/rch/worker-store"
    }

    /// Opens the store, creating it if needed (commands that write).
    public func open(config: String? = nil) throws -> LocalStore { try LocalStore(root: try path(config: config)) }

    /// Opens an existing store only (read-only commands).
    public func openExisting(config: String? = nil) throws -> LocalStore {
        try LocalStore.existing(root: try path(config: config))
    }
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

/// `--version` of both binaries: the lane version, the protocol range and the bundle format.
public enum VersionInfo {
    public static var text: String {
        "rch-xcode-store \(LaneProtocol.laneVersion) (protocol \(LaneProtocol.minVersion)...\(LaneProtocol.maxVersion), bundle format v1, tar rch-canonical-tar/1)"
    }
}

/// Job listings for people: one line per job.
public enum JobTable {
    public static func print(_ jobs: [JSONValue]) {
        Swift.print(
            "JOB_ID                      RUN_ID                      ACTION  STATE      CREATED                   CACHED_FROM"
        )
        for j in jobs {
            func col(_ k: String, _ w: Int) -> String {
                let v = j[k]?.stringValue ?? "-"
                return v.padding(toLength: max(w, v.count), withPad: " ", startingAt: 0)
            }
            Swift.print(
                [
                    col("job_id", 27), col("run_id", 27), col("action", 7), col("state", 10), col("created_at", 25),
                    j["cached_from_job_id"]?.stringValue ?? "-",
                ].joined(separator: " "))
        }
        if jobs.isEmpty { Swift.print("(no jobs)") }
    }
}
