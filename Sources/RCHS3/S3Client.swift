import Foundation
import RCHCore

#if canImport(FoundationNetworking)
    import FoundationNetworking
#endif

/// Where a bucket is and how to talk to it.
public struct S3Location: Sendable, Equatable {
    /// `http(s)://host[:port]`, no path (path-style addressing: `<endpoint>/<bucket>/<key>`).
    public var endpoint: String
    public var bucket: String
    public var region: String
    public var credentials: SigV4Signer.Credentials
    /// Longest wait for a connection or between bytes of a reply.
    public var requestTimeoutSeconds: Double = 30
    /// Attempts per call for transient failures (1 = no retry); backoff 100 ms × 2^n with jitter.
    public var maxAttempts = 4
    /// Files larger than this are uploaded in parts of `partSize` bytes.
    public var multipartThreshold: UInt64 = 64 << 20
    public var partSize = 16 << 20

    public init(endpoint: String, bucket: String, region: String, credentials: SigV4Signer.Credentials) {
        self.endpoint = endpoint.hasSuffix("/") ? String(endpoint.dropLast()) : endpoint
        self.bucket = bucket
        self.region = region
        self.credentials = credentials
    }
}

/// A small, synchronous S3 client: SigV4 with the payload's SHA-256 signed, path-style URLs, streaming
/// uploads from and downloads to files (memory independent of object size), multipart above a threshold,
/// ListObjectsV2 pagination, bounded retries with backoff for transient failures (``S3Error/isTransient``).
///
/// Built on FoundationNetworking's `URLSession` (libcurl underneath on Linux, the system's on Darwin): it
/// costs nothing to build, streams files both ways, and every call here is a plain request/response;
/// async-http-client would add minutes to every CI build for no capability we use (PLAN §18).
/// Safe to call from several threads at once (each call blocks its own thread).
public final class S3Client: @unchecked Sendable {
    public let location: S3Location
    let session: URLSession
    let signer: SigV4Signer
    let host: String

    public init(_ location: S3Location) throws {
        guard let url = URL(string: location.endpoint), let scheme = url.scheme, scheme == "http" || scheme == "https",
            let h = url.host, url.path.isEmpty || url.path == "/"
        else {
            throw S3Error.local(
                "shared.endpoint '\(location.endpoint)' must be http(s)://host[:port] with no path")
        }
        self.location = location
        host = url.port.map { "\(h):\($0)" } ?? h
        signer = SigV4Signer(credentials: location.credentials, region: location.region)
        let config = URLSessionConfiguration.ephemeral
        config.timeoutIntervalForRequest = location.requestTimeoutSeconds
        config.timeoutIntervalForResource = max(location.requestTimeoutSeconds * 40, 600)
        config.httpMaximumConnectionsPerHost = 64  // ≥ the largest shared.concurrency
        config.urlCache = nil
        config.httpCookieStorage = nil
        session = URLSession(configuration: config)
    }

    deinit { session.finishTasksAndInvalidate() }

    public enum Body: Sendable {
        case empty
        case bytes([UInt8], sha256: String)
        /// A file streamed from disk; its SHA-256 (hex) and size are known beforehand.
        case file(String, sha256: String, size: UInt64)
    }

    public enum Sink: Sendable {
        case memory(limit: Int)
        /// The body is written to this path (created or replaced); on failure the file is removed.
        case file(String)
    }

    public struct Response: Sendable {
        public var status: Int
        public var headers: [String: String]
        public var body: [UInt8]
        public func header(_ name: String) -> String? { headers[name.lowercased()] }
    }

    /// One request (retried while transient). Statuses in `accept` are answers, others throw ``S3Error/http``.
    public func send(
        _ operation: String, method: String, key: String?, query: [(String, String)] = [],
        headers extra: [(String, String)] = [], body: Body = .empty, sink: Sink = .memory(limit: 1 << 20),
        accept: Set<Int> = [200]
    ) throws -> Response {
        var attempt = 0
        while true {
            attempt += 1
            do {
                let r = try once(operation, method, key, query, extra, body, sink)
                if accept.contains(r.status) { return r }
                throw Self.httpError(operation, r)
            } catch let e as S3Error where e.isTransient && attempt < location.maxAttempts {
                let base = 100_000 << (attempt - 1)
                usleep(UInt32(base + Int.random(in: 0..<(base / 2 + 1))))
            }
        }
    }

    func once(
        _ operation: String, _ method: String, _ key: String?, _ query: [(String, String)],
        _ extra: [(String, String)], _ body: Body, _ sink: Sink
    ) throws -> Response {
        let path = "/" + location.bucket + (key.map { "/" + $0 } ?? "")
        let payload: String
        switch body {
        case .empty: payload = SigV4Signer.emptyPayloadSHA256
        case .bytes(_, let sha), .file(_, let sha, _): payload = sha
        }
        let amzDate = SigV4Signer.amzDate(unixSeconds: Int64(Date().timeIntervalSince1970))
        var headers = extra + [("host", host), ("x-amz-date", amzDate), ("x-amz-content-sha256", payload)]
        if let token = location.credentials.sessionToken { headers.append(("x-amz-security-token", token)) }
        let auth = signer.authorization(
            .init(method: method, path: path, query: query, headers: headers, payloadSHA256: payload), amzDate: amzDate)
        let encodedPath = path.split(separator: "/", omittingEmptySubsequences: false).map {
            SigV4Signer.encode($0)
        }.joined(separator: "/")
        let q = SigV4Signer.canonicalQuery(query)
        guard let url = URL(string: location.endpoint + encodedPath + (q.isEmpty ? "" : "?" + q)) else {
            throw S3Error.local("\(operation): cannot form a URL for key '\(key ?? "")'")
        }
        var request = URLRequest(url: url)
        request.httpMethod = method
        for (name, value) in headers where name != "host" { request.setValue(value, forHTTPHeaderField: name) }
        request.setValue(auth, forHTTPHeaderField: "Authorization")
        switch body {
        case .empty: break
        case .bytes(let b, _): request.setValue(String(b.count), forHTTPHeaderField: "Content-Length")
        case .file(_, _, let size): request.setValue(String(size), forHTTPHeaderField: "Content-Length")
        }
        return try perform(operation, request, body, sink)
    }

    final class Outcome: @unchecked Sendable {
        var response: HTTPURLResponse?
        var data: Data?
        var error: Error?
        var moveError: String?
    }

    func perform(_ operation: String, _ request: URLRequest, _ body: Body, _ sink: Sink) throws -> Response {
        let outcome = Outcome()
        let done = DispatchSemaphore(value: 0)
        let task: URLSessionTask
        switch (body, sink) {
        case (_, .file(let dest)):
            task = session.downloadTask(with: request) { url, response, error in
                outcome.response = response as? HTTPURLResponse
                outcome.error = error
                if let url, let status = outcome.response?.statusCode {
                    if (200..<300).contains(status) {
                        unlink(dest)
                        if rename(url.path, dest) != 0 {
                            do { try FileManager.default.copyItem(atPath: url.path, toPath: dest) } catch {
                                outcome.moveError = "\(error)"
                            }
                        }
                    } else {
                        outcome.data = try? Data(contentsOf: url)
                    }
                }
                done.signal()
            }
        case (.file(let path, _, _), _):
            task = session.uploadTask(with: request, fromFile: URL(fileURLWithPath: path)) { data, response, error in
                outcome.response = response as? HTTPURLResponse
                outcome.data = data
                outcome.error = error
                done.signal()
            }
        case (.bytes(let b, _), _):
            task = session.uploadTask(with: request, from: Data(b)) { data, response, error in
                outcome.response = response as? HTTPURLResponse
                outcome.data = data
                outcome.error = error
                done.signal()
            }
        case (.empty, _):
            task = session.dataTask(with: request) { data, response, error in
                outcome.response = response as? HTTPURLResponse
                outcome.data = data
                outcome.error = error
                done.signal()
            }
        }
        task.resume()
        done.wait()
        if let error = outcome.error {
            if case .file(let dest) = sink { unlink(dest) }
            throw S3Error.unreachable(operation: operation, message: (error as NSError).localizedDescription)
        }
        guard let http = outcome.response else {
            throw S3Error.invalidResponse(operation: operation, message: "no HTTP response")
        }
        if let m = outcome.moveError { throw S3Error.local("\(operation): cannot store the download: \(m)") }
        var headers: [String: String] = [:]
        for (k, v) in http.allHeaderFields {
            if let k = k as? String, let v = v as? String { headers[k.lowercased()] = v }
        }
        let bytes = outcome.data.map { [UInt8]($0) } ?? []
        if case .memory(let limit) = sink, bytes.count > limit {
            throw S3Error.invalidResponse(
                operation: operation, message: "reply of \(bytes.count) bytes exceeds \(limit)")
        }
        return Response(status: http.statusCode, headers: headers, body: bytes)
    }

    static func httpError(_ operation: String, _ r: Response) -> S3Error {
        var code = ""
        var message = ""
        if let x = try? S3XML.parse(r.body), x.name == "Error" {
            code = x.value("Code") ?? ""
            message = x.value("Message") ?? ""
        }
        return .http(operation: operation, status: r.status, code: code, message: message)
    }
}
