import ArgumentParser
import Foundation
import RCHBundle
import RCHCLISupport
import RCHCore
import RCHHost
import RCHStore

/// `--worker NAME` and the inventory, shared by every command that talks to a worker.
struct WorkerOptions: ParsableArguments {
    @Option(help: "Worker name from the inventory ('local' = the embedded worker).") var worker: String = "local"
    @Option(help: "Worker inventory (default: $RCH_WORKERS, else ~/.config/rch/workers.toml).") var inventory: String?
    @OptionGroup var storeOptions: StoreOptions

    func client() throws -> WorkerClient {
        let entry = try WorkerInventory.find(worker, path: inventory)
        return try WorkerClient(worker: entry, hostStore: try storeOptions.open())
    }
}

struct PushCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "push", abstract: "Bundle a repository and make sure the worker has it, sending as little as possible.",
        discussion: "Prints what was sent: method (present | upload_tree | upload_source), bytes and round trips.")

    @Argument(help: "Repository root.") var path: String = "."
    @Option(help: "Selection: worktree or git_index.") var mode: String = "worktree"
    @Flag(help: "Print a JSON report.") var json = false
    @OptionGroup var workerOptions: WorkerOptions

    func validate() throws { guard SelectionMode(rawValue: mode) != nil else { throw ValidationError("--mode must be worktree or git_index") } }

    func run() throws {
        try runReportingFailures(json: json) {
            var opts = BundleOptions()
            opts.mode = SelectionMode(rawValue: mode)!
            let r = try Pusher(client: try workerOptions.client()).push(root: path, options: opts)
            if json { printJSON(r.json) } else {
                let w = r.wire
                print("\(r.sourceSHA256.hex) \(r.method): \(w["bytes_total"]?.intValue ?? 0) bytes on the wire in \(w["round_trips"]?.intValue ?? 0) round trip(s)"
                      + (r.method == "upload_tree" ? ", \(r.blobsSent) blob(s)" : ""))
            }
        }
    }
}

struct RunCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run", abstract: "Run an xcodebuild job on a worker: push, submit, follow, fetch and verify.",
        discussion: """
            Example: rch-xcode run . -- build -scheme App -destination 'platform=iOS Simulator,name=iPhone 16'
            A cached result for the same job_key and a sufficient artifact profile is served at once \
            (cached_from_job_id). Exits with the job's exit_code (0, 50 XCODEBUILD, 80 CANCELLED, …).
            """)

    @Argument(help: "Repository root.") var path: String = "."
    @Argument(parsing: .postTerminator, help: "xcodebuild arguments (after --).") var xcodebuild: [String] = []
    @Option(help: "Artifact profile: minimal or rich (default: [artifacts] profile, else minimal).") var profile: String?
    @Option(name: .customLong("artifacts"), help: "Host artifact root (default ~/.local/share/rch/artifacts/xcode).") var artifactRoot: String?
    @Flag(name: .customLong("no-fetch"), help: "Do not fetch the artifacts.") var noFetch = false
    @Flag(help: "Do not print the build log while the job runs.") var quiet = false
    @Flag(help: "Print a JSON report.") var json = false
    @OptionGroup var workerOptions: WorkerOptions

    func validate() throws {
        if let profile, ArtifactProfile(rawValue: profile) == nil { throw ValidationError("--profile must be minimal or rich") }
        if xcodebuild.isEmpty { throw ValidationError("give the xcodebuild arguments after --") }
    }

    func run() throws {
        var exit: Int32 = 0
        try runReportingFailures(json: json) {
            var driver = RunDriver(client: try workerOptions.client(), artifactRoot: artifactRoot ?? HostRetention.defaultArtifactRoot)
            driver.profile = profile.flatMap(ArtifactProfile.init(rawValue:))
            driver.fetch = !noFetch
            if !quiet && !json { driver.onLog = { FileHandle.standardError.write(Data($0.utf8)) } }
            driver.onNotice = { FileHandle.standardError.write(Data(("rch-xcode: " + $0 + "\n").utf8)) }
            let o = try driver.run(root: path, argv: xcodebuild)
            if json { printJSON(o.json) } else {
                print("run \(o.runID) job \(o.jobID) job_key \(o.jobKey.hex)")
                print("push: \(o.push.method), \(o.push.wire["bytes_total"]?.intValue ?? 0) bytes, \(o.push.wire["round_trips"]?.intValue ?? 0) round trip(s)")
                print(o.cached ? "cache hit: cached_from_job_id \(o.cachedFromJobID ?? "?")" : "executed on the worker")
                print("status: \(o.summary["status"]?.stringValue ?? "?") — \(o.summary["human_summary"]?.stringValue ?? "")")
                if let r = o.rekeyed { print("re-keyed: \(r)") }
                if let a = o.artifacts { print("artifacts (verified, attestation signed by the worker): \(a)") }
            }
            exit = o.exitCode
        }
        if exit != 0 { throw ExitCode(exit) }
    }
}

struct ProbeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "probe", abstract: "Probe a worker: protocol range, features, capabilities.")
    @OptionGroup var workerOptions: WorkerOptions

    func run() throws {
        try runReportingFailures(json: true) {
            let c = try workerOptions.client()
            var p = try c.negotiate(forceProbe: true)
            p["negotiated_protocol_version"] = .int(Int64(c.protocolVersion ?? 0))
            printJSON(.object(p))
        }
    }
}

/// `status`, `tail`, `cancel`: one op on a job, printed as JSON.
struct JobOpCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "job", abstract: "Query or control a job on a worker: status, tail, cancel.",
        discussion: "tail prints the log from --cursor; --follow keeps reading until the job ends.")

    @Argument(help: "status | tail | cancel") var op: String
    @Argument(help: "The job_id.") var jobID: String
    @Option(help: "tail: byte offset to start from.") var cursor: Int64 = 0
    @Flag(help: "tail: follow until the job ends.") var follow = false
    @OptionGroup var workerOptions: WorkerOptions

    func validate() throws {
        guard ["status", "tail", "cancel"].contains(op) else { throw ValidationError("op must be status, tail or cancel") }
        guard Identifier.isValid(jobID, .jobID) else { throw ValidationError(IdentifierError(kind: .jobID, value: jobID).description) }
    }

    func run() throws {
        try runReportingFailures(json: true) {
            let c = try workerOptions.client()
            switch op {
            case "status": printJSON(.object(try c.status(jobID)))
            case "cancel": printJSON(.object(try c.cancel(jobID)))
            default:
                var next = cursor
                repeat {
                    let t = try c.tail(jobID, cursor: next)
                    FileHandle.standardOutput.write(Data((t["log_chunk"]?.stringValue ?? "").utf8))
                    next = t["next_cursor"]?.intValue ?? next
                    if t["eof"]?.boolValue == true { break }
                    if follow { usleep(200_000) }
                } while follow
            }
        }
    }
}

struct FetchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "fetch", abstract: "Fetch a job's artifacts into a new directory and verify them (exit 70 if they fail).",
        discussion: """
            The signed attestation is verified too (exit 93 ATTESTATION if it fails): the worker's published key             (and the inventory's attestation_pubkey_fingerprint pin), and the job_key and source this host submitted             for the job. The result is written to attestation_verification.json beside the artifacts.
            """)

    @Argument(help: "The job_id.") var jobID: String
    @Option(help: "Destination directory (must not exist).") var into: String
    @OptionGroup var workerOptions: WorkerOptions

    func validate() throws {
        guard Identifier.isValid(jobID, .jobID) else { throw ValidationError(IdentifierError(kind: .jobID, value: jobID).description) }
    }

    func run() throws {
        try runReportingFailures(json: true) {
            let f = try workerOptions.client().fetch(jobID, into: into)
            printJSON(.obj(["job_id": .string(jobID), "directory": .string(f.directory), "stream_bytes": .int(Int64(f.streamBytes)),
                            "files": .int(Int64(f.fileCount)), "verified": .bool(true), "attestation_verified": .bool(true)]))
        }
    }
}
