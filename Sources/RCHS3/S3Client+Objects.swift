import Foundation
import RCHCore

import enum Crypto.Insecure

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Object operations. Keys are passed decoded (`blobs/ab/abcd…`); the client encodes them.
extension S3Client {
    public struct ObjectInfo: Sendable, Equatable {
        public var key: String
        public var size: UInt64
        public var etag: String
        /// As the server wrote it (`2026-11-30T14:12:51.000Z` in listings, an HTTP date in HEAD replies).
        public var lastModified: String
    }

    public enum PutOutcome: Sendable, Equatable {
        case stored(etag: String)
        /// `If-None-Match: *` and the key exists (412), or `If-Match` and the ETag moved (412).
        case preconditionFailed
    }

    /// PUT of a small object held in memory. `createOnly` sends `If-None-Match: *`; `ifMatch` an ETag.
    public func put(
        _ key: String, _ bytes: [UInt8], createOnly: Bool = false, ifMatch: String? = nil,
        contentType: String = "application/octet-stream"
    ) throws -> PutOutcome {
        var headers = [("content-type", contentType)]
        if createOnly { headers.append(("if-none-match", "*")) }
        if let ifMatch { headers.append(("if-match", ifMatch)) }
        let body = Body.bytes(bytes, sha256: SHA256Digest.of(bytes).hex)
        let r = try send("PUT \(key)", method: "PUT", key: key, headers: headers, body: body, accept: [200, 412])
        if r.status == 412, let ifMatch, ifMatch.hasPrefix("\""), try head(key)?.etag == ifMatch {
            // Ceph RGW 16 compares If-Match against the ETag without its quotes (412 for a matching quoted
            // one): the object is unchanged, so ask again in the form it understands.
            let bare = String(ifMatch.dropFirst().dropLast())
            let retry = try send(
                "PUT \(key)", method: "PUT", key: key,
                headers: headers.map { $0.0 == "if-match" ? ($0.0, bare) : $0 }, body: body, accept: [200, 412])
            return retry.status == 412 ? .preconditionFailed : .stored(etag: retry.header("etag") ?? "")
        }
        return r.status == 412 ? .preconditionFailed : .stored(etag: r.header("etag") ?? "")
    }

    /// PUT of a file streamed from disk, whose SHA-256 the caller knows (content-addressed blobs). Files
    /// above ``S3Location/multipartThreshold`` go up in parts; `createOnly` is then checked with a HEAD first
    /// (multipart completion is not conditional on every engine — content-addressed writes are idempotent).
    public func putFile(
        _ key: String, path: String, sha256: RCHCore.SHA256Digest, size: UInt64, createOnly: Bool = true
    )
        throws -> PutOutcome
    {
        if size > location.multipartThreshold {
            if createOnly, try head(key) != nil { return .preconditionFailed }
            return .stored(etag: try multipartUpload(key, path: path, size: size))
        }
        let headers = [("content-type", "application/octet-stream")] + (createOnly ? [("if-none-match", "*")] : [])
        let r = try send(
            "PUT \(key)", method: "PUT", key: key, headers: headers,
            body: .file(path, sha256: sha256.hex, size: size), accept: [200, 412])
        return r.status == 412 ? .preconditionFailed : .stored(etag: r.header("etag") ?? "")
    }

    /// GET of a small object into memory; nil if it does not exist.
    public func get(_ key: String, limit: Int = 16 << 20) throws -> (bytes: [UInt8], etag: String)? {
        let r = try send("GET \(key)", method: "GET", key: key, sink: .memory(limit: limit), accept: [200, 404])
        return r.status == 404 ? nil : (r.body, r.header("etag") ?? "")
    }

    /// GET streamed into `path` (created or replaced); false if the object does not exist.
    public func download(_ key: String, to path: String) throws -> Bool {
        let r = try send("GET \(key)", method: "GET", key: key, sink: .file(path), accept: [200, 404])
        return r.status != 404
    }

    public func head(_ key: String) throws -> ObjectInfo? {
        let r = try send("HEAD \(key)", method: "HEAD", key: key, accept: [200, 404])
        guard r.status == 200 else { return nil }
        return ObjectInfo(
            key: key, size: UInt64(r.header("content-length") ?? "") ?? 0, etag: r.header("etag") ?? "",
            lastModified: r.header("last-modified") ?? "")
    }

    public func delete(_ key: String) throws {
        _ = try send("DELETE \(key)", method: "DELETE", key: key, accept: [200, 204, 404])
    }

    /// DeleteObjects in batches of 1,000; returns the keys the server could not delete.
    public func delete(keys: [String]) throws -> [String] {
        var failed: [String] = []
        var start = 0
        while start < keys.count {
            let batch = keys[start..<min(keys.count, start + 1000)]
            start += batch.count
            var xml = "<Delete><Quiet>true</Quiet>"
            for k in batch { xml += "<Object><Key>\(Self.xmlEscape(k))</Key></Object>" }
            xml += "</Delete>"
            let body = Array(xml.utf8)
            let md5 = Data(Insecure.MD5.hash(data: body)).base64EncodedString()
            let r = try send(
                "DeleteObjects", method: "POST", key: nil, query: [("delete", "")],
                headers: [("content-md5", md5), ("content-type", "application/xml")],
                body: .bytes(body, sha256: SHA256Digest.of(body).hex))
            let doc = try parseXML("DeleteObjects", r.body, root: "DeleteResult")
            failed += doc.all("Error").compactMap { $0.value("Key") }
        }
        return failed
    }

    /// One page of ListObjectsV2 (up to 1,000 keys) and the token for the next, if any.
    public func list(prefix: String, continuation: String? = nil, maxKeys: Int = 1000) throws -> (
        objects: [ObjectInfo], next: String?
    ) {
        var query = [("list-type", "2"), ("prefix", prefix), ("max-keys", String(maxKeys))]
        if let continuation { query.append(("continuation-token", continuation)) }
        let r = try send(
            "ListObjectsV2 \(prefix)", method: "GET", key: nil, query: query, sink: .memory(limit: 64 << 20))
        let doc = try parseXML("ListObjectsV2", r.body, root: "ListBucketResult")
        var objects: [ObjectInfo] = []
        for c in doc.all("Contents") {
            guard let key = c.value("Key"), let size = c.value("Size").flatMap({ UInt64($0) }) else {
                throw S3Error.invalidResponse(operation: "ListObjectsV2", message: "an entry without Key or Size")
            }
            objects.append(
                ObjectInfo(
                    key: key, size: size, etag: c.value("ETag") ?? "", lastModified: c.value("LastModified") ?? ""))
        }
        let truncated = doc.value("IsTruncated") == "true"
        let next = truncated ? doc.value("NextContinuationToken") : nil
        if truncated && (next ?? "").isEmpty {
            throw S3Error.invalidResponse(operation: "ListObjectsV2", message: "truncated without a continuation token")
        }
        return (objects, next)
    }

    /// Every object under `prefix`, page by page.
    public func listAll(prefix: String, _ each: ([ObjectInfo]) throws -> Void) throws {
        var token: String?
        repeat {
            let page = try list(prefix: prefix, continuation: token)
            try each(page.objects)
            token = page.next
        } while token != nil
    }

    /// Multipart upload: parts of ``S3Location/partSize`` read one at a time (memory bounded by one part),
    /// each signed with its own SHA-256; aborted on any failure. Returns the object's ETag (read by HEAD:
    /// some engines answer CompleteMultipartUpload with an empty one).
    func multipartUpload(_ key: String, path: String, size: UInt64) throws -> String {
        let initiate = try send(
            "CreateMultipartUpload \(key)", method: "POST", key: key, query: [("uploads", "")],
            headers: [("content-type", "application/octet-stream")])
        guard
            let uploadID = try parseXML("CreateMultipartUpload", initiate.body, root: "InitiateMultipartUploadResult")
                .value("UploadId"), !uploadID.isEmpty
        else { throw S3Error.invalidResponse(operation: "CreateMultipartUpload", message: "no UploadId") }
        do {
            let fd = open(path, O_RDONLY | O_CLOEXEC)
            guard fd >= 0 else { throw S3Error.local("cannot open \(path) for upload") }
            defer { close(fd) }
            var etags: [String] = []
            var offset: UInt64 = 0
            var buffer = [UInt8](repeating: 0, count: location.partSize)
            while offset < size {
                let want = Int(min(UInt64(location.partSize), size - offset))
                var got = 0
                while got < want {
                    let n = buffer.withUnsafeMutableBytes {
                        pread(fd, $0.baseAddress! + got, want - got, off_t(offset) + off_t(got))
                    }
                    guard n > 0 else { throw S3Error.local("\(path) changed size during upload") }
                    got += n
                }
                let part = Array(buffer[0..<want])
                let r = try send(
                    "UploadPart \(key) #\(etags.count + 1)", method: "PUT", key: key,
                    query: [("partNumber", String(etags.count + 1)), ("uploadId", uploadID)],
                    body: .bytes(part, sha256: SHA256Digest.of(part).hex))
                guard let etag = r.header("etag") else {
                    throw S3Error.invalidResponse(operation: "UploadPart", message: "no ETag")
                }
                etags.append(etag)
                offset += UInt64(want)
            }
            var xml = "<CompleteMultipartUpload>"
            for (i, e) in etags.enumerated() {
                xml += "<Part><PartNumber>\(i + 1)</PartNumber><ETag>\(Self.xmlEscape(e))</ETag></Part>"
            }
            xml += "</CompleteMultipartUpload>"
            let body = Array(xml.utf8)
            let r = try send(
                "CompleteMultipartUpload \(key)", method: "POST", key: key, query: [("uploadId", uploadID)],
                headers: [("content-type", "application/xml")], body: .bytes(body, sha256: SHA256Digest.of(body).hex))
            // A 200 can still carry an <Error> document.
            let doc = try parseXML("CompleteMultipartUpload", r.body, root: nil)
            guard doc.name == "CompleteMultipartUploadResult" else {
                throw Self.httpError("CompleteMultipartUpload", Response(status: 500, headers: [:], body: r.body))
            }
        } catch {
            _ = try? send(
                "AbortMultipartUpload \(key)", method: "DELETE", key: key, query: [("uploadId", uploadID)],
                accept: [200, 204, 404])
            throw error
        }
        return try head(key)?.etag ?? ""
    }

    func parseXML(_ operation: String, _ body: [UInt8], root: String?) throws -> XMLElement {
        let doc: XMLElement
        do { doc = try S3XML.parse(body) } catch {
            throw S3Error.invalidResponse(operation: operation, message: "\(error)")
        }
        if let root, doc.name != root {
            throw S3Error.invalidResponse(operation: operation, message: "expected <\(root)>, got <\(doc.name)>")
        }
        return doc
    }

    static func xmlEscape(_ s: String) -> String {
        var out = ""
        for c in s {
            switch c {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&apos;"
            default: out.append(c)
            }
        }
        return out
    }
}

extension S3Client {
    /// The server's clock (the `Date` header of a HEAD of the bucket), in milliseconds — the one clock every
    /// worker of a fleet shares, for protocols that compare times across machines.
    public func serverTimeMs() throws -> Int64 {
        let r = try send("HEAD bucket", method: "HEAD", key: nil)
        guard let date = r.header("date"), let ms = Self.httpDateMs(date) else {
            throw S3Error.invalidResponse(operation: "HEAD bucket", message: "no readable Date header")
        }
        return ms
    }

    /// IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`) → milliseconds since the epoch.
    public static func httpDateMs(_ s: String) -> Int64? {
        let p = s.split(separator: " ")
        let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
        guard p.count == 6, p[5] == "GMT", let day = Int32(p[1]), let month = months.firstIndex(of: String(p[2])),
            let year = Int32(p[3])
        else { return nil }
        let hms = p[4].split(separator: ":").compactMap { Int32($0) }
        guard hms.count == 3 else { return nil }
        var t = tm()
        t.tm_year = year - 1900
        t.tm_mon = Int32(month)
        t.tm_mday = day
        t.tm_hour = hms[0]
        t.tm_min = hms[1]
        t.tm_sec = hms[2]
        return Int64(timegm(&t)) * 1000
    }
}
