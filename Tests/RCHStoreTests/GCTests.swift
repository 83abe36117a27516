import Foundation
import RCHCore
import RCHStore
import RCHTestSupport
import Testing

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Sets a file's mtime to `secondsAgo` seconds in the past.
func age(_ path: String, _ secondsAgo: Int) {
    var t = timespec()
    clock_gettime(CLOCK_REALTIME, &t)
    t.tv_sec -= secondsAgo
    var times = [t, t]
    utimensat(AT_FDCWD, path, &times, AT_SYMLINK_NOFOLLOW)
}

/// Every file under `root` with its size, mode and mtime, and a digest of its content (for "byte-identical").
func snapshot(_ root: String) throws -> [String] {
    let r = try Run.shell(
        "cd '\(root)' && find . -printf '%p %s %m %T@\\n' | sort && find . -type f -exec sha256sum {} + | sort")
    return r.stdout.split(separator: "\n").map(String.init)
}

@Suite("gc")
struct GCTests {
    /// A store with three results (old → new) and one source; returns (store, keys).
    static func populated(_ d: TempDir, shared: Bool = false) throws -> (LocalStore, [SHA256Digest]) {
        let store = try LocalStore(root: d.sub("store"))
        let results = ResultStore(store: store)
        var keys: [SHA256Digest] = []
        for i in 0..<3 {
            let key = SHA256Digest.of(Array("gc-\(i)".utf8))
            try StoreFixtures.artifacts(d.sub("a\(i)"), action: "build", jobKey: key, jobID: "job_000000000\(i)")
            if !shared {
                Tree(d.sub("a\(i)")).bytes("big.bin", [UInt8](repeating: UInt8(i), count: 200_000))
            } else {
                Tree(d.sub("a\(i)")).bytes("big.bin", [UInt8](repeating: 9, count: 200_000))
            }
            try results.record(d.sub("a\(i)"), jobKey: key, namespace: "app", producer: .recording)
            age(results.entryPath(namespace: "app", jobKey: key), 3000 - i * 1000)  // a0 oldest
            keys.append(key)
        }
        // Everything is older than the default grace period.
        _ = try Run.shell("find '\(store.blobs.root)' -type f -exec touch -d '-2 hours' {} +")
        return (store, keys)
    }

    static func present(_ store: LocalStore, _ keys: [SHA256Digest]) -> [Bool] {
        keys.map { (try? ResultStore(store: store).entry(namespace: "app", jobKey: $0)) != nil }
    }

    @Test("size budget evicts least recently used first; a lookup refreshes an entry")
    func lru() throws {
        let d = TempDir()
        let (store, keys) = try Self.populated(d)
        _ = ResultStore(store: store).lookup(
            jobKey: keys[0], namespace: "app", profile: .minimal, executorClass: "recording")  // a0 becomes the newest
        var gc = GarbageCollector(store: store)
        let before = try gc.run()  // no budget: nothing to do
        #expect(before.entries.isEmpty && before.blobs == 0)
        gc.maxSize = before.bytesBefore - 100_000  // forces exactly one eviction
        let r = try gc.run()
        #expect(r.entries.map(\.label) == ["result app/\(keys[1].hex)"])
        #expect(Self.present(store, keys) == [true, false, true])
        #expect(r.blobs >= 1 && r.bytesFreed >= 200_000)
        #expect(try StoreFixtures.checkStoreInvariants(store).isEmpty)
    }

    @Test("age limit; namespace filter; leases are honoured")
    func ageAndLeases() throws {
        let d = TempDir()
        let (store, keys) = try Self.populated(d)
        let lease = try Leases(store: store).acquire(
            .result(namespace: "app", jobKey: keys[0]), jobID: "job_0000000042", ttlSeconds: 600)
        var gc = GarbageCollector(store: store)
        gc.namespace = "other"
        gc.maxAgeSeconds = 1500
        #expect(try gc.run().entries.isEmpty)  // other namespace: nothing eligible
        gc.namespace = nil
        let r = try gc.run()
        #expect(r.entries.map(\.label) == ["result app/\(keys[1].hex)"])  // a0 is leased, a2 is young
        #expect(Self.present(store, keys) == [true, false, true])
        Leases(store: store).release(lease)
        #expect(try gc.run().entries.map(\.label) == ["result app/\(keys[0].hex)"])
    }

    @Test("shared blobs are counted once and kept while any entry needs them")
    func sharedBlobs() throws {
        let d = TempDir()
        let (store, keys) = try Self.populated(d, shared: true)
        let shared = SHA256Digest.of([UInt8](repeating: 9, count: 200_000))
        var gc = GarbageCollector(store: store)
        let full = try GarbageCollector(store: store).run().bytesBefore
        #expect(full < 400_000)  // one copy of the 200 kB blob
        gc.maxSize = full - 1
        let r = try gc.run()
        #expect(r.entries.count == 1 && store.blobs.has(shared))
        gc.maxSize = 0
        _ = try gc.run()
        #expect(Self.present(store, keys) == [false, false, false] && !store.blobs.has(shared))
    }

    @Test("--dry-run leaves the store byte-identical and predicts the real run exactly")
    func dryRun() throws {
        let d = TempDir()
        let (store, keys) = try Self.populated(d)
        Tree(store.root).file("blobs/sha256/.staging-dead/abc", "x")
        age(store.root + "/blobs/sha256/.staging-dead", 7200)
        let before = try snapshot(store.root)
        var gc = GarbageCollector(store: store)
        gc.maxSize = 150_000
        gc.dryRun = true
        let plan = try gc.run()
        #expect(try snapshot(store.root) == before)
        let cli = try Run.process(
            TestPaths.executable("rch-worker"),
            ["gc", "--store", store.root, "--max-size", "150000", "--dry-run", "--json"])
        #expect(cli.status == 0 && cli.stdout.contains("\"dry_run\":true"))
        #expect(try snapshot(store.root) == before)
        gc.dryRun = false
        let real = try gc.run()
        #expect(real.entries.map(\.label) == plan.entries.map(\.label))
        #expect(real.blobs == plan.blobs && real.residue == plan.residue && real.bytesFreed == plan.bytesFreed)
        #expect(Self.present(store, keys).filter { $0 }.count < 3)
    }

    @Test("grace period protects young unreferenced blobs and residue; old ones and expired leases go")
    func grace() throws {
        let d = TempDir()
        let store = try LocalStore(root: d.sub("store"))
        let batch = try store.blobs.batch()
        let young = try Array("young".utf8).withUnsafeBytes { try batch.add($0) }
        let old = try Array("old".utf8).withUnsafeBytes { try batch.add($0) }
        try batch.commit()
        age(store.blobs.path(old), 7200)
        Tree(store.root).file("sources/ab/.tmp-old", "x").file("sources/ab/.tmp-new", "x")
        age(store.root + "/sources/ab/.tmp-old", 7200)
        _ = try Leases(store: store).acquire(.source(.of([1])), jobID: "job_0000000001", ttlSeconds: 0)
        let r = try GarbageCollector(store: store).run()
        #expect(r.blobs == 1 && r.residue == 1 && r.expiredLeases == 1)
        #expect(store.blobs.has(young) && !store.blobs.has(old))
        #expect(FileManager.default.fileExists(atPath: store.root + "/sources/ab/.tmp-new"))
        #expect(Leases(store: store).all().isEmpty)
    }

    @Test("gc racing ingest, lookup and materialise in other processes never breaks a hit or an entry")
    func racing() throws {
        let d = TempDir()
        var bundles: [(String, SHA256Digest)] = []
        for seed in 1...2 {
            let (b, s, _) = try StoreFixtures.bundle(d, name: "t\(seed)", seed: UInt64(seed))
            bundles.append((b, s))
        }
        let key = SHA256Digest.of(Array("race".utf8))
        try StoreFixtures.artifacts(d.sub("art"), jobKey: key)
        let store = d.sub("store")
        let script = """
            set -u
            W='\(TestPaths.executable("rch-worker"))'
            i=0
            while [ $i -lt 12 ]; do
              i=$((i+1))
              "$W" store ingest '\(bundles[0].0)' --store '\(store)' >/dev/null 2>&1
              "$W" store ingest '\(bundles[1].0)' --store '\(store)' >/dev/null 2>&1
              "$W" store record-result '\(d.sub("art"))' --job-key \(key.hex) --namespace app --executor-class recording --store '\(store)' >/dev/null 2>&1
              "$W" store materialise-source \(bundles[0].1.hex) --job-id job_src$(printf %07d $i)$1 --into '\(d.sub("jobs"))'/s$1_$i --store '\(store)' >/dev/null 2>&1
              "$W" store materialise-source \(bundles[1].1.hex) --job-id job_sr2$(printf %07d $i)$1 --into '\(d.sub("jobs"))'/t$1_$i --store '\(store)' >/dev/null 2>&1
              "$W" store materialise-result \(key.hex) --namespace app --executor-class recording --job-id job_res$(printf %07d $i)$1 --run-id run_0000000001 --into '\(d.sub("jobs"))'/r$1_$i --store '\(store)' >/dev/null 2>&1
            done
            """
        try Data(script.utf8).write(to: URL(fileURLWithPath: d.sub("load.sh")))
        _ = try LocalStore(root: store)  // gc is a maintenance command: it refuses a directory that is not a store yet
        let workers = try (0..<2).map { n -> Process in
            let p = Process()
            p.executableURL = URL(fileURLWithPath: "/bin/sh")
            p.arguments = [d.sub("load.sh"), "w\(n)"]
            try p.run()
            return p
        }
        var gcRuns = 0
        while workers.contains(where: \.isRunning) {
            let r = try Run.process(
                TestPaths.executable("rch-worker"),
                ["gc", "--store", store, "--max-size", "0", "--grace", "0s", "--max-age", "0s"])
            #expect(r.status == 0, "\(r.stderr)")
            gcRuns += 1
        }
        #expect(gcRuns > 0)
        // Every job directory that appeared is whole; the store's visible entries are intact.
        for name in (try? FileManager.default.contentsOfDirectory(atPath: d.sub("jobs"))) ?? []
        where !name.hasPrefix(".") {
            let dir = d.sub("jobs/" + name)
            if name.hasPrefix("r") {
                #expect(ArtifactManifest.verify(dir).isEmpty, "\(name)")
            } else {
                let sha = try RCHBundleDigest.of(dir)
                #expect(bundles.contains { $0.1 == sha }, "\(name)")
            }
        }
        #expect(try StoreFixtures.checkStoreInvariants(try LocalStore(root: store)) == [])
    }
}

@Suite("fsck and stats")
struct FsckTests {
    @Test(
        "finds a flipped byte, a truncated blob, a missing blob and an orphan; --repair quarantines, lookups then miss")
    func fsck() throws {
        let d = TempDir()
        let (store, keys) = try GCTests.populated(d)
        let results = ResultStore(store: store)
        let entries = try keys.map { try #require(try results.entry(namespace: "app", jobKey: $0)) }
        let flipped = entries[0].entries.first { $0.path == "big.bin" }!.sha256!
        let truncated = entries[1].entries.first { $0.path == "big.bin" }!.sha256!
        let missing = entries[2].entries.first { $0.path == "big.bin" }!.sha256!
        chmod(store.blobs.path(flipped), 0o644)
        let fd = open(store.blobs.path(flipped), O_WRONLY)
        var b: UInt8 = 0xFF
        pwrite(fd, &b, 1, 1000)
        close(fd)
        chmod(store.blobs.path(truncated), 0o644)
        truncate(store.blobs.path(truncated), 100)
        unlink(store.blobs.path(missing))
        let batch = try store.blobs.batch()
        _ = try Array("orphan".utf8).withUnsafeBytes { try batch.add($0) }
        try batch.commit()

        let r = try Fsck(store: store).run()
        #expect(Set(r.corruptBlobs) == [flipped, truncated])
        #expect(r.brokenEntries.count == 3 && r.orphanBlobs == 1 && !r.clean)
        let cli = try Run.process(
            TestPaths.executable("rch-worker"), ["fsck", "--store", store.root, "--repair", "--json"])
        #expect(cli.status == 70 && cli.stdout.contains("\"quarantined\""))
        #expect(try FileManager.default.contentsOfDirectory(atPath: store.root + "/quarantine/blobs").count == 2)
        #expect(try FileManager.default.contentsOfDirectory(atPath: store.root + "/quarantine/entries").count == 3)
        for k in keys {
            guard
                case .miss = results.lookup(jobKey: k, namespace: "app", profile: .minimal, executorClass: "recording")
            else {
                Issue.record("still a hit")
                return
            }
        }
        let after = try Fsck(store: store).run()
        #expect(after.clean)
    }

    @Test("stats: entries by kind and namespace, bytes, dedup ratio, counters")
    func stats() throws {
        let d = TempDir()
        let (store, keys) = try GCTests.populated(d, shared: true)
        let (bundle, sha, _) = try StoreFixtures.bundle(d)
        try SourceStore(store: store).ingest(bundle: bundle, expected: sha)
        _ = ResultStore(store: store).lookup(
            jobKey: keys[0], namespace: "app", profile: .minimal, executorClass: "recording")
        _ = ResultStore(store: store).lookup(
            jobKey: .of([7]), namespace: "app", profile: .minimal, executorClass: "recording")
        _ = SourceStore(store: store).query([sha, .of([8])])
        let v = StoreStats(store: store).collect()
        #expect(v["entries"]?["sources"] == .int(1) && v["entries"]?["results"]?["app"] == .int(3))
        #expect(v["counters"]?["result_hits"] == .int(1) && v["counters"]?["result_misses"] == .int(1))
        #expect(v["counters"]?["source_hits"] == .int(1) && v["counters"]?["source_misses"] == .int(1))
        // The three results share one 200 kB blob: it counts three times logically, once on disk (where small
        // files also round up to whole blocks).
        let logical = try #require(v["logical_bytes"]?.intValue)
        let disk = try #require(v["disk_bytes"]?.intValue)
        #expect(logical >= 600_000 && logical > disk)
        if case .double(let ratio) = v["dedup_ratio"] { #expect(ratio > 1) } else { Issue.record("no dedup ratio") }
        let cli = try Run.process(TestPaths.executable("rch-worker"), ["stats", "--store", store.root, "--json"])
        #expect(cli.status == 0 && cli.stdout.contains("\"blobs\":"))
    }

    @Test("the free-space floor makes writes fail fast with nothing left behind")
    func hardLimit() throws {
        let d = TempDir()
        let (bundle, sha, _) = try StoreFixtures.bundle(d)
        try Data("[gc]\nmin_free = \"100%\"\n".utf8).write(to: URL(fileURLWithPath: d.sub("worker.toml")))
        let r = try Run.process(
            TestPaths.executable("rch-worker"),
            ["store", "ingest", bundle, "--store", d.sub("store"), "--config", d.sub("worker.toml"), "--json"])
        #expect(r.status == 90 && r.stdout.contains("STORE_FULL"), "\(r.stdout) \(r.stderr)")
        #expect(!SourceStore(store: try LocalStore(root: d.sub("store"))).has(sha))
        let left = try Run.shell("find '\(d.sub("store"))' -type f ! -name store.json ! -name '*.lock' | wc -l")
        #expect(left.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == "0")
        try Data("[gc]\nmax_age = \"soon\"\n".utf8).write(to: URL(fileURLWithPath: d.sub("bad.toml")))
        let bad = try Run.process(
            TestPaths.executable("rch-worker"), ["gc", "--store", d.sub("store"), "--config", d.sub("bad.toml")])
        #expect(bad.status != 0 && bad.stderr.contains("max_age"))
    }

    @Test("crossing auto_gc_at after a write starts a detached gc; \"\" disables it", arguments: [true, false])
    func autoGC(_ enabled: Bool) throws {
        let d = TempDir()
        let store = try LocalStore(root: d.sub("store"))
        try Syscalls.makeDirectories(store.root + "/incoming")
        let residue = store.root + "/incoming/.tmp-crashed"
        try Data("left by a crash".utf8).write(to: URL(fileURLWithPath: residue))
        age(residue, 7200)
        let (bundle, sha, _) = try StoreFixtures.bundle(d)
        let config = "[gc]\nauto_gc_at = \"\(enabled ? "0.0001%" : "")\"\nmin_free = \"0\"\ngrace = \"1h\"\n"
        try Data(config.utf8).write(to: URL(fileURLWithPath: d.sub("worker.toml")))
        let r = try Run.process(
            TestPaths.executable("rch-worker"),
            ["store", "ingest", bundle, "--store", store.root, "--config", d.sub("worker.toml"), "--json"])
        #expect(r.status == 0, "\(r.stdout) \(r.stderr)")
        #expect(SourceStore(store: store).has(sha))
        // The ingest returned without waiting; the gc it started removes the old residue on its own.
        var gone = false
        for _ in 0..<(enabled ? 300 : 20) {
            if !FileManager.default.fileExists(atPath: residue) {
                gone = true
                break
            }
            usleep(100_000)
        }
        #expect(gone == enabled)
        #expect(FileManager.default.fileExists(atPath: store.root + "/locks/gc-run.lock") == enabled)
        #expect(SourceStore(store: store).has(sha))  // young and referenced: kept
    }
}

@Suite("host gc")
struct HostGCTests {
    @Test("keeps the newest runs, young runs and running runs; logs evictions; dry-run changes nothing")
    func retention() throws {
        let d = TempDir()
        let root = d.sub("artifacts")
        for i in 0..<5 {
            let run = root + "/run_00000000\(i)0"
            Tree(run).file("summary.json", "{}")
            age(run, (i + 1) * 86_400 * 40)  // 40, 80 … days old
        }
        Tree(root + "/run_0000000020").file("run_state.json", "{\"state\":\"RUNNING\"}")  // fresh state file: running
        age(root + "/run_0000000020", 86_400 * 120)
        let before = try snapshot(root)
        let exe = TestPaths.executable("rch-xcode")
        let dry = try Run.process(
            exe,
            [
                "gc", "--artifacts", root, "--keep-runs", "1", "--keep-days", "30", "--dry-run", "--store",
                d.sub("store"),
            ])
        #expect(dry.status == 0 && dry.stdout.contains("would remove run run_0000000040"))
        #expect(try snapshot(root) == before)
        let r = try Run.process(
            exe,
            ["gc", "--artifacts", root, "--keep-runs", "1", "--keep-days", "30", "--store", d.sub("store"), "--json"])
        #expect(r.status == 0, "\(r.stderr)")
        let left = try FileManager.default.contentsOfDirectory(atPath: root).filter { $0.hasPrefix("run_") }.sorted()
        #expect(left == ["run_0000000000", "run_0000000020"])
        let log = try String(contentsOfFile: root + "/gc.log", encoding: .utf8)
        #expect(log.contains("evicted run run_0000000030") && log.contains("evicted run run_0000000040"))
    }
}
