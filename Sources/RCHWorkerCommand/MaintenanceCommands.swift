import ArgumentParser
import Foundation
import RCHCLISupport
import RCHCore
import RCHShared
import RCHStore
import RCHWorker

struct GCCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "gc",
        abstract: "Evict least-recently-used and old entries, unreferenced blobs and crash residue.",
        discussion: """
            Never removes anything under an unexpired lease, blobs younger than the grace period, or entries \
            used while gc ran. Defaults come from [gc] in the worker config (max_size 80% of the filesystem, \
            max_age 30d, grace 1h). --dry-run changes nothing and prints what a real run would remove.
            """)

    @Option(name: .customLong("max-size"), help: "Size budget (bytes, 50GiB, or 80%).") var maxSize: String?
    @Option(name: .customLong("max-age"), help: "Evict entries unused for longer (30d, 12h …).") var maxAge: String?
    @Option(help: "Grace period for unreferenced blobs and residue.") var grace: String?
    @Option(help: "Only evict result entries of this cache.namespace.") var namespace: String?
    @Option(
        name: .customLong("job-retention"),
        help: "Remove finished jobs older than this (default: [jobs] retention, 24h).")
    var jobRetention: String?
    @Option(help: "Worker config file (default ~/.config/rch/worker.toml).") var config: String?
    @Flag(name: .customLong("dry-run"), help: "Change nothing; print what would be removed.") var dryRun = false
    @Flag(name: .customLong("if-idle"), help: "Exit quietly if another gc is running (used by automatic gc).")
    var ifIdle = false
    @OptionGroup var out: OutputOptions
    @OptionGroup var storeOptions: WorkerStoreOptions

    func validate() throws {
        if let maxSize, parseSize(maxSize) == nil && !maxSize.hasSuffix("%") {
            throw ValidationError("--max-size takes bytes, 50GiB or 80%")
        }
        if let maxAge, parseDuration(maxAge) == nil {
            throw ValidationError("--max-age takes a duration such as 30d or 12h")
        }
        if let grace, parseDuration(grace) == nil { throw ValidationError("--grace takes a duration such as 1h") }
        if let jobRetention, parseDuration(jobRetention) == nil {
            throw ValidationError("--job-retention takes a duration such as 24h")
        }
        if let namespace, !Identifier.isValid(namespace, .namespace) {
            throw ValidationError(IdentifierError(kind: .namespace, value: namespace).description)
        }
    }

    func run() throws {
        try runReportingFailures(out) {
            let store = try storeOptions.openExisting(config: config)
            let settings = try GCSettings.load(configPath: config, store: store)
            var gc = GarbageCollector(store: store)
            let fs = FilesystemSpace(path: store.root)
            gc.maxSize =
                try maxSize.map {
                    guard let b = fs.bytes($0) else { throw ValidationError("bad --max-size") }
                    return b
                } ?? settings.maxSize
            gc.maxAgeSeconds = maxAge.flatMap(parseDuration) ?? settings.maxAgeSeconds
            gc.graceSeconds = grace.flatMap(parseDuration) ?? settings.graceSeconds
            gc.namespace = namespace
            gc.dryRun = dryRun
            var jobs = JobRetention(store: store)
            jobs.retentionSeconds = jobRetention.flatMap(parseDuration) ?? settings.jobRetentionSeconds
            jobs.maxBytes = settings.jobMaxBytes
            jobs.recordRetentionSeconds = settings.jobRecordRetentionSeconds
            jobs.dryRun = dryRun
            var caches = CacheRetention(
                caches: WorkerCaches(store: store, lockTimeoutSeconds: 0))
            caches.maxAgeSeconds = settings.cacheMaxAgeSeconds
            caches.maxBytes = settings.cacheMaxBytes
            caches.dryRun = dryRun
            // A dry run reads only: it takes no lock (creating the lock file would modify the store).
            let work = { () throws -> (GarbageCollector.Report, JobRetention.Report, CacheRetention.Report) in
                (try gc.run(), try jobs.run(), caches.run())
            }
            guard
                let (report, jobReport, cacheReport) = dryRun
                    ? try work() : try GCRunLock.run(store, skipIfBusy: ifIdle, work)
            else { return }
            if out.json {
                var o = report.json.objectValue ?? JSONObject()
                for (k, v) in jobReport.json.objectValue?.members ?? [] where k != "dry_run" { o[k] = v }
                for (k, v) in cacheReport.json.objectValue?.members ?? [] { o[k] = v }
                printJSON(.object(o))
            } else {
                printGC(report)
                let verb = dryRun ? "would remove" : "removed"
                for j in jobReport.removed { print("\(verb) job \(j.id) (\(j.reason))") }
                print(
                    "jobs: \(jobReport.removed.count) \(verb), \(jobReport.bytesFreed) bytes; \(jobReport.recordsRemoved) job record(s)"
                )
                for c in cacheReport.removed { print("\(verb) cache \(c.name) (\(c.reason))") }
                print("caches: \(cacheReport.removed.count) \(verb), \(cacheReport.bytesFreed) bytes")
            }
        }
    }

    func printGC(_ r: GarbageCollector.Report) {
        let verb = r.dryRun ? "would remove" : "removed"
        for e in r.entries { print("\(verb) \(e.label) (\(e.reason))") }
        print(
            "\(verb) \(r.entries.count) entries, \(r.blobs) blobs, \(r.residue) residue files, \(r.expiredLeases) expired leases; "
                + "\(r.bytesFreed) bytes freed (\(r.bytesBefore) → \(r.bytesAfter))")
        for s in r.skipped { printError("note: \(s)") }
    }
}

/// One gc at a time per store (`locks/gc-run.lock`); automatic gc skips when one is running.
enum GCRunLock {
    static func run<T>(_ store: LocalStore, skipIfBusy: Bool, _ body: () throws -> T) throws -> T? {
        let path = store.root + "/locks"
        try Syscalls.makeDirectories(path)
        let fd = open(path + "/gc-run.lock", O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw StoreError.invalid("cannot open \(path)/gc-run.lock") }
        defer { close(fd) }
        if flock(fd, LOCK_EX | (skipIfBusy ? LOCK_NB : 0)) != 0 { return nil }
        return try body()
    }
}

struct FsckCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "fsck",
        abstract:
            "Re-hash every blob and check every entry; with --repair, move corrupt blobs and broken entries to quarantine/.",
        discussion:
            "Exit 0 when clean, 70 (ARTIFACTS / INTEGRITY_MISMATCH) when problems were found (after repairing them with --repair)."
    )

    @Flag(help: "Quarantine corrupt blobs and broken entries (never deletes).") var repair = false
    @OptionGroup var out: OutputOptions
    @OptionGroup var storeOptions: WorkerStoreOptions

    func run() throws {
        try runReportingFailures(out) {
            var fsck = Fsck(store: try storeOptions.openExisting())
            fsck.repair = repair
            let r = try fsck.run()
            if out.json {
                printJSON(r.json)
            } else {
                print(
                    "checked \(r.blobsChecked) blobs and \(r.entriesChecked) entries: \(r.corruptBlobs.count) corrupt blobs, "
                        + "\(r.brokenEntries.count) broken entries, \(r.orphanBlobs) orphan blobs (gc removes those)")
                for d in r.corruptBlobs { print("corrupt blob \(d.hex)") }
                for e in r.brokenEntries { print("broken \(e.label): \(e.reason)") }
                for j in r.brokenReferences {
                    print("broken job \(j.jobID) (served by reference; its fetch fails — resubmit it): \(j.reason)")
                }
                for q in r.quarantined { print("quarantined \(q)") }
            }
            if !r.clean { throw ExitCode(FailureKind.artifacts.exitCode) }
        }
    }
}

struct StatsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "stats", abstract: "Entries, blobs, bytes, dedup ratio, use times, leases and hit/miss counters.",
        discussion: """
            Shard directories unchanged since an earlier run are not rescanned: their totals come from \
            cache/shard-summaries.bin (see store-layout.md). `shards` says how many were rescanned.
            """)

    @OptionGroup var out: OutputOptions
    @OptionGroup var storeOptions: WorkerStoreOptions

    func run() throws {
        try runReportingFailures(out) {
            let store = try storeOptions.openExisting()
            var v = StoreStats(store: store).collect()
            // Job directories (work/): finished ones are what [jobs] retention collects.
            let jobs = JobRetention(store: store).survey()
            if case .object(var o) = v {
                o["jobs"] = .obj([
                    "count": .int(Int64(jobs.count)), "active": .int(Int64(jobs.filter { !$0.finished }.count)),
                    "finished": .int(Int64(jobs.filter(\.finished).count)),
                    "bytes": .int(Int64(jobs.reduce(0) { $0 + $1.bytes })),
                    "finished_bytes": .int(Int64(jobs.filter(\.finished).reduce(0) { $0 + $1.bytes })),
                ])
                let caches = CacheRetention(caches: WorkerCaches(store: store, lockTimeoutSeconds: 0)).survey()
                o["caches"] = .obj([
                    "count": .int(Int64(caches.count)), "bytes": .int(Int64(caches.reduce(0) { $0 + $1.bytes })),
                    "entries": .array(
                        caches.map {
                            .obj([
                                "cache": .string($0.name), "bytes": .int(Int64($0.bytes)),
                                "last_use": .string(Timestamp.format(nanosSinceEpoch: $0.lastUseNanos)),
                            ])
                        }),
                ])
                // The shared tier as this worker saw it (local counters only; `shared stats` lists the bucket).
                let tier = TierHealth(store: store, retryAfterSeconds: 0)
                o["shared"] = .object(JSONObject(tier.counters().map { ($0.0, JSONValue.int($0.1)) }))
                o["shared_queue"] = .int(Int64(PublishQueue(store: store).count))
                v = .object(o)
            }
            if out.json { printJSON(v) } else { StatsText.print(v) }
        }
    }
}

/// `stats` for people: one line per aspect.
enum StatsText {
    static func print(_ v: JSONValue) {
        func n(_ x: JSONValue?) -> Int64 { x?.intValue ?? 0 }
        let results = v["entries"]?["results"]?.objectValue?.members.map { "\($0.key) \(n($0.value))" } ?? []
        let c = v["counters"] ?? .null
        let j = v["jobs"] ?? .null
        Swift.print("store \(v["store"]?.stringValue ?? "?")")
        Swift.print(
            "entries: \(n(v["entries"]?["sources"])) sources, results "
                + (results.isEmpty ? "none" : results.joined(separator: ", "))
                + (n(v["entries"]?["unreadable"]) > 0 ? ", \(n(v["entries"]?["unreadable"])) unreadable" : ""))
        Swift.print(
            "blobs: \(n(v["blobs"])), \(n(v["disk_bytes"])) bytes on disk for \(n(v["logical_bytes"])) logical"
                + ((v["dedup_ratio"].flatMap { r -> String? in
                    if case .double(let d) = r { return String(format: " (dedup %.2f×)", d) }
                    return r.intValue.map { " (dedup \($0)×)" }
                } ?? "")))
        Swift.print(
            "jobs: \(n(j["count"])) (\(n(j["active"])) active, \(n(j["finished"])) finished), \(n(j["bytes"])) bytes")
        Swift.print(
            "hits: results \(n(c["result_hits"])) hit / \(n(c["result_misses"])) miss, sources \(n(c["source_hits"])) hit / \(n(c["source_misses"])) miss"
        )
        Swift.print("leases: \(n(v["leases"]?["active"])) active, \(n(v["leases"]?["expired"])) expired")
        let s = v["shared"] ?? .null
        if n(s["lookups"]) + n(s["results_published"]) + n(s["sources_published"]) + n(v["shared_queue"]) > 0 {
            Swift.print(
                "shared tier: \(n(s["hits"])) hit / \(n(s["misses"])) miss, \(n(s["rejected"])) rejected, \(n(s["corrupt"])) corrupt, "
                    + "\(n(s["unavailable"])) unavailable; published \(n(s["results_published"])) results, "
                    + "\(n(s["sources_published"])) sources; \(n(v["shared_queue"])) queued")
        }
        Swift.print("caches: \(n(v["caches"]?["count"])) (DerivedData, SwiftPM), \(n(v["caches"]?["bytes"])) bytes")
        Swift.print(
            "use: oldest \(v["oldest_use"]?.stringValue ?? "-"), newest \(v["newest_use"]?.stringValue ?? "-"); "
                + "shards rescanned \(n(v["shards"]?["rescanned"])) of \(n(v["shards"]?["total"]))")
    }
}
