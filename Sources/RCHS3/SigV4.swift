import Crypto
import RCHCore

/// AWS Signature Version 4 for S3 requests (header authentication).
///
/// Invariants (checked against AWS's published SigV4 test-suite and S3 documentation vectors in
/// `RCHS3Tests`):
/// - canonical URI: each path segment percent-encoded once (S3 does not double-encode), `/` kept;
///   everything but `A–Z a–z 0–9 - _ . ~` encoded as `%XX` (upper-case hex);
/// - canonical query: names and values encoded the same way (`/` too), sorted by name then value,
///   a bare name gets an empty value;
/// - canonical headers: lower-case names, values trimmed with inner runs of spaces collapsed, sorted;
///   every header handed to the signer is signed (`host`, `x-amz-date`, `x-amz-content-sha256` always);
/// - the payload hash is the hex SHA-256 of the exact body (we never send `UNSIGNED-PAYLOAD`).
public struct SigV4Signer: Sendable {
    public struct Credentials: Sendable, Equatable {
        public var accessKeyID: String
        public var secretAccessKey: String
        public var sessionToken: String?

        public init(accessKeyID: String, secretAccessKey: String, sessionToken: String? = nil) {
            self.accessKeyID = accessKeyID
            self.secretAccessKey = secretAccessKey
            self.sessionToken = sessionToken
        }
    }

    /// One request as the signer sees it: `path` and `query` are *decoded* (the signer encodes them).
    public struct Request: Sendable {
        public var method: String
        public var path: String
        public var query: [(String, String)]
        public var headers: [(String, String)]
        public var payloadSHA256: String

        public init(
            method: String, path: String, query: [(String, String)] = [], headers: [(String, String)],
            payloadSHA256: String
        ) {
            self.method = method
            self.path = path
            self.query = query
            self.headers = headers
            self.payloadSHA256 = payloadSHA256
        }
    }

    public static let emptyPayloadSHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

    public let credentials: Credentials
    public let region: String
    public let service: String

    public init(credentials: Credentials, region: String, service: String = "s3") {
        self.credentials = credentials
        self.region = region
        self.service = service
    }

    /// `YYYYMMDDTHHMMSSZ` for a Unix time in seconds.
    public static func amzDate(unixSeconds: Int64) -> String {
        // "2015-08-30T12:36:00.000Z" → "20150830T123600Z"
        let t = Timestamp.format(nanosSinceEpoch: unixSeconds * 1_000_000_000)
        return String(t.prefix(19).filter { $0 != "-" && $0 != ":" }) + "Z"
    }

    /// The `Authorization` header value for `request` signed at `amzDate` (which must also be the
    /// request's `x-amz-date` header).
    public func authorization(_ request: Request, amzDate: String) -> String {
        let (canonical, signedHeaders) = Self.canonicalRequest(request)
        let scope = "\(amzDate.prefix(8))/\(region)/\(service)/aws4_request"
        let stringToSign =
            "AWS4-HMAC-SHA256\n\(amzDate)\n\(scope)\n\(SHA256Digest.of(Array(canonical.utf8)).hex)"
        let signature = Self.hex(Self.hmac(signingKey(date: String(amzDate.prefix(8))), Array(stringToSign.utf8)))
        return "AWS4-HMAC-SHA256 Credential=\(credentials.accessKeyID)/\(scope), SignedHeaders=\(signedHeaders), "
            + "Signature=\(signature)"
    }

    func signingKey(date: String) -> [UInt8] {
        var key = Self.hmac(Array(("AWS4" + credentials.secretAccessKey).utf8), Array(date.utf8))
        key = Self.hmac(key, Array(region.utf8))
        key = Self.hmac(key, Array(service.utf8))
        return Self.hmac(key, Array("aws4_request".utf8))
    }

    /// The canonical request text and the signed-headers list.
    static func canonicalRequest(_ r: Request) -> (String, String) {
        let uri =
            r.path.isEmpty
            ? "/"
            : r.path.split(separator: "/", omittingEmptySubsequences: false).map { encode($0) }.joined(separator: "/")
        let query = canonicalQuery(r.query)
        var headers: [(String, String)] = r.headers.map { (name, value) in
            (name.lowercased(), value.split(separator: " ", omittingEmptySubsequences: true).joined(separator: " "))
        }
        headers.sort { $0.0 < $1.0 }
        let canonicalHeaders = headers.map { "\($0.0):\($0.1)\n" }.joined()
        let signed = headers.map(\.0).joined(separator: ";")
        return ([r.method, uri, query, canonicalHeaders, signed, r.payloadSHA256].joined(separator: "\n"), signed)
    }

    /// The encoded, sorted query string (also what goes on the wire, so the server sees what was signed).
    public static func canonicalQuery(_ query: [(String, String)]) -> String {
        query.map { (encode($0.0), encode($0.1)) }
            .sorted { $0.0 != $1.0 ? $0.0 < $1.0 : $0.1 < $1.1 }
            .map { "\($0.0)=\($0.1)" }
            .joined(separator: "&")
    }

    /// RFC 3986 percent-encoding of everything but the unreserved characters.
    public static func encode(_ s: some StringProtocol) -> String {
        var out: [UInt8] = []
        for b in s.utf8 {
            switch b {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"),
                UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "_"), UInt8(ascii: "."),
                UInt8(ascii: "~"):
                out.append(b)
            default:
                out.append(UInt8(ascii: "%"))
                out.append(upperHex(b >> 4))
                out.append(upperHex(b & 15))
            }
        }
        return String(decoding: out, as: UTF8.self)
    }

    static func upperHex(_ v: UInt8) -> UInt8 { v < 10 ? 48 + v : 55 + v }

    static func hmac(_ key: [UInt8], _ message: [UInt8]) -> [UInt8] {
        Array(HMAC<SHA256>.authenticationCode(for: message, using: SymmetricKey(data: key)))
    }

    static func hex(_ bytes: [UInt8]) -> String { SHA256Digest(bytes: bytes).hex }
}
