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

/// Helpers to build requests by hand.
enum Req {
    static func line(_ op: String, _ payload: String, version: Int = 1, id: String = "req_0000000001") -> [UInt8] {
        Array(#"{"protocol_version":\#(version),"op":"\#(op)","request_id":"\#(id)","payload":\#(payload)}"#.utf8) + [
            10
        ]
    }
    static func stream(_ body: [UInt8], length: Int? = nil, sha: SHA256Digest? = nil, compression: String = "zstd")
        -> String
    {
        #"{"content_length":\#(length ?? body.count),"content_sha256":"\#((sha ?? .of(body)).hex)","compression":"\#(compression)","format":"tar"}"#
    }
    static let zero = String(repeating: "0", count: 64)
}

@Suite("Malformed input is answered with the right error code and nothing is written")
struct MalformedInputTests {
    struct Case: CustomTestStringConvertible, Sendable {
        var name: String
        var code: RPCErrorCode
        var build: @Sendable (LaneFixture, _ bundle: [UInt8], _ sha: SHA256Digest) throws -> [UInt8]
        var testDescription: String { name }
    }

    static func job(_ f: LaneFixture, sha: SHA256Digest, jobID: String = "job_0000000001", tamper: Bool = false) throws
        -> String
    {
        let caps = try f.raw(Req.line("probe", "{}", version: 0))["payload"]!["capabilities"]!
        let inputs = try JobInputsBuilder.build(argv: iPhone, sourceSHA256: sha, capabilities: caps)
        var o = try JobSpec(
            runID: "run_0000000001", jobID: jobID.contains("/") ? "job_0000000001" : jobID, inputs: inputs,
            effectiveConfig: [:]
        ).json.objectValue!
        if tamper { o["job_key"] = .string(Req.zero) }
        if jobID.contains("/") { o["job_id"] = .string(jobID) }
        return JSONValue.object(o).canonicalString
    }

    static let cases: [Case] = [
        Case(name: "bad JSON", code: .invalidRequest) { _, _, _ in Array("{not json}\n".utf8) },
        // (End of input without a byte is no request at all: the worker exits silently — StartedExchangeTests.)
        Case(name: "an empty line", code: .invalidRequest) { _, _, _ in [10] },
        Case(name: "huge header", code: .invalidRequest) { _, _, _ in
            Array("{\"pad\":\"".utf8) + [UInt8](repeating: 97, count: 20_000)
        },
        Case(name: "unknown op", code: .featureMissing) { _, _, _ in Req.line("teleport", "{}") },
        Case(name: "unsupported protocol", code: .unsupportedProtocol) { _, _, _ in Req.line("status", "{}", version: 9)
        },
        Case(name: "path-like request_id", code: .invalidRequest) { _, _, _ in
            Req.line("probe", "{}", id: "../../x/y/zzzz")
        },
        Case(name: "path-like job_id", code: .invalidRequest) { _, _, _ in
            Req.line("status", #"{"job_id":"../../etc/passwd"}"#)
        },
        Case(name: "unknown job", code: .notFound) { _, _, _ in Req.line("fetch", #"{"job_id":"job_9999999999"}"#) },
        Case(name: "bad digest", code: .invalidRequest) { _, _, _ in
            Req.line("has_source", #"{"source_sha256s":["../x"]}"#)
        },
        Case(name: "uppercase digest", code: .invalidRequest) { _, _, _ in
            Req.line("has_source", #"{"source_sha256":"\#(String(repeating: "A", count: 64))"}"#)
        },
        Case(name: "trailing bytes after a request", code: .invalidRequest) { _, _, _ in
            Req.line("probe", "{}") + Array("junk".utf8)
        },
        Case(name: "stream on an op without one", code: .invalidRequest) { _, b, _ in
            Req.line("status", #"{"job_id":"job_0000000001","stream":\#(Req.stream(b))}"#) + b
        },
        Case(name: "content_length shorter than the body", code: .invalidRequest) { _, b, s in
            Req.line("upload_source", #"{"source_sha256":"\#(s.hex)","stream":\#(Req.stream(Array(b.dropLast(10))))}"#)
                + b
        },
        Case(name: "content_length longer than the body", code: .invalidRequest) { _, b, s in
            Req.line(
                "upload_source", #"{"source_sha256":"\#(s.hex)","stream":\#(Req.stream(b, length: b.count + 100))}"#)
                + b
        },
        Case(name: "wrong content_sha256", code: .invalidRequest) { _, b, s in
            Req.line("upload_source", #"{"source_sha256":"\#(s.hex)","stream":\#(Req.stream(b, sha: .of([1])))}"#) + b
        },
        Case(name: "wrong source_sha256", code: .invalidRequest) { _, b, _ in
            Req.line("upload_source", #"{"source_sha256":"\#(Req.zero)","stream":\#(Req.stream(b))}"#) + b
        },
        Case(name: "not a zstd tar", code: .invalidRequest) { _, _, s in
            let junk = [UInt8](repeating: 7, count: 3000)
            return Req.line("upload_source", #"{"source_sha256":"\#(s.hex)","stream":\#(Req.stream(junk))}"#) + junk
        },
        Case(name: "over max_upload_bytes", code: .payloadTooLarge) { _, _, s in
            Req.line(
                "upload_source",
                #"{"source_sha256":"\#(s.hex)","stream":\#(Req.stream([], length: 32 << 20, sha: .of([1])))}"#)
        },
        Case(name: "resume without upload_resumable", code: .featureMissing) { _, b, s in
            Req.line(
                "upload_source",
                #"{"source_sha256":"\#(s.hex)","stream":\#(Req.stream(b)),"resume":{"upload_id":"u_000000001","offset":0}}"#
            ) + b
        },
        Case(name: "upload_tree with an escaping path", code: .invalidRequest) { _, _, s in
            let e =
                #"{"path":"../etc/passwd","type":"file","size":1,"sha256":"\#(SHA256Digest.of([1]).hex)","executable":false,"symlink_target":null}"#
            return Req.line(
                "upload_tree",
                #"{"source_sha256":"\#(s.hex)","tree_sha256":"\#(Req.zero)","tar_bytes":2048,"entries":[\#(e)]}"#)
        },
        Case(name: "upload_tree pack with an unannounced blob", code: .invalidRequest) { f, _, s in
            let m = try SourceManifest(
                json: try JSONParser().parse(try DurableFile.read(LocalStore(root: f.hostStore).bundleManifestPath(s))))
            let entries = JSONValue.array(m.entries.map(\.json))
            let junk = f.dir.sub("junk")
            try "unrelated".write(toFile: junk, atomically: true, encoding: .utf8)
            let temp = try TempFile(directory: f.dir.path)
            _ = try BlobPack.write([(.of(Array("unrelated".utf8)), 9, junk)], to: temp)
            let pack = try DurableFile.read(temp.path)
            temp.discard()
            return Req.line(
                "upload_tree",
                #"{"source_sha256":"\#(s.hex)","tree_sha256":"\#(m.treeSHA256.hex)","tar_bytes":\#(m.tarBytes),"entries":\#(entries.canonicalString),"stream":\#(Req.stream(pack))}"#
            ) + pack
        },
        Case(name: "submit with a path-like job_id", code: .invalidRequest) { f, _, s in
            Req.line("submit", #"{"job":\#(try job(f, sha: s, jobID: "../../../tmp/x"))}"#)
        },
        Case(name: "submit before the source is uploaded", code: .sourceMissing) { f, _, s in
            Req.line("submit", #"{"job":\#(try job(f, sha: s))}"#)
        },
    ]

    @Test("each malformed request", arguments: cases)
    func malformed(_ c: Case) throws {
        let f = try LaneFixture(config: "max_upload_bytes = \"16MiB\"\nmax_header_bytes = \"4K\"", ssh: false)
        let root = try f.tree()
        let b = try HostBundler(store: try LocalStore(root: f.hostStore)).bundle(root: root, options: BundleOptions())
        let bundle = try DurableFile.read(b.bundlePath)
        _ = try f.raw(Req.line("probe", "{}", version: 0))  // creates the store
        let before = f.snapshot()
        let reply = try f.raw(try c.build(f, bundle, b.sourceSHA256))
        #expect(reply["ok"]?.boolValue == false, "\(c.name): \(reply.canonicalString)")
        #expect(reply["error"]?["code"]?.stringValue == c.code.rawValue, "\(c.name): \(reply.canonicalString)")
        let message = reply["error"]?["message"]?.stringValue ?? ""
        #expect(!message.isEmpty)
        #expect(f.snapshot() == before, "\(c.name) left files behind")
        if c.code == .payloadTooLarge { #expect(reply["error"]?["data"]?["max_bytes"]?.intValue == 16 << 20) }
    }

    /// The body is decoded as it arrives, so the decoder meets a damaged byte before the digest is known: the
    /// reply must still name the damaged transfer (not a bad bundle), and nothing decoded may stay behind.
    @Test(
        "a byte damaged in transit: INVALID_REQUEST naming content_sha256, nothing staged or published",
        arguments: [0.1, 0.5, 0.99])
    func damagedInTransit(_ at: Double) throws {
        let f = try LaneFixture(ssh: false)
        let root = try f.tree()
        let b = try HostBundler(store: try LocalStore(root: f.hostStore)).bundle(root: root, options: BundleOptions())
        let bundle = try DurableFile.read(b.bundlePath)
        _ = try f.raw(Req.line("probe", "{}", version: 0))
        let before = f.snapshot()
        var damaged = bundle
        damaged[Int(Double(damaged.count - 1) * at)] ^= 0x5a
        let reply = try f.raw(
            Req.line("upload_source", #"{"source_sha256":"\#(b.sourceSHA256.hex)","stream":\#(Req.stream(bundle))}"#)
                + damaged)
        #expect(reply["error"]?["code"]?.stringValue == "INVALID_REQUEST", "\(reply.canonicalString)")
        #expect(
            reply["error"]?["message"]?.stringValue?.contains("content_sha256") == true, "\(reply.canonicalString)")
        #expect(f.snapshot() == before, "a damaged upload left files behind")
    }

    struct Typed: CustomTestStringConvertible, Sendable {
        var field: String
        var value: JSONValue
        var testDescription: String { "\(field) = \(value.canonicalString)" }
    }

    /// Wrong-typed or unknown members of job.json: refused naming the field, never defaulted.
    static let typed: [Typed] = [
        .init(field: "job.artifact_profile", value: .int(5)),
        .init(field: "job.artifact_profile", value: .string("gold")),
        .init(field: "job.effective_config", value: .string("x")),
        .init(field: "job.effective_config.cache", value: .string("x")),
        .init(field: "job.effective_config.cache.namespace", value: .int(5)),
        .init(field: "job.effective_config.cache.namespace", value: .string("bad/ns")),
        .init(field: "job.effective_config.cache.flavour", value: .string("x")),
        .init(field: "job.effective_config.artifacts.profile", value: .bool(true)),
        .init(field: "job.extra", value: .bool(true)),
        .init(field: "job.action", value: .string("archive")),
        .init(field: "job.created_at", value: .int(5)),
        .init(field: "job.schema_version", value: .string("1")),
    ]

    @Test("typed submit: wrong types and unknown members are INVALID_REQUEST naming the field", arguments: typed)
    func typedSubmit(_ t: Typed) throws {
        let f = try LaneFixture(ssh: false)
        let root = try f.tree()
        let c = try f.client()
        let push = try Pusher(client: c).push(root: root, options: BundleOptions())
        var o = try JSONParser().parse(Array(try Self.job(f, sha: push.sourceSHA256).utf8)).objectValue!
        let parts = t.field.split(separator: ".").dropFirst().map(String.init)
        func set(_ obj: inout JSONObject, _ path: ArraySlice<String>) {
            if path.count == 1 {
                obj[path.first!] = t.value
                return
            }
            var inner = obj[path.first!]?.objectValue ?? JSONObject()
            set(&inner, path.dropFirst())
            obj[path.first!] = .object(inner)
        }
        set(&o, parts[...])
        let before = f.snapshot()
        let reply = try f.raw(Req.line("submit", #"{"job":\#(JSONValue.object(o).canonicalString)}"#))
        #expect(reply["error"]?["code"]?.stringValue == "INVALID_REQUEST", "\(reply.canonicalString)")
        #expect(reply["error"]?["data"]?["field"]?.stringValue == t.field, "\(reply.canonicalString)")
        #expect(reply["error"]?["message"]?.stringValue?.hasPrefix(t.field) == true)
        #expect(f.snapshot() == before, "a refused submit wrote something")
    }

    @Test("a well-formed upload_source is accepted, and a duplicate is success without reading the body")
    func control() throws {
        let f = try LaneFixture(ssh: false)
        let root = try f.tree()
        let b = try HostBundler(store: try LocalStore(root: f.hostStore)).bundle(root: root, options: BundleOptions())
        let body = try DurableFile.read(b.bundlePath)
        let req =
            Req.line("upload_source", #"{"source_sha256":"\#(b.sourceSHA256.hex)","stream":\#(Req.stream(body))}"#)
            + body
        let first = try f.raw(req)
        #expect(first["payload"]?["stored"]?.boolValue == true, "\(first.canonicalString)")
        let again = try f.raw(req)
        #expect(again["payload"]?["already_present"]?.boolValue == true)
        let has = try f.raw(Req.line("has_source", #"{"source_sha256s":["\#(b.sourceSHA256.hex)","\#(Req.zero)"]}"#))
        #expect(has["payload"]?["present"] == .array([.bool(true), .bool(false)]))
    }
}
