import ArgumentParser
import Foundation
import RCHCLISupport
import RCHCore
import RCHStore

/// The job_key argument and requested profile shared by `lookup` and `materialise-result`.
struct HitOptions: ParsableArguments {
    @Argument(help: "The job_key.") var jobKey: String
    @Option(help: "Requested artifact profile: minimal or rich.") var profile: String = "minimal"
    @Option(
        name: .customLong("executor-class"), help: "Only results of this executor class match: recording or xcodebuild."
    )
    var executorClass: String

    func validate() throws {
        _ = try digestArgument(jobKey, "job_key")
        guard ArtifactProfile(rawValue: profile) != nil else {
            throw ValidationError("--profile must be minimal or rich")
        }
        guard Producer.classes.contains(executorClass) else {
            throw ValidationError("--executor-class must be recording or xcodebuild")
        }
    }

    var key: SHA256Digest { SHA256Digest(hex: jobKey)! }
    var requested: ArtifactProfile { ArtifactProfile(rawValue: profile)! }
}

struct ResultOptions: ParsableArguments {
    @Option(help: "cache.namespace.") var namespace: String = "default"

    func validate() throws {
        guard Identifier.isValid(namespace, .namespace) else {
            throw ValidationError(IdentifierError(kind: .namespace, value: namespace).description)
        }
    }
}

struct RecordResultCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "record-result", abstract: "Cache a successful job's artifact directory under its job_key.")

    @Argument(help: "The job's artifact directory.") var directory: String
    @Option(name: .customLong("job-key"), help: "The job_key.") var jobKey: String
    @Option(name: .customLong("executor-class"), help: "Who produced the files: recording or xcodebuild.")
    var executorClass: String
    @Option(
        name: .customLong("backend-version"), help: "The producing backend's version (e.g. 'Xcode 16.2 (16C5032a)').")
    var backendVersion: String = "unknown"
    @OptionGroup var result: ResultOptions
    @Option(help: "Worker config file (default ~/.config/rch/worker.toml).") var config: String?
    @OptionGroup var out: OutputOptions
    @OptionGroup var storeOptions: WorkerStoreOptions

    func validate() throws {
        _ = try digestArgument(jobKey, "--job-key")
        guard Producer.classes.contains(executorClass) else {
            throw ValidationError("--executor-class must be recording or xcodebuild")
        }
    }

    func run() throws {
        try runReportingFailures(out) {
            let (store, settings) = try ConfiguredStore.open(storeOptions, config: config)
            let producer = Producer(
                executorClass: executorClass, backend: executorClass, backendVersion: backendVersion)
            let r = try ResultStore(store: store).record(
                directory, jobKey: SHA256Digest(hex: jobKey)!, namespace: result.namespace, producer: producer)
            ConfiguredStore.maybeStartGC(store, settings, config: config)
            if out.json {
                printJSON(
                    .obj([
                        "ok": .bool(true), "artifact_profile": .string(r.profile.rawValue), "stored": .bool(r.stored),
                        "new_blobs": .int(Int64(r.newBlobs)), "entries": .int(Int64(r.fileCount)),
                    ]))
            } else {
                print(r.profile.rawValue)
            }
        }
    }
}

struct LookupCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "lookup", abstract: "Look up a cached result; exit 0 on a hit, 1 on a miss (with the reason).")

    @OptionGroup var hit: HitOptions
    @OptionGroup var result: ResultOptions
    @OptionGroup var out: OutputOptions
    @OptionGroup var storeOptions: WorkerStoreOptions

    func run() throws {
        try runReportingFailures(out) {
            let l = ResultStore(store: try storeOptions.openExisting()).lookup(
                jobKey: hit.key, namespace: result.namespace, profile: hit.requested, executorClass: hit.executorClass)
            switch l {
            case .hit(let e):
                if out.json {
                    printJSON(
                        .obj([
                            "hit": .bool(true), "artifact_profile": .string(e.profile.rawValue),
                            "job_id": .string(e.jobID),
                            "run_id": .string(e.runID), "entries": .int(Int64(e.entries.count)),
                        ]))
                } else {
                    print("hit: \(e.profile.rawValue) result of job \(e.jobID)")
                }
            case .miss(let why):
                if out.json {
                    printJSON(.obj(["hit": .bool(false), "reason": .string(why)]))
                } else {
                    print("miss: \(why)")
                }
                throw ExitCode(1)
            }
        }
    }
}

struct MaterialiseResultCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "materialise-result",
        abstract:
            "Serve a cache hit into a new job directory (ids rewritten, manifest/attestation/job_index regenerated).",
        discussion: """
            Without --into, the hit is served as the worker serves it: by reference, into the store's job \
            directory work/<job-id>/artifacts — only the rewritten records and the commit files are written; the \
            other files stay blobs (read and verified when the job is fetched) and are kept by gc while the job \
            directory exists. With --into DIR, every file is copied out of the store into DIR (verified).
            """)

    @OptionGroup var hit: HitOptions
    @Option(name: .customLong("job-id"), help: "The new job's id.") var jobID: String
    @Option(name: .customLong("run-id"), help: "The new job's run id.") var runID: String
    @Option(help: "Export: copy every file into this new directory (must not exist).") var into: String?
    @Option(name: .customLong("worker-name"), help: "Worker name for attestation.json (default: host name).")
    var workerName: String?
    @OptionGroup var result: ResultOptions
    @OptionGroup var out: OutputOptions
    @OptionGroup var storeOptions: WorkerStoreOptions

    func validate() throws {
        guard Identifier.isValid(jobID, .jobID) else {
            throw ValidationError(IdentifierError(kind: .jobID, value: jobID).description)
        }
        guard Identifier.isValid(runID, .runID) else {
            throw ValidationError(IdentifierError(kind: .runID, value: runID).description)
        }
    }

    func run() throws {
        try runReportingFailures(out) {
            let store = try storeOptions.openExisting()
            let worker = WorkerIdentity(
                name: workerName ?? ProcessInfo.processInfo.hostName, key: try store.attestationKey())
            let m = try ResultStore(store: store).materialize(
                jobKey: hit.key, namespace: result.namespace, profile: hit.requested, executorClass: hit.executorClass,
                jobID: jobID, runID: runID,
                into: into ?? ResultReferences(store: store).root + "/" + jobID + "/artifacts", worker: worker,
                byReference: into == nil)
            if out.json {
                printJSON(
                    .obj([
                        "ok": .bool(true), "into": .string(m.jobDirectory),
                        "cached_from_job_id": .string(m.cachedFromJobID),
                        "artifact_profile": .string(m.profile.rawValue),
                        "artifact_root_sha256": .string(m.artifactRootSHA256.hex),
                    ]))
            } else {
                print(m.jobDirectory)
            }
        }
    }
}
