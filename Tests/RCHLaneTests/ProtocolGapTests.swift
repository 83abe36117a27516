import Foundation
import RCHBundle
import RCHCore
import RCHHost
import RCHRun
import RCHTestSupport
import Testing

/// Protocol details the spec fixes (issue 17's protocol gaps).
@Suite("Protocol details: the bootstrap probe, tail cursors and events, a wrong job_key, metrics")
struct ProtocolGapTests {
    @Test("a probe sent with protocol_version 0 is answered with protocol_version 0")
    func bootstrapProbe() throws {
        let f = try LaneFixture(ssh: false)
        let reply = try f.raw(Req.line("probe", "{}", version: 0))
        #expect(reply["ok"]?.boolValue == true && reply["protocol_version"]?.intValue == 0, "\(reply.canonicalString)")
        let v1 = try f.raw(Req.line("probe", "{}", version: 1))
        #expect(v1["protocol_version"]?.intValue == 1)
    }

    @Test("tail accepts cursor null (from the start)")
    func nullCursor() throws {
        let f = try LaneFixture(ssh: false)
        let root = try f.tree()
        var d = RunDriver(client: try f.client(), artifactRoot: f.dir.sub("artifacts"))
        d.pollMillis = 50
        let r = try d.run(root: root, argv: iPhone)
        let reply = try f.raw(Req.line("tail", #"{"job_id":"\#(r.jobID)","cursor":null}"#))
        #expect(reply["ok"]?.boolValue == true, "\(reply.canonicalString)")
        #expect(
            reply["payload"]?["cursor"]?.intValue == 0 && reply["payload"]?["log_chunk"]?.stringValue?.isEmpty == false)
    }

    @Test("tail returns the job's events with their own cursor; every line validates")
    func events() throws {
        let f = try LaneFixture(ssh: false)
        let root = try f.tree()
        var d = RunDriver(client: try f.client(), artifactRoot: f.dir.sub("artifacts"))
        d.pollMillis = 50
        let r = try d.run(root: root, argv: iPhone)
        let all = try f.raw(Req.line("tail", #"{"job_id":"\#(r.jobID)","cursor":0,"event_cursor":0}"#))["payload"]!
        let events = all["events"]?.arrayValue ?? []
        let stages = events.map { "\($0["stage"]!.stringValue!)/\($0["kind"]!.stringValue!)" }
        #expect(
            stages == [
                "job/started", "materialize/started", "materialize/finished", "caches/acquired", "execute/started",
                "execute/finished", "job/finished",
            ], "\(stages)")
        #expect(events.enumerated().allSatisfy { $0.element["seq"]?.intValue == Int64($0.offset) })
        #expect(all["next_event_cursor"]?.intValue == Int64(events.count))
        // From a cursor: only what follows; past the end: refused.
        let rest = try f.raw(Req.line("tail", #"{"job_id":"\#(r.jobID)","cursor":0,"event_cursor":5}"#))["payload"]!
        #expect(rest["events"]?.arrayValue?.count == 2 && rest["event_cursor"]?.intValue == 5)
        let past = try f.raw(Req.line("tail", #"{"job_id":"\#(r.jobID)","cursor":0,"event_cursor":99}"#))
        #expect(past["error"]?["code"]?.stringValue == "INVALID_REQUEST")
        // Every line of events.jsonl is one event of the schema; metrics.json and host_metrics.json validate.
        let lines = try String(contentsOfFile: r.artifacts! + "/events.jsonl", encoding: .utf8).split(separator: "\n")
        #expect(lines.count == events.count)
        for (i, line) in lines.enumerated() {
            let file = f.dir.sub("event-\(i).json")
            try String(line).write(toFile: file, atomically: true, encoding: .utf8)
            let v = try Sub.validate(file, schema: "event")
            #expect(v.status == 0, "\(line): \(v.output)")
        }
        let m = try Sub.validate(r.artifacts! + "/metrics.json", schema: "metrics")
        #expect(m.status == 0, "\(m.output)")
        let metrics = try JSONParser().parse(try DurableFile.read(r.artifacts! + "/metrics.json"))
        #expect(metrics["cache"]?["result_cache_hit"]?.boolValue == false)
        #expect(
            metrics["timings"]?["execute_ms"]?.intValue != nil
                && metrics["sizes"]?["source_bundle_bytes"]?.intValue ?? 0 > 0)
        let host = directoryOf(r.artifacts!) + "/host_metrics.json"
        let h = try Sub.validate(host, schema: "host_metrics")
        #expect(h.status == 0, "\(h.output)")
        // A hit keeps the producer's metrics, marked as a hit and naming the job that ran.
        let hit = try d.run(root: root, argv: iPhone)
        #expect(hit.cached)
        let hm = try JSONParser().parse(try DurableFile.read(hit.artifacts! + "/metrics.json"))
        #expect(
            hm["cache"]?["result_cache_hit"]?.boolValue == true && hm["timings_from_job_id"]?.stringValue == r.jobID)
        #expect(hm["job_id"]?.stringValue == hit.jobID)
    }

    @Test("a job_key that is not SHA-256(JCS(job_key_inputs)) fails the job with PROTOCOL_ERROR and both keys")
    func wrongJobKey() throws {
        let f = try LaneFixture(ssh: false)
        let root = try f.tree()
        let j = try f.job(root)
        var o = j.spec.json.objectValue!
        let computed = j.inputs.jobKey.hex
        o["job_key"] = .string(String(repeating: "0", count: 64))
        let reply = try f.raw(Req.line("submit", #"{"job":\#(JSONValue.object(o).canonicalString)}"#))
        #expect(reply["ok"]?.boolValue == true, "\(reply.canonicalString)")
        let p = reply["payload"]!
        #expect(p["state"]?.stringValue == "FAILED")
        let s = p["summary"]!
        #expect(
            s["failure_kind"]?.stringValue == "WORKER_INCOMPATIBLE"
                && s["failure_subkind"]?.stringValue == "PROTOCOL_ERROR")
        #expect(s["exit_code"]?.intValue == 91 && s["human_summary"]?.stringValue?.contains(computed) == true)
        let events = try f.raw(Req.line("tail", #"{"job_id":"\#(j.spec.jobID)","cursor":0}"#))["payload"]!["events"]!
        let refused = events.arrayValue?.first { $0["kind"]?.stringValue == "refused" }
        #expect(refused?["data"]?["job_key_computed"]?.stringValue == computed)
        #expect(refused?["data"]?["job_key_sent"]?.stringValue == String(repeating: "0", count: 64))
        // Never cached: the right key afterwards is a miss that runs.
        let lookup = try f.worker(["store", "lookup", computed, "--executor-class", "recording"], config: false)
        #expect(lookup.status == 1, "\(lookup.stdout)")
    }
}
