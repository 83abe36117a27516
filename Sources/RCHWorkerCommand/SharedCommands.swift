import ArgumentParser
import RCHCLISupport
import RCHCore
import RCHS3
import RCHShared
import RCHStore
import RCHWorker

/// `rch-worker shared …`: the fleet's shared tier (`[shared]` in the worker config; PLAN §18).
struct SharedCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "shared",
        abstract: "The fleet's shared tier on an S3-compatible object store: publish queue, stats, gc.",
        subcommands: [
            SharedDrainCommand.self, SharedStatsCommand.self, SharedGCCommand.self, SharedPullCommand.self,
            SharedPublishCommand.self,
        ])
}

/// The configured tier, or a configuration error saying how to configure one.
struct SharedOptions: ParsableArguments {
    @Option(help: "Worker config file (default ~/.config/rch/worker.toml).") var config: String?
    @OptionGroup var storeOptions: WorkerStoreOptions

    func open() throws -> (WorkerShared, LocalStore) {
        let workerConfig = try WorkerConfig.load(config)
        guard workerConfig.shared != nil else {
            throw ConfigError(
                "no [shared] table in \(workerConfig.path ?? WorkerConfig.defaultPath()); add endpoint and bucket (README: a fleet with a bucket)"
            )
        }
        let store = try storeOptions.openExisting(config: config)
        guard let shared = WorkerShared(store: store, config: workerConfig) else {
            throw ConfigError("the shared tier cannot be used; see \(store.root)/shared/tier.log")
        }
        return (shared, store)
    }
}

struct SharedDrainCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "drain",
        abstract:
            "Publish what is queued in shared/queue/ (started in the background by the worker; safe to run any time).",
        discussion: "One drainer at a time: with another one running this exits at once. Exit 30 if the tier failed.")

    @OptionGroup var shared: SharedOptions
    @OptionGroup var out: OutputOptions

    func run() throws {
        try runReportingFailures(out) {
            let (s, _) = try shared.open()
            let r = try s.queue.drain(s.tier)
            let json: JSONValue = .obj([
                "ran": .bool(r.ran), "published": .int(Int64(r.published)), "present": .int(Int64(r.present)),
                "dropped": .int(Int64(r.dropped)), "deferred": .int(Int64(r.deferred)),
                "remaining": .int(Int64(s.queue.count)), "stopped_by": r.stoppedBy.map { .string($0) } ?? .null,
            ])
            if out.json {
                printJSON(json)
            } else if !out.quiet {
                print(
                    r.ran
                        ? "published \(r.published), already present \(r.present), dropped \(r.dropped), deferred \(r.deferred); \(s.queue.count) queued"
                        : "another drainer is running")
                if let why = r.stoppedBy { printError("stopped: \(why)") }
            }
            if r.stoppedBy != nil && r.deferred > 0 { throw ExitCode(FailureKind.transfer.exitCode) }
        }
    }
}

struct SharedStatsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "stats", abstract: "Objects and bytes in the tier; this worker's tier counters and queue.")

    @OptionGroup var shared: SharedOptions
    @OptionGroup var out: OutputOptions

    func run() throws {
        try runReportingFailures(out) {
            let (s, _) = try shared.open()
            let v = try TierStats.collect(s.tier, queue: s.queue)
            if out.json {
                printJSON(v)
                return
            }
            print(
                "tier \(v["endpoint"]?.stringValue ?? "")/\(v["bucket"]?.stringValue ?? "")/\(s.tier.config.prefix) (\(s.tier.config.mode.rawValue))"
            )
            for k in ["results", "sources", "blobs", "uses"] {
                let o = v["tier"]?[k]
                print("  \(k): \(o?["objects"]?.intValue ?? 0) objects, \(o?["bytes"]?.intValue ?? 0) bytes")
            }
            let counters = (v["worker"]?.objectValue?.members ?? []).map { "\($0.key) \($0.value.intValue ?? 0)" }
            print("this worker: " + counters.joined(separator: ", "))
            print("queued publishes: \(v["queued_publishes"]?.intValue ?? 0)")
            if let e = v["tier_error"]?.stringValue { print("tier not listed: \(e)") }
            if let e = v["last_error"]?.stringValue { print("last tier error: \(e)") }
        }
    }
}

struct SharedGCCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "gc",
        abstract: "Remove tier entries unused for longer than --max-age, then unreferenced blobs older than --grace.",
        discussion: """
            Safe with workers publishing at the same time (PLAN §18: the gc fence and the publishers' re-check). \
            One tier gc at a time across the fleet (gc/running.json).
            """)

    @Option(name: .customLong("max-age"), help: "Remove entries unused for longer (30d, 12h …).") var maxAge: String
    @Option(help: "Keep unreferenced blobs younger than this (default 1h).") var grace: String = "1h"
    @Flag(name: .customLong("dry-run"), help: "Change nothing; print what would be removed.") var dryRun = false
    @OptionGroup var shared: SharedOptions
    @OptionGroup var out: OutputOptions

    func validate() throws {
        guard parseDuration(maxAge) != nil else { throw ValidationError("--max-age takes a duration such as 30d") }
        guard parseDuration(grace) != nil else { throw ValidationError("--grace takes a duration such as 1h") }
    }

    func run() throws {
        try runReportingFailures(out) {
            let (s, _) = try shared.open()
            var gc = TierGC()
            gc.maxAgeSeconds = parseDuration(maxAge)!
            gc.graceSeconds = parseDuration(grace)!
            gc.dryRun = dryRun
            let r = try gc.run(s.tier)
            if out.json {
                printJSON(r.json)
                return
            }
            let verb = dryRun ? "would remove" : "removed"
            for k in r.removedResults + r.removedSources { print("\(verb) \(k)") }
            print(
                "\(verb) \(r.removedResults.count) result(s), \(r.removedSources.count) source(s), \(r.removedUses) use marker(s), "
                    + "\(r.removedBlobs) blob(s) (\(r.bytesFreed) bytes); kept \(r.keptEntries) entries, \(r.keptBlobs) blobs"
            )
        }
    }
}

/// `--result KEY --namespace NS` or `--source SHA`: one tier object to act on.
struct SharedTarget: ParsableArguments {
    @Option(help: "A result's job_key.") var result: String?
    @Option(help: "The result's cache.namespace.") var namespace: String = "default"
    @Option(help: "A source's source_sha256.") var source: String?

    func validate() throws {
        guard (result == nil) != (source == nil) else {
            throw ValidationError("give one of --result KEY or --source SHA")
        }
        if let result { _ = try digestArgument(result, "--result") }
        if let source { _ = try digestArgument(source, "--source") }
        guard Identifier.isValid(namespace, .namespace) else {
            throw ValidationError(IdentifierError(kind: .namespace, value: namespace).description)
        }
    }
}

struct SharedPullCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "pull",
        abstract:
            "Pull a result or a source from the tier into this worker's store (what a miss does), e.g. to warm a new worker.",
        discussion:
            "Exit 0 pulled (or already local), 1 not usable from the tier (the reason is printed), 30 tier unavailable."
    )

    @OptionGroup var target: SharedTarget
    @Option(help: "Profile the result must satisfy (minimal|rich).") var profile: String = "minimal"
    @OptionGroup var shared: SharedOptions
    @OptionGroup var out: OutputOptions

    func validate() throws {
        guard ArtifactProfile(rawValue: profile) != nil else { throw ValidationError("--profile is minimal or rich") }
    }

    func run() throws {
        try runReportingFailures(out) {
            let (s, store) = try shared.open()
            let pull: SharedTier.Pull
            if let key = target.result.flatMap({ SHA256Digest(hex: $0) }) {
                let cls = WorkerIdentityProvider(store: store, config: try WorkerConfig.load(shared.config)).selection
                    .executorClass
                pull = s.tier.pullResult(
                    namespace: target.namespace, jobKey: key, profile: ArtifactProfile(rawValue: profile)!,
                    executorClass: cls)
            } else {
                pull = s.tier.pullSource(SHA256Digest(hex: target.source!)!)
            }
            switch pull {
            case .pulled(let blobs, let bytes):
                if out.json {
                    printJSON(.obj(["pulled": .bool(true), "blobs": .int(Int64(blobs)), "bytes": .int(Int64(bytes))]))
                } else if !out.quiet {
                    print("pulled: \(blobs) blob(s), \(bytes) bytes downloaded")
                }
            case .miss(let why):
                if out.json { printJSON(.obj(["pulled": .bool(false), "reason": .string(why)])) } else { print(why) }
                throw ExitCode(1)
            case .unavailable(let why):
                throw S3Error.local("the shared tier is unavailable: \(why)")
            }
        }
    }
}

struct SharedPublishCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "publish",
        abstract: "Publish a local result or source to the tier now (the worker normally does it in the background).")

    @OptionGroup var target: SharedTarget
    @OptionGroup var shared: SharedOptions
    @OptionGroup var out: OutputOptions

    func run() throws {
        try runReportingFailures(out) {
            let (s, _) = try shared.open()
            let r: SharedTier.Published
            if let key = target.result.flatMap({ SHA256Digest(hex: $0) }) {
                r = try s.tier.publishResult(namespace: target.namespace, jobKey: key)
            } else {
                r = try s.tier.publishSource(SHA256Digest(hex: target.source!)!)
            }
            let text: String
            switch r {
            case .published(let blobs, let bytes): text = "published: \(blobs) blob(s), \(bytes) bytes uploaded"
            case .present: text = "the tier already has it"
            case .gone: text = "not in this worker's store"
            }
            if out.json { printJSON(.obj(["outcome": .string(text)])) } else if !out.quiet { print(text) }
            if r == .gone { throw ExitCode(1) }
        }
    }
}
