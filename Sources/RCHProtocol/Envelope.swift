import RCHCore

/// The lane's RPC envelope (one request per connection, SSH forced-command friendly).
///
/// Invariants (the wire contract; PLAN.md §13):
/// - a request is ONE line of compact JSON `{protocol_version, op, request_id, payload}` terminated by
///   `\n`, at most ``Limits/maxHeaderBytes`` long, optionally followed by exactly
///   `payload.stream.content_length` raw bytes, then end of input. Nothing else is accepted;
/// - a response is ONE line `{protocol_version, request_id, ok, payload | error{code, message, data}}`,
///   except framed responses (`fetch`), whose header line carries `ok: true` and the payload members at
///   the top level, followed by exactly `stream.content_length` bytes;
/// - `request_id` follows the id rule (`^[A-Za-z0-9][A-Za-z0-9_-]{9,63}$`) and every digest is 64
///   lowercase hex characters; both are checked before anything else looks at the request;
/// - `protocol_version` 0 is accepted only for `probe` (bootstrap: the host does not yet know the range).
public enum LaneProtocol {
    /// This implementation's `rch_xcode_lane_version`.
    public static let laneVersion = "0.6.0"
    public static let minVersion = 1
    public static let maxVersion = 1
    /// Default bound on a request header line (the worker may lower it in its config).
    public static let defaultMaxHeaderBytes = 16 << 20

    /// Every op this implementation knows, with the feature that advertises it.
    public enum Op: String, Sendable, CaseIterable {
        case probe, has_source, upload_source, upload_tree, submit, status, tail, cancel, fetch
        case reserve, renew, release
        case jobs
        /// Fleet selection (adaptive mode): live load and whether the worker holds a source / results.
        case affinity
        /// Delta fetch: a job's manifest and small files, then a blob pack of only the blobs the host lacks.
        case fetch_blobs

        /// The feature that advertises the op (`reserve`, `renew`, `release` come with `lease`).
        public var feature: String {
            switch self {
            case .reserve, .renew, .release: "lease"
            default: rawValue
            }
        }
    }

    /// Features a worker advertises in `probe`. `upload_tree` is beyond the spec (incremental upload).
    /// Ops, plus `attestation_signing` (every attestation is signed with the worker's Ed25519 key).
    public static let allFeatures = [
        "probe", "has_source", "upload_source", "upload_tree", "submit", "status", "tail", "cancel", "fetch",
        "attestation_signing", "lease", "jobs", "affinity", "fetch_blobs",
    ]
    /// Features the host cannot work without.
    public static let requiredFeatures = [
        "probe", "has_source", "upload_source", "submit", "status", "fetch", "attestation_signing",
    ]

    /// The highest version both ranges contain, or nil.
    public static func negotiate(workerMin: Int, workerMax: Int, hostMin: Int = minVersion, hostMax: Int = maxVersion)
        -> Int?
    {
        let v = min(workerMax, hostMax)
        return v >= max(workerMin, hostMin) ? v : nil
    }
}

/// The error codes of the RPC error object.
public enum RPCErrorCode: String, Sendable, CaseIterable {
    case invalidRequest = "INVALID_REQUEST"
    case unsupportedProtocol = "UNSUPPORTED_PROTOCOL"
    case featureMissing = "FEATURE_MISSING"
    case busy = "BUSY"
    case leaseExpired = "LEASE_EXPIRED"
    case sourceMissing = "SOURCE_MISSING"
    case artifactsGone = "ARTIFACTS_GONE"
    case payloadTooLarge = "PAYLOAD_TOO_LARGE"
    case forbidden = "FORBIDDEN"
    /// The worker cannot run this job as keyed (`data.failure_subkind`: `TOOLCHAIN_CHANGED` — the job's
    /// toolchain or destination identity is not the worker's current one; `data.capabilities` is current).
    case workerIncompatible = "WORKER_INCOMPATIBLE"
    /// The named job does not exist on this worker (and never did).
    case notFound = "NOT_FOUND"
    /// The worker's store has no room for this write (below its free-space floor, or the disk is full);
    /// nothing partial was kept. Retry after the worker's gc freed space.
    case storeFull = "STORE_FULL"
    /// The worker has no usable executor (not configured, or its toolchain cannot be detected).
    case executorUnavailable = "EXECUTOR_UNAVAILABLE"
    /// A failure inside the worker (I/O, corrupt store) — not the requester's fault.
    case internalError = "INTERNAL"
}

/// An error the worker answers with (and the host receives).
public struct RPCError: Error, Sendable, Equatable, CustomStringConvertible {
    public var code: RPCErrorCode
    public var message: String
    public var data: JSONObject

    public init(_ code: RPCErrorCode, _ message: String, data: JSONObject = JSONObject()) {
        self.code = code
        self.message = message
        self.data = data
    }

    public var description: String { "\(code.rawValue): \(message)" }

    public var json: JSONValue {
        .obj(["code": .string(code.rawValue), "message": .string(message), "data": .object(data)])
    }

    public static func invalid(_ m: String, data: JSONObject = JSONObject()) -> RPCError {
        RPCError(.invalidRequest, m, data: data)
    }
}

extension RPCError: LaneError {
    /// How a host reports a worker error (the lane's failure kinds and exit codes).
    public var failureKind: FailureKind {
        switch code {
        case .busy: .workerBusy
        case .unsupportedProtocol, .featureMissing, .workerIncompatible: .workerIncompatible
        case .sourceMissing, .payloadTooLarge, .storeFull: .transfer
        case .artifactsGone: .artifacts
        case .invalidRequest, .forbidden, .leaseExpired, .internalError, .executorUnavailable, .notFound: .executor
        }
    }

    public var exitCode: Int32 { code == .notFound ? CommandExit.notFound : failureKind.exitCode }

    public var failureSubkind: String? {
        if let s = data["failure_subkind"]?.stringValue, code == .workerIncompatible || code == .executorUnavailable {
            return s
        }
        return code == .invalidRequest ? "PROTOCOL_ERROR" : code.rawValue
    }
}

/// A parsed, validated request header.
public struct RPCRequest: Sendable {
    public var protocolVersion: Int
    public var op: LaneProtocol.Op
    public var requestID: String
    public var payload: JSONObject

    public init(
        protocolVersion: Int, op: LaneProtocol.Op, requestID: String = Identifier.generate(), payload: JSONObject
    ) {
        self.protocolVersion = protocolVersion
        self.op = op
        self.requestID = requestID
        self.payload = payload
    }

    /// The header line (compact canonical JSON + `\n`).
    public var headerLine: [UInt8] {
        JSONValue.obj([
            "protocol_version": .int(Int64(protocolVersion)), "op": .string(op.rawValue),
            "request_id": .string(requestID), "payload": .object(payload),
        ]).canonicalBytes + [10]
    }

    /// The request id a response may echo even when the header is otherwise invalid.
    public static func bestEffortRequestID(_ v: JSONValue?) -> String? {
        guard let s = v?["request_id"]?.stringValue, Identifier.isValid(s, .requestID) else { return nil }
        return s
    }

    /// Validates the envelope (not the op's payload).
    public init(json v: JSONValue, supported: ClosedRange<Int> = LaneProtocol.minVersion...LaneProtocol.maxVersion)
        throws(RPCError)
    {
        guard let o = v.objectValue else { throw .invalid("the request must be a JSON object") }
        for k in o.keys where !["protocol_version", "op", "request_id", "payload"].contains(k) {
            throw .invalid("unknown envelope member '\(k)'", data: ["field": .string(k)])
        }
        guard let rid = o["request_id"]?.stringValue else { throw .invalid("request_id is required (a string)") }
        guard Identifier.isValid(rid, .requestID) else {
            throw .invalid(IdentifierError(kind: .requestID, value: String(rid.prefix(80))).description)
        }
        guard let opName = o["op"]?.stringValue else { throw .invalid("op is required (a string)") }
        guard let op = LaneProtocol.Op(rawValue: opName) else {
            throw RPCError(
                .featureMissing, "unknown op '\(opName.prefix(64))'", data: ["op": .string(String(opName.prefix(64)))])
        }
        guard let pv = o["protocol_version"]?.intValue,
            o["protocol_version"].map({ if case .int = $0 { true } else { false } }) == true
        else {
            throw .invalid("protocol_version is required (an integer)")
        }
        guard supported.contains(Int(pv)) || (pv == 0 && op == .probe) else {
            throw RPCError(
                .unsupportedProtocol,
                "protocol_version \(pv) is not supported (this worker speaks \(supported.lowerBound)...\(supported.upperBound))",
                data: [
                    "protocol_min": .int(Int64(supported.lowerBound)),
                    "protocol_max": .int(Int64(supported.upperBound)),
                ])
        }
        guard let payload = o["payload"]?.objectValue else { throw .invalid("payload is required (an object)") }
        self.protocolVersion = Int(pv)
        self.op = op
        self.requestID = rid
        self.payload = payload
    }
}

/// A response header line.
public enum RPCResponse {
    public static func success(_ payload: JSONObject, requestID: String, protocolVersion: Int) -> [UInt8] {
        JSONValue.obj([
            "protocol_version": .int(Int64(protocolVersion)), "request_id": .string(requestID), "ok": .bool(true),
            "payload": .object(payload),
        ]).canonicalBytes + [10]
    }

    public static func failure(_ e: RPCError, requestID: String?, protocolVersion: Int) -> [UInt8] {
        JSONValue.obj([
            "protocol_version": .int(Int64(protocolVersion)), "request_id": requestID.map { .string($0) } ?? .null,
            "ok": .bool(false), "error": e.json,
        ]).canonicalBytes + [10]
    }

    /// A framed response header: payload members at the top level next to the envelope members.
    public static func framed(_ payload: JSONObject, requestID: String, protocolVersion: Int) -> [UInt8] {
        var o = payload
        o["protocol_version"] = .int(Int64(protocolVersion))
        o["request_id"] = .string(requestID)
        o["ok"] = .bool(true)
        return JSONValue.object(o).canonicalBytes + [10]
    }
}
