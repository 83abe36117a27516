import Foundation
import RCHCore
import RCHTestSupport
import Testing

@testable import RCHS3

/// The client against a real Ceph RGW (scripts/rgw): conditional writes, streaming, multipart, listing.
@Suite("S3 client against Ceph RGW")
struct S3ClientTests {
    static func client(maxAttempts: Int = 4, endpoint: String? = nil, secret: String? = nil) throws -> S3Client {
        let rgw = try TestRGW.shared()
        var loc = S3Location(
            endpoint: endpoint ?? rgw.endpoint, bucket: rgw.bucket, region: rgw.region,
            credentials: .init(accessKeyID: rgw.accessKey, secretAccessKey: secret ?? rgw.secretKey))
        loc.maxAttempts = maxAttempts
        loc.requestTimeoutSeconds = 10
        loc.multipartThreshold = 5 << 20
        loc.partSize = 5 << 20
        return try S3Client(loc)
    }

    @Test("create-only PUT, GET, HEAD, If-Match, DELETE")
    func objects() throws {
        let c = try Self.client()
        let key = TestRGW.uniquePrefix("objects") + "a b&c"
        guard case .stored(let etag) = try c.put(key, Array("one".utf8), createOnly: true) else {
            Issue.record("first create-only PUT must store")
            return
        }
        #expect(try c.put(key, Array("two".utf8), createOnly: true) == .preconditionFailed)
        #expect(try c.get(key)?.bytes == Array("one".utf8))
        #expect(try c.put(key, Array("three".utf8), ifMatch: "\"nope\"") == .preconditionFailed)
        guard case .stored = try c.put(key, Array("three".utf8), ifMatch: etag) else {
            Issue.record("If-Match with the current ETag must store")
            return
        }
        #expect(try c.head(key)?.size == 5)
        try c.delete(key)
        #expect(try c.get(key) == nil)
        #expect(try c.head(key) == nil)
    }

    @Test("files stream up and down, multipart above the threshold; the digest signed is checked by the server")
    func files() throws {
        let c = try Self.client()
        let dir = TempDir()
        let prefix = TestRGW.uniquePrefix("files")
        for size in [0, 1000, 12 << 20 + 3] {
            var bytes = [UInt8](repeating: 0, count: size)
            for i in stride(from: 0, to: size, by: 4096) { bytes[i] = UInt8(truncatingIfNeeded: i / 4096 &+ size) }
            let path = dir.sub("in-\(size)")
            FileManager.default.createFile(atPath: path, contents: Data(bytes))
            let sha = SHA256Digest.of(bytes)
            let key = prefix + sha.hex
            guard case .stored = try c.putFile(key, path: path, sha256: sha, size: UInt64(size)) else {
                Issue.record("upload of \(size) bytes")
                continue
            }
            #expect(try c.putFile(key, path: path, sha256: sha, size: UInt64(size)) == .preconditionFailed)
            let out = dir.sub("out-\(size)")
            #expect(try c.download(key, to: out))
            #expect(SHA256Digest.of([UInt8](try Data(contentsOf: URL(fileURLWithPath: out)))) == sha)
            #expect(try c.head(key)?.size == UInt64(size))
        }
        // A body that is not what was signed is refused by the server (x-amz-content-sha256 mismatch).
        let path = dir.sub("liar")
        FileManager.default.createFile(atPath: path, contents: Data("actual".utf8))
        #expect(throws: S3Error.self) {
            try c.putFile(prefix + "liar", path: path, sha256: .of(Array("claimed".utf8)), size: 6)
        }
        #expect(try c.download(prefix + "missing", to: dir.sub("missing")) == false)
    }

    @Test("ListObjectsV2 pages; DeleteObjects")
    func listing() throws {
        let c = try Self.client()
        let prefix = TestRGW.uniquePrefix("list")
        let keys = (0..<7).map { prefix + "k\($0)" }
        for k in keys { _ = try c.put(k, Array(k.utf8)) }
        var page = try c.list(prefix: prefix, maxKeys: 3)
        var seen = page.objects.map(\.key)
        while let next = page.next {
            page = try c.list(prefix: prefix, continuation: next, maxKeys: 3)
            seen += page.objects.map(\.key)
        }
        #expect(seen == keys)
        #expect(try c.delete(keys: keys).isEmpty)
        var after: [String] = []
        try c.listAll(prefix: prefix) { after += $0.map(\.key) }
        #expect(after.isEmpty)
    }

    @Test("wrong credentials and an unreachable endpoint are typed errors")
    func failures() throws {
        let bad = try Self.client(secret: "wrong")
        #expect {
            try bad.put(TestRGW.uniquePrefix("bad") + "x", [1])
        } throws: { e in
            (e as? S3Error)?.status == 403 && !(e as! S3Error).isTransient
        }
        let down = try Self.client(maxAttempts: 2, endpoint: "http://127.0.0.1:9")
        #expect {
            try down.get("x")
        } throws: { e in
            guard let e = e as? S3Error, case .unreachable = e else { return false }
            return e.isTransient
        }
        #expect(throws: S3Error.self) {
            try S3Client(
                S3Location(
                    endpoint: "ftp://x/y", bucket: "b", region: "r",
                    credentials: .init(accessKeyID: "a", secretAccessKey: "s")))
        }
    }
}
