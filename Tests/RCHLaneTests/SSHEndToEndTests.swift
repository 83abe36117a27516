import Foundation
import RCHBundle
import RCHCore
import RCHHost
import RCHJob
import RCHProtocol
import RCHRun
import RCHStore
import RCHTestSupport
import Testing

/// The lane through a real `sshd` on 127.0.0.1 with the forced command (`rch-worker rpc`), driven by
/// the host library exactly as `rch-xcode` drives it.
@Suite("End to end through a real sshd with the forced command")
struct SSHEndToEndTests {
    @Test("probe negotiation: common version, cached probe, incompatible range (exit 91), missing feature")
    func negotiation() throws {
        let f = try LaneFixture(ssh: true)
        let c = try f.client()
        let p = try c.negotiate(forceProbe: true)
        #expect(c.protocolVersion == 1 && c.probeSource == "fresh")
        #expect(p["rch_xcode_lane_version"]?.stringValue == LaneProtocol.laneVersion)
        #expect(p["capabilities"]?["max_upload_bytes"]?.intValue == 1 << 30)
        let capsFile = f.dir.sub("caps.json")
        _ = try DurableFile.write(p["capabilities"]!.canonicalBytes, to: capsFile)
        let v = try Sub.validate(capsFile, schema: "capabilities")
        #expect(v.status == 0, "\(v.output)")
        // A second client reuses the fresh probe: no exchange.
        let c2 = try f.client()
        try c2.negotiate()
        #expect(c2.probeSource == "cached" && c2.counter.roundTrips == 0)

        try f.writeConfig("protocol_min = 2\nprotocol_max = 3")
        #expect(throws: NegotiationError.noCommonVersion(worker: 2...3, host: 1...1)) {
            try f.client().negotiate(forceProbe: true)
        }
        let cli = try Sub.run(
            TestPaths.executable("rch-xcode"),
            ["probe", "--worker", "w", "--inventory", f.inventory, "--store", f.hostStore])
        #expect(cli.status == 91, "\(cli.stdout) \(cli.stderr)")

        try f.writeConfig("disabled_features = [\"fetch\"]")
        #expect(throws: NegotiationError.featureMissing("fetch")) { try f.client().negotiate(forceProbe: true) }
        // Optional features degrade: without upload_tree, push falls back to the whole bundle.
        try f.writeConfig("disabled_features = [\"upload_tree\"]")
        let root = try f.tree()
        let c3 = try f.client()
        try c3.negotiate(forceProbe: true)
        _ = try Pusher(client: c3).push(root: root, options: BundleOptions())
        try f.edit(root)
        let r = try Pusher(client: try f.client()).push(root: root, options: BundleOptions())
        #expect(r.method == "upload_source")
    }

    @Test("two entries for one account never share a control master: each reaches its own key's store")
    func controlMasterPerEntry() throws {
        let f = try LaneFixture(ssh: true)
        let other = f.dir.sub("other-store")
        var text = try String(contentsOfFile: f.inventory, encoding: .utf8)
        text += try String(contentsOfFile: f.inventory, encoding: .utf8)
            .replacingOccurrences(of: "name = \"w\"", with: "name = \"plain\"")
            .replacingOccurrences(of: "lane_key", with: "plain_key")
        text += "remote_command = \"\(f.workerExe) rpc --store \(other) --config \(f.configPath)\"\n"
        try text.write(toFile: f.inventory, atomically: true, encoding: .utf8)
        let host = try LocalStore(root: f.hostStore)
        // "w" opens a master first; "plain" (same host, port and user, another key) must not use it.
        let clients = try ["w", "plain", "w"].map {
            try WorkerClient(worker: try WorkerInventory.find($0, path: f.inventory), hostStore: host)
        }
        defer { clients.forEach { $0.closeConnection() } }
        let ids = try clients.map {
            try $0.negotiate(forceProbe: true)
            return $0.capabilities?["store_id"]?.stringValue ?? ""
        }
        #expect(ids[0] == ids[2] && ids[0] != ids[1] && !ids[1].isEmpty, "\(ids)")
    }

    @Test("the forced command refuses anything but the RPC, and malformed input over ssh gets the right code")
    func forbiddenAndMalformed() throws {
        let f = try LaneFixture(ssh: true)
        let shell = try f.raw(Array("{}\n".utf8), via: f.sshArgv + ["cat /etc/passwd"])
        #expect(shell["error"]?["code"]?.stringValue == "FORBIDDEN")
        let bad = try f.raw(Array("{oops\n".utf8), via: f.sshArgv + ["rch-worker rpc"])
        #expect(bad["error"]?["code"]?.stringValue == "INVALID_REQUEST")
        let id = try f.raw(Req.line("status", #"{"job_id":"../../../../etc"}"#), via: f.sshArgv + ["rch-worker rpc"])
        #expect(id["error"]?["code"]?.stringValue == "INVALID_REQUEST")
    }

    @Test("has_source hit and miss, upload_source, then upload_tree of a one-file edit (delta + one blob)")
    func uploads() throws {
        let f = try LaneFixture(ssh: true)
        let root = try f.tree()
        let c = try f.client()
        let first = try Pusher(client: c).push(root: root, options: BundleOptions())
        #expect(first.method == "upload_source" && first.bundleBytes > 0)
        // The whole upload went from a scratch file: only the manifest is kept, nothing else is left.
        let bundles = try LocalStore(root: f.hostStore).bundlesDirectory
        #expect(try Directory.list(bundles).sorted() == [first.sourceSHA256.hex + ".manifest.json"])
        let again = try Pusher(client: try f.client()).push(root: root, options: BundleOptions())
        #expect(again.method == "present")
        #expect(again.wire["round_trips"]?.intValue == 1)
        #expect((again.wire["bytes_total"]?.intValue ?? .max) <= 4096)
        #expect(try c.hasSources([first.sourceSHA256, .of([9])]) == [true, false])

        try f.edit(root)
        let edited = try Pusher(client: try f.client()).push(root: root, options: BundleOptions())
        #expect(edited.method == "upload_tree" && edited.blobsSent == 1 && edited.base == first.sourceSHA256)
        #expect(edited.wire["round_trips"]?.intValue == 1)  // the delta goes at once, no has_source first
        #expect((edited.wire["bytes_total"]?.intValue ?? .max) < Int64(first.bundleBytes) / 10)
        #expect(
            try Pusher(client: try f.client()).push(root: root, options: BundleOptions()).wire["round_trips"]?.intValue
                == 1)
        // The worker rebuilt and verified it: it can export the byte-identical bundle.
        let export = f.dir.sub("export.tar.zst")
        let ex = try Sub.run(
            f.workerExe,
            ["store", "export-source", edited.sourceSHA256.hex, "--output", export, "--store", f.workerStore])
        #expect(ex.status == 0, "\(ex.stderr)")
        #expect(try Extractor().verify(bundle: export).sourceSHA256 == edited.sourceSHA256)

        // Another host pushed the next version first: the optimistic delta is answered "present" unread.
        try f.edit(root)
        let other = try Pusher(client: try f.client(hostStore: f.dir.sub("other-host"))).push(
            root: root, options: BundleOptions())
        #expect(other.method == "upload_source")
        let mine = try Pusher(client: try f.client()).push(root: root, options: BundleOptions())
        #expect(
            mine.method == "present" && mine.sourceSHA256 == other.sourceSHA256
                && mine.wire["round_trips"]?.intValue == 1)

        // The worker lost the base (gc): the delta is refused (SOURCE_MISSING), has_source finds no base.
        try f.edit(root)
        let ws = try LocalStore(root: f.workerStore)
        let gc = try Sub.run(f.workerExe, ["gc", "--max-size", "0", "--grace", "0s", "--store", f.workerStore])
        #expect(gc.status == 0, "\(gc.stderr)")
        #expect(!SourceStore(store: ws).has(edited.sourceSHA256))
        let afterGC = try Pusher(client: try f.client()).push(root: root, options: BundleOptions())
        #expect(afterGC.method == "upload_source")  // no base left on the worker
        #expect(SourceStore(store: ws).has(afterGC.sourceSHA256))
        #expect(try Directory.list(bundles).allSatisfy { $0.hasSuffix(".manifest.json") })  // scratch bundles gone
    }

    func driver(_ f: LaneFixture, profile: ArtifactProfile? = nil) throws -> RunDriver {
        var d = RunDriver(client: try f.client(), artifactRoot: f.dir.sub("artifacts"))
        d.profile = profile
        d.pollMillis = 50
        return d
    }

    @Test(
        "submit: miss → executed and recorded; same job again → cache hit with cached_from_job_id; rich request executes again"
    )
    func submitAndHit() throws {
        let f = try LaneFixture(ssh: true)
        let root = try f.tree()
        var log = ""
        var d1 = try driver(f)
        d1.onLog = { log += $0 }
        let first = try d1.run(root: root, argv: iPhoneTest)
        #expect(first.exitCode == 0 && !first.cached, "\(first.summary.canonicalString)")
        #expect(
            log.contains("** TEST SUCCEEDED **")
                && log.contains("DEVELOPER_DIR=/Applications/Xcode.app/Contents/Developer"))
        let a1 = first.artifacts!
        for (file, schema) in [
            ("summary.json", "summary"), ("manifest.json", "manifest"), ("attestation.json", "attestation"),
            ("job_index.json", "job_index"), ("job.json", "job"),
        ] {
            let v = try Sub.validate(a1 + "/" + file, schema: schema)
            #expect(v.status == 0, "\(file): \(v.output)")
        }
        #expect(FileManager.default.fileExists(atPath: a1 + "/result.xcresult/Info.plist"))
        let record = try JSONParser().parse(try DurableFile.read(a1 + "/executor_record.json"))
        #expect(record["argv"]?.arrayValue?.first?.stringValue == "test")
        #expect(record["environment_keys"]?.arrayValue?.contains(.string("DEVELOPER_DIR")) == true)
        // not allowlisted
        #expect(record["environment_keys"]?.arrayValue?.contains(.string("SSH_CONNECTION")) == false)

        let second = try driver(f).run(root: root, argv: iPhoneTest)
        #expect(second.cached && second.cachedFromJobID == first.jobID && second.exitCode == 0)
        #expect(second.jobKey == first.jobKey && second.jobID != first.jobID)
        let s2 = try JSONParser().parse(try DurableFile.read(second.artifacts! + "/summary.json"))
        #expect(s2["cached_from_job_id"]?.stringValue == first.jobID && s2["job_id"]?.stringValue == second.jobID)
        #expect(ArtifactManifest.verify(second.artifacts!).isEmpty)

        let rich = try driver(f, profile: .rich).run(root: root, argv: iPhoneTest)
        #expect(!rich.cached && rich.exitCode == 0)
        #expect(FileManager.default.fileExists(atPath: rich.artifacts! + "/junit.xml"))
        let richAgain = try driver(f, profile: .rich).run(root: root, argv: iPhoneTest)
        #expect(richAgain.cached && richAgain.cachedFromJobID == rich.jobID)
        let minimalNow = try driver(f).run(root: root, argv: iPhoneTest)
        #expect(minimalNow.cached && minimalNow.cachedFromJobID == rich.jobID)  // rich satisfies minimal

        // The same job_id with another job_key is refused.
        let c = try f.client()
        let caps = try c.negotiate()["capabilities"]!
        let other = try JobInputsBuilder.build(argv: iPhone, sourceSHA256: first.push.sourceSHA256, capabilities: caps)
        let clash = try JobSpec(runID: first.runID, jobID: first.jobID, inputs: other, effectiveConfig: [:])
        #expect(throws: RPCError.self) { try c.submit(clash.json) }
        do { _ = try c.submit(clash.json) } catch let e as RPCError {
            #expect(e.code == .invalidRequest && e.message.contains("already submitted"))
        }
    }

    @Test("a failing job exits 50, is not cached, and runs again on resubmit")
    func failure() throws {
        let f = try LaneFixture(config: "[executor]\nbehaviour = \"fail\"", ssh: true)
        let root = try f.tree()
        let r = try driver(f).run(root: root, argv: iPhone)
        #expect(r.exitCode == 50 && r.summary["failure_kind"]?.stringValue == "XCODEBUILD")
        let again = try driver(f).run(root: root, argv: iPhone)
        #expect(!again.cached && again.exitCode == 50)
    }

    @Test("SOURCE_MISSING after the worker's gc: the host re-uploads and retries once")
    func sourceMissingRetry() throws {
        let f = try LaneFixture(ssh: true)
        let root = try f.tree()
        var d = try driver(f)
        let exe = f.workerExe
        let store = f.workerStore
        d.beforeSubmit = {
            let gc = try Sub.run(exe, ["gc", "--max-size", "0", "--grace", "0s", "--store", store])
            #expect(gc.status == 0)
        }
        let r = try d.run(root: root, argv: iPhone)
        #expect(r.retriedAfterSourceMissing && r.exitCode == 0)
    }

    @Test("cancel a hanging job: summary cancelled, exit 80, never cached; tail follows the log with cursors")
    func cancelAndTail() throws {
        let f = try LaneFixture(config: "[executor]\nbehaviour = \"hang\"\nduration_ms = 100", ssh: true)
        let root = try f.tree()
        let (c, push, inputs, spec) = try f.job(root)
        let submitted = try c.submit(spec.json)
        #expect(submitted["state"]?.stringValue == "QUEUED" && submitted["cached"]?.boolValue == false)
        // Follow the log until the executor says it hangs.
        var cursor: Int64 = 0
        var text = ""
        let deadline = Timestamp.nowNanos() + 60_000_000_000
        while !text.contains("hanging until cancelled") && Timestamp.nowNanos() < deadline {
            let t = try c.tail(spec.jobID, cursor: cursor, maxBytes: 7)
            let chunk = t["log_chunk"]?.stringValue ?? ""
            #expect(chunk.utf8.count <= 7)
            #expect(t["next_cursor"]?.intValue == cursor + Int64(chunk.utf8.count))
            text += chunk
            cursor = t["next_cursor"]!.intValue!
            if chunk.isEmpty { usleep(50_000) }
        }
        #expect(text.hasPrefix("rch recording executor") && text.contains("hanging until cancelled"), "\(text)")
        // A second job is refused while the first runs (max_concurrent_jobs 1).
        let busy = try JobSpec(
            runID: Identifier.generate(), jobID: Identifier.generate(),
            inputs: try JobInputsBuilder.build(
                argv: iPhoneTest, sourceSHA256: push.sourceSHA256, capabilities: c.capabilities!),
            effectiveConfig: [:])
        do {
            _ = try c.submit(busy.json)
            Issue.record("expected BUSY")
        } catch let e as RPCError {
            #expect(e.code == .busy && e.data["retry_after_seconds"]?.intValue == 5)
        }
        let cancel = try c.cancel(spec.jobID)
        #expect(cancel["cancel_requested"]?.boolValue == true)
        let status = try RunDriver(client: c, artifactRoot: f.dir.sub("a")).waitForEnd(spec.jobID, cached: false)
        #expect(status["state"]?.stringValue == "CANCELLED")
        #expect(
            status["summary"]?["status"]?.stringValue == "cancelled" && status["summary"]?["exit_code"]?.intValue == 80)
        #expect(status["summary"]?["failure_kind"]?.stringValue == "CANCELLED")
        let fetched = try c.fetch(spec.jobID, into: f.dir.sub("cancelled"))
        #expect(fetched.fileCount > 0)
        let v = try Sub.validate(f.dir.sub("cancelled/summary.json"), schema: "summary")
        #expect(v.status == 0, "\(v.output)")
        if case .hit = ResultStore(store: try LocalStore(root: f.workerStore)).lookup(
            jobKey: inputs.jobKey, namespace: "default", profile: .minimal, executorClass: "recording")
        {
            Issue.record("a cancelled job was cached")
        }
        // The log is complete: a tail from 0 with a big window reaches eof.
        let all = try c.tail(spec.jobID, cursor: 0, maxBytes: 1 << 20)
        #expect(all["eof"]?.boolValue == true && (all["log_chunk"]?.stringValue ?? "").contains("cancelled"))
    }

    @Test("fetch verifies the stream and the manifest; tampered artifacts and gone jobs are reported")
    func fetchVerification() throws {
        let f = try LaneFixture(ssh: true)
        let root = try f.tree()
        var d = try driver(f)
        d.fetch = false
        let r = try d.run(root: root, argv: iPhone)
        let c = try f.client()
        let ok = try c.fetch(r.jobID, into: f.dir.sub("f1"))
        #expect(ok.streamBytes > 0 && ArtifactManifest.verify(ok.directory).isEmpty)
        #expect(throws: (any Error).self) { try c.fetch(r.jobID, into: f.dir.sub("f1")) }  // destination must be new

        // Delta fetch: the host's store has every blob now, so a second fetch transfers none.
        #expect(ok.blobsFetched ?? 0 > 0 && ok.blobsReused == 0)
        let again = try c.fetch(r.jobID, into: f.dir.sub("f1b"))
        #expect(again.blobsFetched == 0 && again.streamBytes == 0 && ArtifactManifest.verify(again.directory).isEmpty)

        // Tamper with an artifact on the worker after commit (and drop the cached stream): a host without those
        // blobs is refused them (the worker will not pack a file that does not hash to its manifest digest).
        let jobDir = f.workerStore + "/work/" + r.jobID
        try "tampered\n".write(toFile: jobDir + "/artifacts/build.log", atomically: true, encoding: .utf8)
        unlink(jobDir + "/fetch.tar.zst")
        let fresh = try f.client(hostStore: f.dir.sub("another-host"))
        #expect(throws: RPCError.self) { try fresh.fetch(r.jobID, into: f.dir.sub("f2")) }
        #expect(!FileManager.default.fileExists(atPath: f.dir.sub("f2")))

        try FileManager.default.removeItem(atPath: jobDir)
        do {
            _ = try c.fetch(r.jobID, into: f.dir.sub("f3"))
            Issue.record("expected ARTIFACTS_GONE")
        } catch let e as RPCError {
            #expect(e.code == .artifactsGone)
        }
    }
}

@Suite("Every request and reply on the wire matches its schema")
struct WireSchemaTests {
    @Test("requests, replies and fetch headers of a whole run (local transport), error replies included")
    func schemas() throws {
        let f = try LaneFixture(ssh: false)
        let root = try f.tree()
        let trace = f.dir.sub("trace")
        let c = try f.client()
        c.trace(into: trace)
        var d = RunDriver(client: c, artifactRoot: f.dir.sub("artifacts"))
        d.onLog = { _ in }
        d.pollMillis = 50
        let r = try d.run(root: root, argv: iPhoneTest)
        try f.edit(root)
        _ = try Pusher(client: c).push(root: root, options: BundleOptions())
        _ = try c.cancel(r.jobID)
        _ = try? c.status("job_9999999999")
        var checked = 0
        for name in try FileManager.default.contentsOfDirectory(atPath: trace).sorted() {
            let path = trace + "/" + name
            let doc = try JSONParser().parse(try DurableFile.read(path))
            let schema =
                name.hasSuffix(".request.json")
                ? "rpc_request" : doc["stream"] != nil ? "fetch_header" : "rpc_response"
            let v = try Sub.validate(path, schema: schema)
            #expect(v.status == 0, "\(name) vs \(schema): \(v.output)")
            checked += 1
        }
        #expect(checked >= 16)
        for (file, schema) in [
            ("job_state.json", "job_state"), ("executor_env.json", "executor_env"), ("toolchain.json", "toolchain"),
            ("destination.json", "destination"),
        ] {
            let v = try Sub.validate(r.artifacts! + "/" + file, schema: schema)
            #expect(v.status == 0, "\(file): \(v.output)")
        }
    }
}
