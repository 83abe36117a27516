import Foundation
import RCHAttestation
import RCHBundle
import RCHCore
import RCHS3
import RCHStore
import RCHTestSupport
import Testing

@testable import RCHShared

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// The tier's rules through the library, against the real Ceph RGW: trust, executor class, tampering,
/// configuration, gc and gc racing publishers.
@Suite("Shared tier rules (library, Ceph RGW)")
struct SharedTierLibraryTests {
    /// A worker-side store with its own key, and a tier on a fresh prefix of the test bucket.
    final class Side: @unchecked Sendable {
        let dir = TempDir()
        let store: LocalStore
        let worker: WorkerIdentity
        var tier: SharedTier

        /// Rebuilds the tier trusting `keys` too.
        func trust(_ keys: [String]) throws {
            var c = tier.config
            c.trustedKeys = Set(keys)
            tier = try SharedTier(config: c, store: store, worker: worker)
        }

        init(prefix: String, trusted: [String] = [], name: String = "w") throws {
            let rgw = try TestRGW.shared()
            store = try LocalStore(root: dir.sub("store"))
            worker = WorkerIdentity(name: name, key: try AttestationKey.loadOrCreate(directory: dir.sub("keys")))
            var config = SharedConfig(
                location: S3Location(
                    endpoint: rgw.endpoint, bucket: rgw.bucket, region: rgw.region,
                    credentials: .init(accessKeyID: rgw.accessKey, secretAccessKey: rgw.secretKey)))
            config.prefix = prefix
            config.trustedKeys = Set(trusted)
            config.retryAfterSeconds = 0
            tier = try SharedTier(config: config, store: store, worker: worker)
        }

        /// Pulls `key` (namespace `app`) for `cls` at `profile`.
        func pull(_ key: SHA256Digest, _ cls: String = "recording", profile: ArtifactProfile = .minimal)
            -> SharedTier.Pull
        {
            tier.pullResult(namespace: "app", jobKey: key, profile: profile, executorClass: cls)
        }

        /// Records a successful build result of class `cls` for a fresh key.
        func record(
            _ cls: String = "recording", rich: Bool = false, key: SHA256Digest = .of(Array(UUID().uuidString.utf8))
        )
            throws -> SHA256Digest
        {
            let d = dir.sub("art-" + key.hex.prefix(8))
            try StoreFixtures.artifacts(d, action: "build", rich: rich, jobKey: key)
            _ = try ResultStore(store: store).record(
                d, jobKey: key, namespace: "app",
                producer: Producer(executorClass: cls, backend: cls, backendVersion: "1"))
            return key
        }
    }

    @Test("a recording-class result is never pulled by an xcodebuild worker; a trusted one of its class is")
    func executorClass() throws {
        let prefix = TestRGW.uniquePrefix("class")
        let a = try Side(prefix: prefix)
        let key = try a.record("recording")
        #expect(try a.tier.publishResult(namespace: "app", jobKey: key) != .gone)
        let b = try Side(prefix: prefix, trusted: [a.worker.fingerprint])
        let why = Self.missReason(b.pull(key, "xcodebuild"))
        #expect(why != nil, "a recording result must not be pulled by an xcodebuild worker")
        #expect(why?.contains("recording") == true)
        #expect(try ResultStore(store: b.store).entry(namespace: "app", jobKey: key) == nil)
        #expect(Self.pulled(b.pull(key, "recording")), "a trusted result of the worker's class must be pulled")
        let entry = try #require(try ResultStore(store: b.store).entry(namespace: "app", jobKey: key))
        #expect(entry.origin?.publisherFingerprint == a.worker.fingerprint)
        // Profile: a minimal result does not satisfy a rich request.
        #expect(Self.missReason(b.pull(key, profile: .rich))?.contains("profile") == true)
    }

    @Test("an entry edited in the tier (signature no longer verifies) or stored under another key is refused")
    func tampered() throws {
        let prefix = TestRGW.uniquePrefix("tamper")
        let a = try Side(prefix: prefix)
        let key = try a.record()
        _ = try a.tier.publishResult(namespace: "app", jobKey: key)
        let b = try Side(prefix: prefix, trusted: [a.worker.fingerprint])
        let layout = TierLayout(prefix: prefix)
        var text = String(decoding: try #require(try a.tier.client.get(layout.result("app", key))).bytes, as: UTF8.self)
        text = text.replacingOccurrences(of: "\"run_id\":\"run_0000000001\"", with: "\"run_id\":\"run_0000000002\"")
        _ = try a.tier.client.put(layout.result("app", key), Array(text.utf8))
        let why = Self.missReason(b.pull(key, "recording"))
        #expect(why != nil, "an edited entry must be refused")
        #expect(why?.contains("signature") == true)
        // A valid document copied under another key.
        let other = SHA256Digest.of(Array("other".utf8))
        _ = try a.tier.publishResult(namespace: "app", jobKey: try a.record(key: other))
        let moved = try #require(try a.tier.client.get(layout.result("app", other))).bytes
        let victim = SHA256Digest.of(Array("victim".utf8))
        _ = try a.tier.client.put(layout.result("app", victim), moved)
        #expect(!Self.pulled(b.pull(victim, "recording")), "an entry stored under another key must be refused")
        #expect(b.tier.health.counters().first { $0.0 == "rejected" }?.1 == 2)
    }

    @Test("a richer result replaces a poorer tier entry; a poorer one leaves a richer entry alone")
    func richerReplaces() throws {
        let prefix = TestRGW.uniquePrefix("rich")
        let key = SHA256Digest.of(Array(prefix.utf8))
        let poor = try Side(prefix: prefix)
        let rich = try Side(prefix: prefix)
        try poor.trust([rich.worker.fingerprint])
        try rich.trust([poor.worker.fingerprint])
        _ = try poor.record(key: key)
        _ = try rich.record(rich: true, key: key)
        #expect(try poor.tier.publishResult(namespace: "app", jobKey: key) != .present)
        #expect(try rich.tier.publishResult(namespace: "app", jobKey: key) != .present)
        #expect(try poor.tier.publishResult(namespace: "app", jobKey: key) == .present)
        let reader = try Side(prefix: prefix, trusted: [rich.worker.fingerprint])
        #expect(
            Self.pulled(reader.pull(key, "recording", profile: .rich)),
            "the rich entry must have replaced the minimal one")
    }

    static func pulled(_ p: SharedTier.Pull) -> Bool {
        if case .pulled = p { return true }
        return false
    }

    static func missReason(_ p: SharedTier.Pull) -> String? {
        if case .miss(let why) = p { return why }
        return nil
    }

    static let configs: [(String, String)] = [
        ("bucket = \"b\"", "endpoint is required"),
        ("endpoint = \"http://h:1\"", "bucket is required"),
        ("endpoint = \"ftp://h\"\nbucket = \"b\"", "must be http(s)://host[:port]"),
        ("endpoint = \"http://h:1\"\nbucket = \"b\"\nmode = \"rw\"", "mode must be read-write or read-only"),
        (
            "endpoint = \"http://h:1\"\nbucket = \"b\"\ntrusted_keys = [\"abc\"]",
            "trusted_keys entries must be key fingerprints"
        ),
        ("endpoint = \"http://h:1\"\nbucket = \"b\"\nprefix = \"/x\"", "prefix must be relative"),
        ("endpoint = \"http://h:1\"\nbucket = \"b\"\nretries = 3", "retries is not a known key"),
        ("endpoint = \"http://h:1\"\nbucket = \"b\"\ncredentials_file = \"CREDS\"", "mode 0600"),
    ]

    @Test("[shared] is read strictly; a credentials file readable by others is refused", arguments: configs)
    func config(_ c: (String, String)) throws {
        let d = TempDir()
        let creds = d.sub("creds")
        try "AWS_ACCESS_KEY_ID=a\nAWS_SECRET_ACCESS_KEY=s\n".write(toFile: creds, atomically: true, encoding: .utf8)
        chmod(creds, 0o644)
        let toml = "[executor]\nkind = \"recording\"\n[shared]\n" + c.0.replacingOccurrences(of: "CREDS", with: creds)
        try toml.write(toFile: d.sub("w.toml"), atomically: true, encoding: .utf8)
        let r = try Run.process(
            TestPaths.executable("rch-worker"),
            ["shared", "stats", "--store", d.sub("s"), "--config", d.sub("w.toml")],
            env: ["PATH": "/usr/bin:/bin", "AWS_ACCESS_KEY_ID": "a", "AWS_SECRET_ACCESS_KEY": "s"])
        #expect(r.status == 78, "\(r.stderr)")
        #expect(r.stderr.contains(c.1), "\(r.stderr)")
        #expect(!r.stderr.contains("AWS_SECRET_ACCESS_KEY=s"))
    }

    @Test("tier gc: unused entries go, then unreferenced blobs past the grace period; dry run changes nothing")
    func gc() throws {
        let prefix = TestRGW.uniquePrefix("gc")
        let a = try Side(prefix: prefix)
        let key = try a.record()
        _ = try a.tier.publishResult(namespace: "app", jobKey: key)
        var keep = TierGC()
        keep.maxAgeSeconds = 86400
        keep.graceSeconds = 0
        let kept = try keep.run(a.tier)
        #expect(kept.removedResults.isEmpty && kept.removedBlobs == 0 && kept.keptEntries == 1)
        sleep(1)
        var all = TierGC()
        all.maxAgeSeconds = 0
        all.graceSeconds = 0
        all.dryRun = true
        let dry = try all.run(a.tier)
        #expect(dry.removedResults.count == 1 && dry.removedBlobs > 0)
        #expect(try a.tier.client.get(TierLayout(prefix: prefix).result("app", key)) != nil)
        all.dryRun = false
        let real = try all.run(a.tier)
        #expect(real.removedResults.count == 1 && real.removedBlobs == dry.removedBlobs)
        var left: [String] = []
        try a.tier.client.listAll(prefix: prefix) { left += $0.map(\.key).filter { !$0.contains("/gc/") } }
        #expect(left.isEmpty, "\(left)")
    }

    @Test("a gc between a publisher's blob check and its entry write removes a shared blob: the publisher restores it")
    func gcInTheWindow() throws {
        let prefix = TestRGW.uniquePrefix("window")
        let a = try Side(prefix: prefix)
        let old = try a.record()
        _ = try a.tier.publishResult(namespace: "app", jobKey: old)
        sleep(1)
        let new = try a.record()
        let layout = TierLayout(prefix: prefix)
        let log = try #require(
            try ResultStore(store: a.store).entry(namespace: "app", jobKey: new)?.entries.first {
                $0.path == "build.log"
            }?.sha256)
        let tier = a.tier
        var removed = 0
        tier.beforeEntryWrite = {
            // The old entry is unused: gc deletes it and then build.log's blob, which only it referenced
            // (the new entry is not visible yet); the publisher found that blob present a moment ago.
            var gc = TierGC()
            gc.maxAgeSeconds = 0
            gc.graceSeconds = 0
            removed = (try? gc.run(tier))?.removedBlobs ?? -1
        }
        _ = try tier.publishResult(namespace: "app", jobKey: new)
        #expect(removed > 0)
        #expect(try tier.client.head(layout.blob(log)) != nil, "the publisher must re-upload what the gc removed")
        let b = try Side(prefix: prefix, trusted: [a.worker.fingerprint])
        #expect(Self.pulled(b.pull(new, "recording")), "the entry must be complete")
        let text = try String(contentsOfFile: a.store.root + "/shared/tier.log", encoding: .utf8)
        #expect(text.contains("re-uploading"))
    }

    @Test("tier gc racing publishers: every entry visible afterwards is complete")
    func gcRace() throws {
        let prefix = TestRGW.uniquePrefix("race")
        let a = try Side(prefix: prefix)
        // Twelve results that share most of their blobs (the log and the xcresult data are the same bytes).
        var keys: [SHA256Digest] = []
        for _ in 0..<12 { keys.append(try a.record("recording")) }
        // The first half is published and then becomes "old": gc (max-age 0, grace 0) deletes those entries and
        // their blobs while the second half is being published against the same blobs.
        for k in keys[0..<6] { _ = try a.tier.publishResult(namespace: "app", jobKey: k) }
        sleep(3)
        // gc (max-age 2 s, grace 0) runs back to back while the second half is published against the same
        // blobs: it deletes the old entries and then the blobs they alone referenced.
        let stop = Box(false)
        let runs = Box(0)
        let collector = Thread {
            var gc = TierGC()
            gc.maxAgeSeconds = 2
            gc.graceSeconds = 0
            while !stop.value {
                _ = try? gc.run(a.tier)
                runs.value += 1
            }
        }
        collector.start()
        for k in keys[6...] { _ = try a.tier.publishResult(namespace: "app", jobKey: k) }
        stop.value = true
        while !collector.isFinished { usleep(10_000) }
        #expect(runs.value >= 1)
        // Every entry still visible references only blobs that exist, and pulls into a fresh store.
        let b = try Side(prefix: prefix, trusted: [a.worker.fingerprint])
        var visible = 0
        for k in keys where try a.tier.client.head(TierLayout(prefix: prefix).result("app", k)) != nil {
            visible += 1
            #expect(
                Self.pulled(b.pull(k, "recording")),
                "entry \(k.hex) is visible but incomplete after gc raced its publisher")
        }
        #expect(visible >= 1, "the racing publisher's entries published after the last gc must remain")
    }
}
