import RCHCore
import RCHS3

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// The worker's `[shared]` table: where the fleet's shared tier is and what this worker may do with it.
/// Without the table nothing changes (no tier).
///
/// | key | default | meaning |
/// | --- | --- | --- |
/// | `endpoint` | required | `http(s)://host[:port]` of the S3-compatible service (path-style addressing) |
/// | `bucket` | required | the bucket (created by the operator) |
/// | `region` | `us-east-1` | the SigV4 region |
/// | `prefix` | `rch/` | key prefix inside the bucket (several fleets can share one bucket) |
/// | `credentials_file` | none | a file of `AWS_ACCESS_KEY_ID=…`, `AWS_SECRET_ACCESS_KEY=…` (optional `AWS_SESSION_TOKEN=…`) lines, mode 0600 and owned by this user; else those environment variables |
/// | `mode` | `read-write` | `read-only`: look up and pull, never publish |
/// | `trusted_keys` | `[]` | attestation key fingerprints (64 hex) whose tier results this worker serves; its own key is always trusted |
/// | `timeout_seconds` | 10 | per request: connection and between bytes |
/// | `max_attempts` | 3 | per request, for transient failures (backoff 100 ms × 2^n) |
/// | `concurrency` | 16 | parallel blob transfers (the tier's objects are many and small: latency-bound) |
/// | `retry_after_seconds` | 30 | after a transient failure the tier is skipped this long (jobs use the local store) |
///
/// Credentials are never logged or echoed: errors name the file or the variable, not the value.
public struct SharedConfig: Sendable, Equatable {
    public enum Mode: String, Sendable { case readWrite = "read-write", readOnly = "read-only" }

    public var location: S3Location
    public var prefix = "rch/"
    public var mode = Mode.readWrite
    public var trustedKeys: Set<String> = []
    public var concurrency = 16
    public var retryAfterSeconds: Int64 = 30

    public init(location: S3Location) { self.location = location }

    public struct Invalid: Error, CustomStringConvertible {
        public var description: String
    }

    /// Parses the `[shared]` table of `file`; `environment` supplies credentials when no file is named.
    public static func parse(_ t: JSONObject, file: String, environment: [String: String]) throws -> SharedConfig {
        func bad(_ m: String) -> Invalid { Invalid(description: "\(file): shared.\(m)") }
        let known: Set<String> = [
            "endpoint", "bucket", "region", "prefix", "credentials_file", "mode", "trusted_keys", "timeout_seconds",
            "max_attempts", "concurrency", "retry_after_seconds",
        ]
        if let k = t.keys.first(where: { !known.contains($0) }) { throw bad("\(k) is not a known key") }
        func str(_ k: String) throws -> String? {
            guard let v = t[k] else { return nil }
            guard let s = v.stringValue, !s.isEmpty else { throw bad("\(k) must be a non-empty string") }
            return s
        }
        func int(_ k: String, _ range: ClosedRange<Int64>) throws -> Int64? {
            guard let v = t[k] else { return nil }
            guard let i = v.intValue, range.contains(i) else {
                throw bad("\(k) must be an integer in \(range.lowerBound)...\(range.upperBound)")
            }
            return i
        }
        guard let endpoint = try str("endpoint") else { throw bad("endpoint is required (http(s)://host[:port])") }
        guard let bucket = try str("bucket") else { throw bad("bucket is required") }
        let credentials: SigV4Signer.Credentials
        if let path = try str("credentials_file") {
            credentials = try readCredentials(path, bad)
        } else {
            guard let id = environment["AWS_ACCESS_KEY_ID"], let secret = environment["AWS_SECRET_ACCESS_KEY"],
                !id.isEmpty, !secret.isEmpty
            else {
                throw bad(
                    "credentials_file is not set and AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY are not in the environment"
                )
            }
            credentials = .init(
                accessKeyID: id, secretAccessKey: secret, sessionToken: environment["AWS_SESSION_TOKEN"])
        }
        var c = SharedConfig(
            location: S3Location(
                endpoint: endpoint, bucket: bucket, region: try str("region") ?? "us-east-1", credentials: credentials))
        if let p = try str("prefix") {
            guard !p.hasPrefix("/"), p.hasSuffix("/"), !p.contains("//") else {
                throw bad("prefix must be relative and end with '/' (e.g. \"rch/\")")
            }
            c.prefix = p
        }
        if let m = try str("mode") {
            guard let mode = Mode(rawValue: m) else { throw bad("mode must be read-write or read-only") }
            c.mode = mode
        }
        if let keys = t["trusted_keys"] {
            guard let items = keys.arrayValue else { throw bad("trusted_keys must be an array of fingerprints") }
            for item in items {
                guard let s = item.stringValue, SHA256Digest(hex: s) != nil else {
                    throw bad(
                        "trusted_keys entries must be key fingerprints (64 lowercase hex; rch-worker identity prints one)"
                    )
                }
                c.trustedKeys.insert(s)
            }
        }
        if let s = try int("timeout_seconds", 1...3600) { c.location.requestTimeoutSeconds = Double(s) }
        if let a = try int("max_attempts", 1...10) { c.location.maxAttempts = Int(a) }
        if let n = try int("concurrency", 1...64) { c.concurrency = Int(n) }
        if let r = try int("retry_after_seconds", 0...86400) { c.retryAfterSeconds = r }
        _ = try S3Client(c.location)  // the endpoint's shape
        return c
    }

    static func readCredentials(_ path: String, _ bad: (String) -> Invalid) throws -> SigV4Signer.Credentials {
        var st = stat()
        guard stat(path, &st) == 0 else { throw bad("credentials_file \(path) does not exist") }
        guard st.st_mode & 0o077 == 0, st.st_uid == getuid() else {
            throw bad("credentials_file \(path) must be owned by this user with mode 0600 (chmod 600 \(path))")
        }
        guard let bytes = try? DurableFile.read(path, limit: 64 << 10) else {
            throw bad("credentials_file \(path) cannot be read")
        }
        var v: [String: String] = [:]
        for line in String(decoding: bytes, as: UTF8.self).split(separator: "\n") {
            let l = line.trimmingCharacters(in: " \t\r")
            if l.isEmpty || l.hasPrefix("#") { continue }
            let parts = l.split(separator: "=", maxSplits: 1).map(String.init)
            guard parts.count == 2 else { throw bad("credentials_file \(path): every line must be NAME=value") }
            v[parts[0]] = parts[1]
        }
        guard let id = v["AWS_ACCESS_KEY_ID"], let secret = v["AWS_SECRET_ACCESS_KEY"], !id.isEmpty, !secret.isEmpty
        else { throw bad("credentials_file \(path) must set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY") }
        return .init(accessKeyID: id, secretAccessKey: secret, sessionToken: v["AWS_SESSION_TOKEN"])
    }
}

extension Substring {
    func trimmingCharacters(in set: String) -> String {
        var s = self
        while let f = s.first, set.contains(f) { s = s.dropFirst() }
        while let l = s.last, set.contains(l) { s = s.dropLast() }
        return String(s)
    }
}
