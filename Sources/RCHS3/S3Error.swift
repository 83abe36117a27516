import RCHCore

/// What an S3 call can end in, besides success.
///
/// `unreachable` (connection refused, reset, timed out, DNS) and `http` with 5xx, 429 or `SlowDown` are
/// *transient*: the client retries them with backoff, and the shared tier treats a final one as "the tier is
/// unavailable" — never as a failed job. Everything else (403 wrong credentials, 400, a reply we cannot
/// read) is reported as it is.
public enum S3Error: Error, CustomStringConvertible, Sendable, Equatable {
    case unreachable(operation: String, message: String)
    case http(operation: String, status: Int, code: String, message: String)
    case invalidResponse(operation: String, message: String)
    case local(String)

    public var isTransient: Bool {
        switch self {
        case .unreachable: true
        case .http(_, let status, let code, _): status >= 500 || status == 429 || code == "SlowDown"
        case .invalidResponse, .local: false
        }
    }

    public var status: Int? {
        if case .http(_, let s, _, _) = self { return s }
        return nil
    }

    public var description: String {
        switch self {
        case .unreachable(let op, let m): "\(op): the object store is unreachable (\(m))"
        case .http(let op, let s, let c, let m):
            "\(op): HTTP \(s)\(c.isEmpty ? "" : " \(c)")\(m.isEmpty ? "" : ": \(m)")"
                + (s == 403 ? " (check the credentials and the bucket policy)" : "")
        case .invalidResponse(let op, let m): "\(op): unexpected reply from the object store: \(m)"
        case .local(let m): m
        }
    }
}

extension S3Error: LaneError {
    public var failureKind: FailureKind { .transfer }
    public var failureSubkind: String? { "SHARED_TIER" }
}
