import Foundation
import RCHCore
import RCHTestSupport
import Testing

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

@Suite("A client that stalls mid-stream")
struct ReadTimeoutTests {
    @Test("is cut off after [worker] read_timeout; the partial upload is discarded")
    func stalledUpload() throws {
        let f = try LaneFixture(config: "read_timeout = \"1s\"", ssh: false)
        var fds: [Int32] = [0, 0]
        #expect(pipe(&fds) == 0)
        let out = open(f.dir.sub("reply"), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        let err = open("/dev/null", O_WRONLY | O_CLOEXEC)
        let started = Timestamp.nowNanos()
        let pid = try Spawn.start(
            f.workerExe, ["rpc", "--store", f.workerStore, "--config", f.configPath], stdin: fds[0], stdout: out,
            stderr: err)
        close(fds[0])
        close(out)
        close(err)
        let body = [UInt8](repeating: 7, count: 1 << 20)
        let header = Req.line("upload_source", #"{"source_sha256":"\#(Req.zero)","stream":\#(Req.stream(body))}"#)
        let sent = (header + body.prefix(100_000)).withUnsafeBytes { write(fds[1], $0.baseAddress, $0.count) }
        #expect(sent == header.count + 100_000)
        // The writer end stays open (a stalled client): the worker must give up by itself.
        var exit: Spawn.Exit? = nil
        while exit == nil && Timestamp.nowNanos() - started < 20_000_000_000 {
            exit = Spawn.poll(pid)
            usleep(50_000)
        }
        close(fds[1])
        if exit == nil {
            kill(pid, SIGKILL)
            _ = Spawn.wait(pid)
        }
        #expect(exit != nil, "the worker waited for the stalled client for 20 s")
        #expect(Double(Timestamp.nowNanos() - started) / 1e9 < 10)
        let reply = try JSONParser().parse(try DurableFile.read(f.dir.sub("reply")).prefix { $0 != 10 }.map { $0 })
        #expect(reply["error"]?["code"]?.stringValue == "INVALID_REQUEST", "\(reply.canonicalString)")
        #expect(reply["error"]?["data"]?["failure_subkind"]?.stringValue == "READ_TIMEOUT")
        let incoming = (try? FileManager.default.contentsOfDirectory(atPath: f.workerStore + "/incoming")) ?? []
        #expect(incoming.isEmpty, "partial upload left: \(incoming)")
    }
}
