import RCHBundle
import RCHCore
import RCHJob
import RCHProtocol
import RCHStore
import SystemPackage

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// `rch-worker rpc`: answers exactly one request read from `input` on `output`.
///
/// Order of checks (nothing is touched before all that apply have passed): forced-command gate
/// (`FORBIDDEN`) → bounded header line → strict JSON → envelope (`request_id`, `op`, `protocol_version`)
/// → feature enabled → payload fields, ids and digests → for ops without a stream, end of input →
/// the op. Streams are verified (length, `content_sha256`, end of input) before anything is decoded.
public struct WorkerServer {
    public let store: LocalStore
    public let config: WorkerConfig
    /// How to start `rch-worker run-job` for a submitted job.
    public var runnerCommand: [String]

    public init(store: LocalStore, config: WorkerConfig, runnerCommand: [String]) {
        self.store = store
        self.config = config
        self.runnerCommand = runnerCommand
    }

    /// The worker's executor and identity as configured now.
    var provider: WorkerIdentityProvider { WorkerIdentityProvider(store: store, config: config) }

    enum Reply {
        case payload(JSONObject)
        /// A framed response: header members, then the bytes of `file` (`hold` keeps the job from gc until sent;
        /// a `temporary` file is removed once sent or abandoned).
        case framed(JSONObject, file: String, length: UInt64, hold: FetchHold?, temporary: Bool = false)
    }

    /// Serves one request; returns the process exit status (0 = ok reply, 1 = error reply) and whether
    /// the store was written to (the caller may then start an automatic gc).
    public func serve(input: FileDescriptor, output: FileDescriptor, originalCommand: String?) -> (
        status: Int32, wrote: Bool
    ) {
        // The header may wait up to a minute whatever `read_timeout` says: a host starts its next exchange's
        // process before it knows the request (StartedExchange, at most 20 s before it sends).
        let reader = FrameReader(fd: input, idleTimeoutSeconds: Double(max(config.readTimeoutSeconds, 60)))
        var requestID: String? = nil
        var version = config.protocolMax
        var wrote = false
        do {
            if let cmd = originalCommand, !Self.allowed(cmd) {
                throw RPCError(.forbidden, "this key may only run `rch-worker rpc` (got '\(cmd.prefix(80))')")
            }
            let line: [UInt8]
            do { line = try reader.readHeaderLine(maxBytes: config.maxHeaderBytes) } catch FrameReader.HeaderError
                .tooLong(let n)
            {
                throw RPCError.invalid(
                    "the request header exceeds \(n) bytes", data: ["max_header_bytes": .int(Int64(n))])
            } catch FrameReader.HeaderError.empty {
                // End of input without a byte: a process the host started early and then did not need.
                return (0, false)
            }
            reader.idleTimeoutSeconds = Double(config.readTimeoutSeconds)
            let json: JSONValue
            do { json = try JSONParser().parse(line) } catch {
                throw RPCError.invalid("the request header is not valid JSON: \(error)")
            }
            requestID = RPCRequest.bestEffortRequestID(json)
            let request = try RPCRequest(json: json, supported: config.protocolMin...config.protocolMax)
            // The bootstrap probe (version 0) is answered with version 0, as the spec says.
            version = request.protocolVersion
            guard config.features.contains(request.op.feature) else {
                throw RPCError(
                    .featureMissing, "this worker does not offer '\(request.op.feature)'",
                    data: ["feature": .string(request.op.feature)])
            }
            let hasStream = request.payload["stream"] != nil
            if hasStream && request.op != .upload_source && request.op != .upload_tree {
                throw RPCError.invalid("op \(request.op.rawValue) takes no stream")
            }
            if !hasStream, try !reader.atEnd() { throw RPCError.invalid("unexpected bytes after the request header") }
            let reply = try dispatch(request, reader, &wrote)
            switch reply {
            case .payload(let p):
                try writeAll(output, RPCResponse.success(p, requestID: request.requestID, protocolVersion: version))
            case .framed(let header, let file, let length, let hold, let temporary):
                defer { if temporary { unlink(file) } }
                try writeAll(output, RPCResponse.framed(header, requestID: request.requestID, protocolVersion: version))
                try sendFile(file, to: output, count: length)
                withExtendedLifetime(hold) {}
            }
            return (0, wrote)
        } catch {
            let e = Self.rpcError(error)
            try? writeAll(output, RPCResponse.failure(e, requestID: requestID, protocolVersion: version))
            return (1, wrote)
        }
    }

    /// The forced-command gate: `SSH_ORIGINAL_COMMAND` may only ask for the RPC endpoint.
    static func allowed(_ cmd: String) -> Bool {
        let words = cmd.split(separator: " ").map(String.init)
        guard let first = words.first else { return true }
        let name = first.split(separator: "/").last.map(String.init) ?? first
        return name == "rch-worker" && words.count >= 2 && words[1] == "rpc"
            && !cmd.contains(where: { ";|&`$<>\n".contains($0) })
    }

    /// Maps library errors onto RPC error codes (anything unexpected is INTERNAL, with its message).
    static func rpcError(_ error: Error) -> RPCError {
        switch error {
        case let e as RPCError: return e
        case let e as JobKeyError:
            return .invalid("job_key_inputs\(e.path): \(e.message)", data: ["pointer": .string(e.path)])
        case let e as IdentifierError: return .invalid(e.description)
        case let e as BundleError:
            return .invalid(e.description, data: ["failure_kind": .string(e.failureKind.rawValue)])
        case let e as StoreError:
            switch e {
            case .sourceMissing(let d):
                return RPCError(.sourceMissing, e.description, data: ["source_sha256": .string(d.hex)])
            case .storeFull: return RPCError(.storeFull, e.description)
            case .invalid, .jobIDConflict: return .invalid(e.description)
            case .retry: return RPCError(.busy, e.description, data: ["retry_after_seconds": .int(1)])
            default: return RPCError(.internalError, e.description)
            }
        case let e as FrameReader.ReadTimeout:
            return .invalid(e.description, data: ["failure_subkind": .string("READ_TIMEOUT")])
        case let e as SystemError where e.errno == .noSpace || e.errno == .diskQuotaExceeded:
            // A full disk anywhere in a write path (upload spool, staging, entries): nothing partial is kept.
            return RPCError(
                .storeFull,
                "the worker's store is full (\(e)); run `rch-worker gc` on the worker or free space, then retry")
        default: return RPCError(.internalError, "\(error)")
        }
    }

    func dispatch(_ r: RPCRequest, _ reader: FrameReader, _ wrote: inout Bool) throws -> Reply {
        switch r.op {
        case .probe: return .payload(probe())
        case .has_source: return .payload(try hasSource(r.payload))
        case .upload_source:
            wrote = true
            return .payload(try uploadSource(r.payload, reader))
        case .upload_tree:
            wrote = true
            return .payload(try uploadTree(r.payload, reader))
        case .submit:
            wrote = true
            return .payload(try submit(r.payload))
        case .status: return .payload(try status(r.payload))
        case .tail: return .payload(try tail(r.payload))
        case .cancel: return .payload(try cancel(r.payload))
        case .fetch: return try fetch(r.payload)
        case .reserve:
            wrote = true
            return .payload(try reserve(r.payload))
        case .renew: return .payload(try renew(r.payload))
        case .release: return .payload(try release(r.payload))
        case .jobs: return .payload(try listJobs(r.payload))
        case .affinity: return .payload(try affinity(r.payload))
        case .fetch_blobs: return try fetchBlobs(r.payload)
        }
    }

    func probe() -> JSONObject {
        let caps = Capabilities.document(provider)
        var st = statvfs()
        let free: Int64 = statvfs(store.root, &st) == 0 ? Int64(UInt64(st.f_bavail) * UInt64(st.f_frsize)) : 0
        return JSONObject([
            ("rch_xcode_lane_version", .string(LaneProtocol.laneVersion)),
            ("protocol_min", .int(Int64(config.protocolMin))), ("protocol_max", .int(Int64(config.protocolMax))),
            ("features", .array(config.features.map { .string($0) })),
            ("capabilities", (try? JSONParser().parse(caps)) ?? .null),
            ("capabilities_sha256", .string(SHA256Digest.of(caps).hex)),
            (
                "status",
                .obj([
                    "disk_free_bytes": .int(free), "active_jobs": .int(Int64(WorkerJobs(store: store).activeCount())),
                ])
            ),
        ])
    }

    // MARK: payload helpers

    static func digest(_ p: JSONObject, _ key: String) throws -> SHA256Digest {
        guard let s = p[key]?.stringValue else {
            throw RPCError.invalid("payload.\(key) is required (64 lowercase hex characters)")
        }
        guard let d = SHA256Digest(hex: s) else {
            throw RPCError.invalid("payload.\(key) must be 64 lowercase hex characters", data: ["field": .string(key)])
        }
        return d
    }

    static func id(_ p: JSONObject, _ key: String, _ kind: Identifier.Kind) throws -> String {
        guard let s = p[key]?.stringValue else { throw RPCError.invalid("payload.\(key) is required") }
        guard Identifier.isValid(s, kind) else {
            throw RPCError.invalid(IdentifierError(kind: kind, value: String(s.prefix(80))).description)
        }
        return s
    }

    static func only(_ p: JSONObject, _ allowed: Set<String>, op: String) throws {
        for k in p.keys where !allowed.contains(k) {
            throw RPCError.invalid("\(op): unknown payload member '\(k.prefix(64))'")
        }
    }
}

/// The reply when the worker cannot even start (bad config, unusable store).
public func RPCReplyForStartupFailure(message: String) -> [UInt8] {
    RPCResponse.failure(
        RPCError(.internalError, "the worker cannot start: \(message)"), requestID: nil,
        protocolVersion: LaneProtocol.maxVersion)
}
