import Foundation
import RCHCore
import RCHProtocol
import SystemPackage
import Testing

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

@Suite("RPC envelope, negotiation and framing")
struct ProtocolTests {
    static let envelopes: [(String, String, RPCErrorCode?)] = [
        ("ok", #"{"protocol_version":1,"op":"status","request_id":"req_0000000001","payload":{}}"#, nil),
        ("probe bootstrap v0", #"{"protocol_version":0,"op":"probe","request_id":"req_0000000001","payload":{}}"#, nil),
        (
            "v0 only for probe", #"{"protocol_version":0,"op":"status","request_id":"req_0000000001","payload":{}}"#,
            .unsupportedProtocol
        ),
        (
            "future version", #"{"protocol_version":7,"op":"probe","request_id":"req_0000000001","payload":{}}"#,
            .unsupportedProtocol
        ),
        (
            "version as string", #"{"protocol_version":"1","op":"probe","request_id":"req_0000000001","payload":{}}"#,
            .invalidRequest
        ),
        (
            "fractional version", #"{"protocol_version":1.5,"op":"probe","request_id":"req_0000000001","payload":{}}"#,
            .invalidRequest
        ),
        (
            "unknown op", #"{"protocol_version":1,"op":"teleport","request_id":"req_0000000001","payload":{}}"#,
            .featureMissing
        ),
        (
            "path-like request_id",
            #"{"protocol_version":1,"op":"probe","request_id":"../../etc/passwd","payload":{}}"#, .invalidRequest
        ),
        ("short request_id", #"{"protocol_version":1,"op":"probe","request_id":"r1","payload":{}}"#, .invalidRequest),
        ("missing payload", #"{"protocol_version":1,"op":"probe","request_id":"req_0000000001"}"#, .invalidRequest),
        (
            "payload not object", #"{"protocol_version":1,"op":"probe","request_id":"req_0000000001","payload":[]}"#,
            .invalidRequest
        ),
        (
            "extra member", #"{"protocol_version":1,"op":"probe","request_id":"req_0000000001","payload":{},"x":1}"#,
            .invalidRequest
        ),
        ("not an object", #"[1,2]"#, .invalidRequest),
    ]

    @Test("envelope validation", arguments: envelopes)
    func envelope(_ c: (String, String, RPCErrorCode?)) throws {
        let v = try JSONParser().parse(c.1)
        do {
            let r = try RPCRequest(json: v)
            #expect(c.2 == nil, "\(c.0) was accepted")
            #expect(r.requestID == "req_0000000001")
        } catch {
            #expect(error.code == c.2, "\(c.0): \(error)")
        }
    }

    static let ranges: [((Int, Int), (Int, Int), Int?)] = [
        ((1, 1), (1, 1), 1), ((1, 3), (1, 2), 2), ((2, 4), (1, 3), 3), ((3, 4), (1, 2), nil), ((1, 1), (2, 2), nil),
        ((0, 5), (1, 1), 1),
    ]

    @Test("highest common protocol version", arguments: ranges)
    func negotiate(_ c: ((Int, Int), (Int, Int), Int?)) {
        #expect(LaneProtocol.negotiate(workerMin: c.0.0, workerMax: c.0.1, hostMin: c.1.0, hostMax: c.1.1) == c.2)
    }

    func reader(_ bytes: [UInt8]) throws -> FrameReader {
        var fds: [Int32] = [0, 0]
        #expect(pipe(&fds) == 0)
        let w = FileDescriptor(rawValue: fds[1])
        // Small inputs fit in the pipe buffer.
        try writeAll(w, bytes)
        close(fds[1])
        return FrameReader(fd: FileDescriptor(rawValue: fds[0]), bufferSize: 16)
    }

    @Test("header line, exact body, end of input")
    func framing() throws {
        let r = try reader(Array("{\"a\":1}\nBODYBYTES".utf8))
        #expect(String(decoding: try r.readHeaderLine(maxBytes: 100), as: UTF8.self) == "{\"a\":1}")
        var body: [UInt8] = []
        #expect(try r.readBody(count: 4) { body += $0 } == 4)
        #expect(body == Array("BODY".utf8))
        #expect(try !r.atEnd())
        #expect(try r.readBody(count: 10) { _ in } == 5)  // ended early
    }

    @Test("a header longer than the bound is refused without reading further")
    func longHeader() throws {
        let r = try reader([UInt8](repeating: 65, count: 200) + [10])
        #expect(throws: FrameReader.HeaderError.self) { try r.readHeaderLine(maxBytes: 64) }
    }

    static let streams: [(String, Bool)] = [
        (
            #"{"content_length":10,"content_sha256":"\#(String(repeating: "a", count: 64))","compression":"zstd","format":"tar"}"#,
            true
        ),
        (
            #"{"content_length":-1,"content_sha256":"\#(String(repeating: "a", count: 64))","compression":"zstd","format":"tar"}"#,
            false
        ),
        (
            #"{"content_length":10,"content_sha256":"\#(String(repeating: "A", count: 64))","compression":"zstd","format":"tar"}"#,
            false
        ),
        (
            #"{"content_length":10,"content_sha256":"\#(String(repeating: "a", count: 64))","compression":"gzip","format":"tar"}"#,
            false
        ),
        (
            #"{"content_length":10,"content_sha256":"\#(String(repeating: "a", count: 64))","compression":"none","format":"zip"}"#,
            false
        ),
        (
            #"{"content_length":10,"content_sha256":"\#(String(repeating: "a", count: 64))","compression":"none","format":"tar","x":1}"#,
            false
        ),
    ]

    @Test("stream descriptors", arguments: streams)
    func stream(_ c: (String, Bool)) throws {
        let ok = (try? StreamDescriptor(json: try JSONParser().parse(c.0))) != nil
        #expect(ok == c.1, "\(c.0)")
    }
}
