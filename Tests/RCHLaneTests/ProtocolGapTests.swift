import Foundation
import RCHBundle
import RCHCore
import RCHHost
import RCHRun
import RCHTestSupport
import Testing

/// Protocol details the spec fixes (issue 17's protocol gaps).
@Suite("Protocol details: the bootstrap probe, a null tail cursor")
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
}
