import ArgumentParser
import Foundation
import RCHBundle
import RCHCLISupport
import RCHCore
import RCHFleet
import RCHHost
import RCHRun
import RCHStore

/// `--worker NAME` and the inventory, shared by every command that talks to a worker.
struct WorkerOptions: ParsableArguments {
    @Option(
        help:
            "Worker name from the inventory ('local' = the embedded worker). verify, run and push choose one when it is not given."
    ) var worker: String?
    @Option(help: "Worker inventory (default: $RCH_WORKERS, else ~/.config/rch/workers.toml).") var inventory: String?
    @OptionGroup var storeOptions: StoreOptions

    /// The named worker, else the only one: the embedded `local` when the inventory names none, its one worker.
    func client() throws -> WorkerClient {
        try WorkerClient(worker: try entry(), hostStore: try storeOptions.open())
    }

    func entry() throws -> WorkerEntry {
        if let worker { return try WorkerInventory.find(worker, path: inventory) }
        let listed = try WorkerInventory.load(inventory).filter(\.fromInventory)
        if listed.isEmpty { return try WorkerInventory.find("local", path: inventory) }
        guard listed.count == 1 else {
            throw ValidationError(
                "give --worker: the inventory has \(listed.count) workers (\(listed.map(\.name).joined(separator: ", ")))"
            )
        }
        return listed[0]
    }

    /// `--worker`'s client, else the fleet's choice for `steps` of the repository at `root` (PLAN §17).
    func choose(root: String, steps: [[String]], options: RunOptions) throws -> (WorkerClient, SelectionRecord?) {
        if worker != nil { return (try client(), nil) }
        let (client, record) = try RunWorkerChoice.select(
            root: root, steps: steps, inventory: try WorkerInventory.load(inventory),
            hostStore: try storeOptions.open(),
            options: options)
        Console.shared.notice(
            "worker \(client.worker.name) chosen (\(record.mode): \(record.candidates.first { $0.worker == client.worker.name }?.reason ?? ""))"
        )
        return (client, record)
    }
}

struct PushCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "push",
        abstract: "Bundle a repository and make sure the worker has it, sending as little as possible.",
        discussion: "Prints what was sent: method (present | upload_tree | upload_source), bytes and round trips.")

    @Argument(help: "Repository root.") var path: String = "."
    @Option(help: "Selection: worktree, git_index or git (default: [bundle] mode, else worktree).") var mode: String?
    @OptionGroup var out: OutputOptions
    @OptionGroup var workerOptions: WorkerOptions

    func validate() throws {
        if let mode, SelectionMode(rawValue: mode) == nil {
            throw ValidationError(SelectionMode.usage)
        }
    }

    func run() throws {
        try runReportingFailures(out) {
            let root = try RepoRootNotice.root(path)
            var opts = try RepoBundleOptions.load(root: root)
            if let mode { opts.mode = SelectionMode(rawValue: mode)! }
            let (client, _) = try workerOptions.choose(root: root, steps: [], options: RunOptions())
            let r = try Pusher(client: client).push(root: root, options: opts)
            if out.json {
                printJSON(r.json)
            } else {
                let w = r.wire
                print(
                    "\(r.sourceSHA256.hex) \(r.method): \(w["bytes_total"]?.intValue ?? 0) bytes on the wire in \(w["round_trips"]?.intValue ?? 0) round trip(s)"
                        + (r.method == "upload_tree" ? ", \(r.blobsSent) blob(s)" : ""))
            }
        }
    }
}

struct ProbeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "probe", abstract: "Probe a worker: protocol range, features, executor, identity, attestation key."
    )
    @Flag(help: "Probe every worker of the inventory, in parallel, and print one line each.") var all = false
    @OptionGroup var out: OutputOptions
    @OptionGroup var workerOptions: WorkerOptions

    func validate() throws {
        if all && workerOptions.worker != nil { throw ValidationError("--all probes every worker; drop --worker") }
    }

    func run() throws {
        try runReportingFailures(out) {
            if all {
                let statuses = WorkerStatus.collect(
                    inventory: try WorkerInventory.load(workerOptions.inventory),
                    hostStore: try workerOptions.storeOptions.open(), probe: true)
                WorkerTable.print(statuses, json: out.json)
                if statuses.allSatisfy({ $0.reachable == false }) {
                    throw TransportError("no worker of the inventory answered the probe")
                }
                return
            }
            let c = try workerOptions.client()
            var p = try c.negotiate(forceProbe: true)
            p["negotiated_protocol_version"] = .int(Int64(c.protocolVersion ?? 0))
            if out.json {
                printJSON(.object(p))
                return
            }
            let caps = p["capabilities"] ?? .null
            let xcode = caps["xcodes"]?.arrayValue?.first
            print(
                "worker \(c.worker.name): lane \(p["rch_xcode_lane_version"]?.stringValue ?? "?"), protocol \(c.protocolVersion ?? 0)"
            )
            print(
                "executor: \(caps["executor"]?.stringValue ?? "?") (identity \(caps["identity_source"]?.stringValue ?? "unavailable"))"
            )
            if let e = caps["identity_error"]?.stringValue { print("identity error: \(e)") }
            if let xcode {
                print(
                    "Xcode \(xcode["version"]?.stringValue ?? "?") (\(xcode["build"]?.stringValue ?? "?")), macOS \(caps["macos_version"]?.stringValue ?? "?") (\(caps["macos_build"]?.stringValue ?? "?")), \(caps["arch"]?.stringValue ?? "?")"
                )
            }
            print(
                "devices: "
                    + (caps["devices"]?.arrayValue ?? []).map {
                        "\($0["name"]?.stringValue ?? "?") (\($0["os_version"]?.stringValue ?? "?"))"
                    }.joined(separator: ", "))
            print("features: " + (p["features"]?.arrayValue ?? []).compactMap(\.stringValue).joined(separator: ", "))
            print("attestation key: \(caps["attestation_key"]?["fingerprint"]?.stringValue ?? "none")")
        }
    }
}

/// `status`, `tail`, `cancel`: one op on a job, printed as JSON.
struct JobOpCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "job", abstract: "Query or control jobs on a worker: list, status, tail, cancel.",
        discussion: """
            list shows running, queued and recent jobs (newest first; --state to filter); tail prints the log \
            from --cursor and --follow keeps reading until the job ends.
            """)

    @Argument(help: "list | status | tail | cancel") var op: String
    @Argument(help: "The job_id (not for list).") var jobID: String?
    @Option(help: "tail: byte offset to start from.") var cursor: Int64 = 0
    @Flag(help: "tail: follow until the job ends.") var follow = false
    @Option(help: "list: only jobs in this state (QUEUED, RUNNING, SUCCEEDED, FAILED, CANCELLED).") var state: String?
    @OptionGroup var out: OutputOptions
    @OptionGroup var workerOptions: WorkerOptions

    func validate() throws {
        guard ["list", "status", "tail", "cancel"].contains(op) else {
            throw ValidationError("op must be list, status, tail or cancel")
        }
        if op == "list" { return }
        guard let jobID else { throw ValidationError("\(op) needs a job_id") }
        guard Identifier.isValid(jobID, .jobID) else {
            throw ValidationError(IdentifierError(kind: .jobID, value: jobID).description)
        }
    }

    func run() throws {
        try runReportingFailures(out) {
            let c = try workerOptions.client()
            if op == "list" {
                let jobs = try c.jobs(state: state)
                if out.json { printJSON(.obj(["jobs": .array(jobs)])) } else { JobTable.print(jobs) }
                return
            }
            let jobID = jobID!
            switch op {
            case "status", "cancel":
                let r = op == "status" ? try c.status(jobID) : try c.cancel(jobID)
                if out.json {
                    printJSON(.object(r))
                } else {
                    let s = r["summary"] ?? .null
                    var line = "job \(jobID): \(r["state"]?.stringValue ?? "?")"
                    if op == "cancel" {
                        line += r["cancel_requested"]?.boolValue == true ? " (cancel requested)" : " (already ended)"
                    }
                    if let from = s["cached_from_job_id"]?.stringValue { line += " (cached from \(from))" }
                    if let h = s["human_summary"]?.stringValue {
                        line += " — \(h), exit \(s["exit_code"]?.intValue ?? 0)"
                    }
                    print(line)
                }
            default:
                // Text: the log as it comes. --json: one document with the whole chunk read and the cursor.
                var next = cursor
                var nextEvent: Int64 = 0
                var log = ""
                var events: [JSONValue] = []
                var eof = false
                repeat {
                    let t = try c.tail(jobID, cursor: next, eventCursor: nextEvent)
                    let chunk = t["log_chunk"]?.stringValue ?? ""
                    if out.json { log += chunk } else { FileHandle.standardOutput.write(Data(chunk.utf8)) }
                    events += t["events"]?.arrayValue ?? []
                    for e in t["events"]?.arrayValue ?? [] { Activity.shared.detail("event \(e.canonicalString)") }
                    next = t["next_cursor"]?.intValue ?? next
                    nextEvent = t["next_event_cursor"]?.intValue ?? nextEvent
                    eof = t["eof"]?.boolValue == true
                    if eof { break }
                    if follow { usleep(200_000) }
                } while follow
                if out.json {
                    printJSON(
                        .obj([
                            "job_id": .string(jobID), "log": .string(log), "next_cursor": .int(next),
                            "events": .array(events), "next_event_cursor": .int(nextEvent), "eof": .bool(eof),
                        ]))
                }
            }
        }
    }
}

struct FetchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "fetch",
        abstract: "Fetch a job's artifacts into a new directory and verify them (exit 70 if they fail).",
        discussion: """
            The signed attestation is verified too (exit 93 ATTESTATION if it fails): the worker's published key \
            (and the inventory's attestation_pubkey_fingerprint pin), and the job_key and source this host \
            submitted for the job. The result is written to attestation_verification.json beside the artifacts.
            """)

    @Argument(help: "The job_id.") var jobID: String
    @Option(help: "Destination directory (must not exist, or be empty).") var into: String
    @OptionGroup var out: OutputOptions
    @OptionGroup var workerOptions: WorkerOptions

    func validate() throws {
        guard Identifier.isValid(jobID, .jobID) else {
            throw ValidationError(IdentifierError(kind: .jobID, value: jobID).description)
        }
        // Refused before any transfer (usage error, exit 64): a fetch never mixes into existing files.
        if let items = try? FileManager.default.contentsOfDirectory(atPath: into), !items.isEmpty {
            throw ValidationError("--into \(into) exists and is not empty; give a new directory")
        }
        var isDir: ObjCBool = false
        if FileManager.default.fileExists(atPath: into, isDirectory: &isDir), !isDir.boolValue {
            throw ValidationError("--into \(into) is a file; give a new directory")
        }
    }

    func run() throws {
        try runReportingFailures(out) {
            let client = try workerOptions.client()
            let f = try client.fetch(jobID, into: into)
            let wire = client.counter
            if out.json {
                printJSON(
                    .obj([
                        "job_id": .string(jobID), "directory": .string(f.directory),
                        "stream_bytes": .int(Int64(f.streamBytes)),
                        "files": .int(Int64(f.fileCount)), "verified": .bool(true), "attestation_verified": .bool(true),
                        "blobs_fetched": f.blobsFetched.map { .int(Int64($0)) } ?? .null,
                        "blobs_reused": f.blobsReused.map { .int(Int64($0)) } ?? .null, "wire": wire.json,
                    ]))
            } else {
                let delta =
                    f.blobsFetched.map { ", \($0) blob(s) fetched, \(f.blobsReused ?? 0) reused from this host" } ?? ""
                print(
                    "fetched \(f.fileCount) files (\(f.streamBytes) bytes\(delta); \(wire.bytesSent + wire.bytesReceived) bytes on the wire in \(wire.roundTrips) round trip(s)) into \(f.directory): manifest and attestation verified"
                )
            }
        }
    }
}
