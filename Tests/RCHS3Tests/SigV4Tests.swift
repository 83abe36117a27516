import RCHCore
import Testing

@testable import RCHS3

/// The signer against AWS's published values: the SigV4 test suite (`get-vanilla`,
/// `get-vanilla-query-order-key-case`, `post-vanilla`) and the S3 API reference's header-authentication
/// examples (GET Object with a range, PUT Object, GET Bucket lifecycle, ListObjects).
@Suite("SigV4 signing")
struct SigV4Tests {
    static let suite = SigV4Signer(
        credentials: .init(accessKeyID: "AKIDEXAMPLE", secretAccessKey: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"),
        region: "us-east-1", service: "service")
    static let s3 = SigV4Signer(
        credentials: .init(
            accessKeyID: "AKIAIOSFODNN7EXAMPLE", secretAccessKey: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"),
        region: "us-east-1")
    static let empty = SigV4Signer.emptyPayloadSHA256

    struct Vector: Sendable, CustomTestStringConvertible {
        var name: String
        var s3: Bool
        var method: String
        var path: String
        var query: [(String, String)]
        var headers: [(String, String)]
        var payload: String
        var signedHeaders: String
        var signature: String
        var testDescription: String { name }
    }

    static let welcome = SHA256Digest.of(Array("Welcome to Amazon S3.".utf8)).hex
    static let vectors: [Vector] = [
        Vector(
            name: "get-vanilla", s3: false, method: "GET", path: "/", query: [],
            headers: [("Host", "example.amazonaws.com"), ("X-Amz-Date", "20150830T123600Z")], payload: empty,
            signedHeaders: "host;x-amz-date",
            signature: "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"),
        Vector(
            name: "get-vanilla-query-order-key-case", s3: false, method: "GET", path: "/",
            query: [("Param2", "value2"), ("Param1", "value1")],
            headers: [("Host", "example.amazonaws.com"), ("X-Amz-Date", "20150830T123600Z")], payload: empty,
            signedHeaders: "host;x-amz-date",
            signature: "b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500"),
        Vector(
            name: "post-vanilla", s3: false, method: "POST", path: "/", query: [],
            headers: [("Host", "example.amazonaws.com"), ("X-Amz-Date", "20150830T123600Z")], payload: empty,
            signedHeaders: "host;x-amz-date",
            signature: "5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b"),
        Vector(
            name: "S3 GET Object (range)", s3: true, method: "GET", path: "/test.txt", query: [],
            headers: [
                ("Host", "examplebucket.s3.amazonaws.com"), ("Range", "bytes=0-9"), ("x-amz-content-sha256", empty),
                ("x-amz-date", "20130524T000000Z"),
            ], payload: empty, signedHeaders: "host;range;x-amz-content-sha256;x-amz-date",
            signature: "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41"),
        Vector(
            name: "S3 PUT Object", s3: true, method: "PUT", path: "/test$file.text", query: [],
            headers: [
                ("Host", "examplebucket.s3.amazonaws.com"), ("Date", "Fri, 24 May 2013 00:00:00 GMT"),
                ("x-amz-content-sha256", welcome), ("x-amz-date", "20130524T000000Z"),
                ("x-amz-storage-class", "REDUCED_REDUNDANCY"),
            ], payload: welcome,
            signedHeaders: "date;host;x-amz-content-sha256;x-amz-date;x-amz-storage-class",
            signature: "98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd"),
        Vector(
            name: "S3 GET Bucket lifecycle", s3: true, method: "GET", path: "/", query: [("lifecycle", "")],
            headers: [
                ("Host", "examplebucket.s3.amazonaws.com"), ("x-amz-content-sha256", empty),
                ("x-amz-date", "20130524T000000Z"),
            ], payload: empty, signedHeaders: "host;x-amz-content-sha256;x-amz-date",
            signature: "fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136783543"),
        Vector(
            name: "S3 ListObjects", s3: true, method: "GET", path: "/", query: [("prefix", "J"), ("max-keys", "2")],
            headers: [
                ("Host", "examplebucket.s3.amazonaws.com"), ("x-amz-content-sha256", empty),
                ("x-amz-date", "20130524T000000Z"),
            ], payload: empty, signedHeaders: "host;x-amz-content-sha256;x-amz-date",
            signature: "34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7"),
    ]

    @Test("published vectors", arguments: vectors)
    func published(_ v: Vector) {
        let signer = v.s3 ? Self.s3 : Self.suite
        let date = v.s3 ? "20130524T000000Z" : "20150830T123600Z"
        let auth = signer.authorization(
            .init(method: v.method, path: v.path, query: v.query, headers: v.headers, payloadSHA256: v.payload),
            amzDate: date)
        let scope = v.s3 ? "20130524/us-east-1/s3" : "20150830/us-east-1/service"
        let key = v.s3 ? "AKIAIOSFODNN7EXAMPLE" : "AKIDEXAMPLE"
        #expect(
            auth
                == "AWS4-HMAC-SHA256 Credential=\(key)/\(scope)/aws4_request, SignedHeaders=\(v.signedHeaders), Signature=\(v.signature)"
        )
    }

    @Test("amz date, encoding of keys and queries")
    func encoding() {
        #expect(SigV4Signer.amzDate(unixSeconds: 1_440_938_160) == "20150830T123600Z")
        #expect(SigV4Signer.amzDate(unixSeconds: 0) == "19700101T000000Z")
        #expect(SigV4Signer.encode("a b/c+d=é~_.-") == "a%20b%2Fc%2Bd%3D%C3%A9~_.-")
        #expect(
            SigV4Signer.canonicalQuery([("uploads", ""), ("prefix", "a/b"), ("list-type", "2")])
                == "list-type=2&prefix=a%2Fb&uploads=")
        let (canonical, signed) = SigV4Signer.canonicalRequest(
            .init(
                method: "GET", path: "/bucket/a b/€", headers: [("Host", "h"), ("X-Amz-Date", "d  with   runs")],
                payloadSHA256: Self.empty))
        #expect(canonical.hasPrefix("GET\n/bucket/a%20b/%E2%82%AC\n\nhost:h\nx-amz-date:d with runs\n"))
        #expect(signed == "host;x-amz-date")
    }
}

@Suite("S3 XML replies")
struct S3XMLTests {
    @Test("a ListBucketResult page")
    func listing() throws {
        let xml = """
            <?xml version="1.0" encoding="UTF-8"?>
            <ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Name>b</Name><Prefix>r/</Prefix>\
            <IsTruncated>true</IsTruncated><NextContinuationToken>1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/wm36Hy4vbOwM=</NextContinuationToken>\
            <Contents><Key>r/a&amp;b</Key><LastModified>2026-11-30T14:12:51.000Z</LastModified>\
            <ETag>&quot;abc&quot;</ETag><Size>3</Size><StorageClass>STANDARD</StorageClass></Contents>\
            <Contents><Key>r/c</Key><Size>0</Size><Owner/></Contents></ListBucketResult>
            """
        let doc = try S3XML.parse(Array(xml.utf8))
        #expect(doc.name == "ListBucketResult")
        #expect(doc.all("Contents").map { $0.value("Key") } == ["r/a&b", "r/c"])
        #expect(doc.all("Contents")[0].value("ETag") == "\"abc\"")
        #expect(doc.value("NextContinuationToken") == "1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/wm36Hy4vbOwM=")
    }

    @Test(
        "malformed replies are refused",
        arguments: [
            "<a><b></a>", "<a>", "<a></a><b></b>", "<!DOCTYPE x><a/>", "<a><!-- c --></a>", "<a>&bogus;</a>",
            "<a>x & y</a>", "text<a/>", "",
        ])
    func refused(_ xml: String) {
        #expect(throws: XMLError.self) { try S3XML.parse(Array(xml.utf8)) }
    }
}
