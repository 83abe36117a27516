import Foundation
import RCHCore
import RCHProtocol
import RCHStore

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Host-side failures of negotiation (failure kind WORKER_INCOMPATIBLE, exit 91).
public enum NegotiationError: LaneError, Equatable {
    case noCommonVersion(worker: ClosedRange<Int>, host: ClosedRange<Int>)
    case featureMissing(String)

    public var failureKind: FailureKind { .workerIncompatible }
    public var failureSubkind: String? {
        switch self {
        case .noCommonVersion: "PROTOCOL_RANGE"
        case .featureMissing: "FEATURE_MISSING"
        }
    }
    public var description: String {
        switch self {
        case .noCommonVersion(let w, let h):
            "the worker speaks protocol \(w.lowerBound)...\(w.upperBound), this host \(h.lowerBound)...\(h.upperBound): no common version (upgrade one side)"
        case .featureMissing(let f): "the worker lacks the required feature '\(f)' (upgrade the worker)"
        }
    }
}

/// A client of one worker: negotiates once per run (or reuses a fresh cached probe), then performs ops
/// with the negotiated `protocol_version`, counting round trips and bytes.
///
/// Probe cache: `<host store>/workers/<name>/probe.json` — the probe reply and when it was taken (ms); used
/// while younger than the worker's `probe_ttl_seconds`. A worker that later answers
/// UNSUPPORTED_PROTOCOL invalidates it (one re-probe, one retry).
public final class WorkerClient {
    public let worker: WorkerEntry
    public let hostStore: LocalStore
    public let counter = WireCounter()
    var transport: ProcessTransport
    var muxDirectory: String?
    public private(set) var protocolVersion: Int?
    public private(set) var probeReply: JSONObject?
    /// "fresh" or "cached" (recorded in worker_selection-style reports).
    public private(set) var probeSource = "fresh"
    public private(set) var probeAgeSeconds: Int64 = 0

    /// Ends the multiplexed SSH master connection (`ssh -O exit`), if one is running.
    /// Writes every request/reply header line into `directory` (see ``ProcessTransport/trace``).
    public func trace(into directory: String) {
        try? Syscalls.makeDirectories(directory)
        transport.trace = directory
    }

    public func closeConnection() {
        transport.dropStarted()
        if let muxDirectory { worker.closeMaster(mux: muxDirectory) }
    }

    /// Starts the next exchange's process now, so that its start-up (with SSH: the session, the login
    /// shell, the worker's own) overlaps the caller's work before its next request; best effort.
    public func prestartNextExchange() { try? transport.prestart() }

    /// Where control sockets live: `$TMPDIR/rch-ssh-<uid>`, a directory only this user can enter.
    public static var muxDirectoryPath: String { NSTemporaryDirectory() + "/rch-ssh-\(getuid())" }

    public init(worker: WorkerEntry, hostStore: LocalStore) throws {
        self.worker = worker
        self.hostStore = hostStore
        muxDirectory = nil
        var mux: String? = nil
        if worker.transport == "ssh" {
            let dir = Self.muxDirectoryPath
            mkdir(dir, 0o700)
            var st = stat()
            if lstat(dir, &st) == 0, st.st_uid == getuid(), (st.st_mode & S_IFMT) == S_IFDIR, st.st_mode & 0o077 == 0 {
                mux = dir
            }
        }
        muxDirectory = mux
        transport = ProcessTransport(argv: try worker.rpcArgv(mux: mux), counter: counter)
    }

    /// Changes the ssh connect timeout for later exchanges (`[timeouts] connect_seconds`).
    public func setConnectTimeout(seconds: Int64) throws {
        var w = worker
        w.connectTimeoutSeconds = max(1, seconds)
        let trace = transport.trace
        transport = ProcessTransport(argv: try w.rpcArgv(mux: muxDirectory), counter: counter)
        transport.trace = trace
    }

    /// `<host store>/workers/<name>`: the probe cache and the last probe failure of this worker.
    public var stateDirectory: String {
        let safe = Identifier.isValid(worker.name, .namespace) ? worker.name : SHA256Digest.of(worker.name.utf8).hex
        return hostStore.root + "/workers/" + safe
    }

    // MARK: negotiation

    /// Probes (or loads a fresh cached probe) and picks the highest common version.
    @discardableResult
    public func negotiate(required: [String] = LaneProtocol.requiredFeatures, forceProbe: Bool = false) throws
        -> JSONObject
    {
        let cachePath = stateDirectory + "/probe.json"
        var reply: JSONObject? = nil
        if !forceProbe, let bytes = try? DurableFile.read(cachePath), let v = try? JSONParser().parse(bytes),
            let at = v["probed_at_ms"]?.intValue, let p = v["probe"]?.objectValue
        {
            let age = (Timestamp.nowNanos() / 1_000_000 - at) / 1000
            if age >= 0 && age < worker.probeTTLSeconds {
                reply = p
                probeSource = "cached"
                probeAgeSeconds = age
            }
        }
        if reply == nil {
            // The last failure is remembered for `rch-xcode workers` (reachability), cleared by a success.
            let failurePath = stateDirectory + "/probe_failure.json"
            do { reply = try call(.probe, [:], version: 0) } catch {
                try? Syscalls.makeDirectories(stateDirectory)
                _ = try? DurableFile.write(
                    JSONValue.obj([
                        "failed_at_ms": .int(Timestamp.nowNanos() / 1_000_000), "error": .string("\(error)"),
                    ]).canonicalBytes, to: failurePath, replace: true, durable: false)
                throw error
            }
            unlink(failurePath)
            probeSource = "fresh"
            probeAgeSeconds = 0
            try? Syscalls.makeDirectories(stateDirectory)
            _ = try? DurableFile.write(
                JSONValue.obj(["probed_at_ms": .int(Timestamp.nowNanos() / 1_000_000), "probe": .object(reply!)])
                    .canonicalBytes,
                to: cachePath, durable: false)
        }
        let p = reply!
        guard let lo = p["protocol_min"]?.intValue, let hi = p["protocol_max"]?.intValue, lo <= hi else {
            throw TransportError("the worker's probe reply has no protocol range")
        }
        guard let v = LaneProtocol.negotiate(workerMin: Int(lo), workerMax: Int(hi)) else {
            throw NegotiationError.noCommonVersion(
                worker: Int(lo)...Int(hi), host: LaneProtocol.minVersion...LaneProtocol.maxVersion)
        }
        let features = Set((p["features"]?.arrayValue ?? []).compactMap(\.stringValue))
        if let f = required.first(where: { !features.contains($0) }) { throw NegotiationError.featureMissing(f) }
        protocolVersion = v
        probeReply = p
        return p
    }

    public var features: Set<String> { Set((probeReply?["features"]?.arrayValue ?? []).compactMap(\.stringValue)) }
    public var capabilities: JSONValue? { probeReply?["capabilities"] }
    public func has(_ feature: String) -> Bool { features.contains(feature) }

    func forgetProbe() { unlink(stateDirectory + "/probe.json") }

    /// Drops the cached probe and probes again (after the worker said its toolchain changed).
    @discardableResult
    public func reprobe() throws -> JSONObject {
        forgetProbe()
        return try negotiate(forceProbe: true)
    }

    // MARK: calls

    /// One exchange; error replies become ``RPCError``.
    func call(
        _ op: LaneProtocol.Op, _ payload: JSONObject, version: Int? = nil, body: (path: String, length: UInt64)? = nil
    ) throws -> JSONObject {
        let v =
            try version ?? protocolVersion
            ?? {
                try negotiate()
                return protocolVersion!
            }()
        let request = RPCRequest(protocolVersion: v, op: op, payload: payload)
        Activity.shared.detail("rpc \(op.rawValue) to worker \(worker.name) (protocol \(v))")
        let reply = try transport.exchange(header: request.headerLine, body: body)
        do { return try Self.unwrap(reply.header, requestID: request.requestID) } catch let e as RPCError
            where e.code == .unsupportedProtocol && version == nil && probeSource == "cached"
        {
            forgetProbe()
            try negotiate(forceProbe: true)
            return try call(op, payload, body: body)
        }
    }

    static func unwrap(_ h: JSONValue, requestID: String) throws -> JSONObject {
        guard h["request_id"]?.stringValue == requestID || h["ok"]?.boolValue == false else {
            throw TransportError("the reply answers another request (\(h["request_id"]?.stringValue ?? "none"))")
        }
        if h["ok"]?.boolValue == true {
            guard let p = h["payload"]?.objectValue else { throw TransportError("the reply has no payload") }
            return p
        }
        guard let e = h["error"], let code = e["code"]?.stringValue else {
            throw TransportError("malformed error reply")
        }
        throw RPCError(
            RPCErrorCode(rawValue: code) ?? .internalError, e["message"]?.stringValue ?? code,
            data: e["data"]?.objectValue ?? [:])
    }

    public func hasSources(_ digests: [SHA256Digest]) throws -> [Bool] {
        let p = try call(.has_source, ["source_sha256s": .array(digests.map { .string($0.hex) })])
        guard let a = p["present"]?.arrayValue, a.count == digests.count else {
            throw TransportError("has_source reply does not match the request")
        }
        return a.map { $0.boolValue == true }
    }

    /// `contentSHA256`: the bundle file's digest when the caller just wrote it (else it is hashed here).
    public func uploadSource(_ sha: SHA256Digest, bundle path: String, contentSHA256: SHA256Digest? = nil) throws
        -> JSONObject
    {
        var st = stat()
        let stream =
            if let contentSHA256, stat(path, &st) == 0 {
                StreamDescriptor(contentLength: UInt64(st.st_size), contentSHA256: contentSHA256, compression: .zstd)
            } else {
                try describeFile(path, compression: .zstd)
            }
        return try call(
            .upload_source, ["source_sha256": .string(sha.hex), "stream": stream.json],
            body: (path, stream.contentLength))
    }

    public func uploadTree(_ payload: JSONObject, pack: String?) throws -> JSONObject {
        var p = payload
        var body: (String, UInt64)? = nil
        if let pack {
            let stream = try describeFile(pack, compression: .zstd)
            p["stream"] = stream.json
            body = (pack, stream.contentLength)
        }
        return try call(.upload_tree, p, body: body)
    }

    /// Submits `job.json` (with a run's `lease_id` if it holds one); remembers its job_key and source for
    /// the attestation check of a later fetch.
    public func submit(_ job: JSONValue, leaseID: String? = nil) throws -> JSONObject {
        var payload: JSONObject = ["job": job]
        if let leaseID { payload["lease_id"] = .string(leaseID) }
        let reply = try call(.submit, payload)
        if let id = job["job_id"]?.stringValue,
            let key = job["job_key"]?.stringValue.flatMap({ SHA256Digest(hex: $0) }),
            let src = job["job_key_inputs"]?["source_sha256"]?.stringValue.flatMap({ SHA256Digest(hex: $0) })
        {
            rememberSubmission(jobID: id, jobKey: key, sourceSHA256: src)
        }
        return reply
    }
    /// Reserves a slot for a run (feature `lease`): `{lease_id, expires_at_ms, ttl_seconds}`.
    public func reserve(runID: String, ttlSeconds: Int64) throws -> JSONObject {
        try call(.reserve, ["run_id": .string(runID), "ttl_seconds": .int(ttlSeconds)])
    }
    public func renew(leaseID: String, ttlSeconds: Int64) throws -> JSONObject {
        try call(.renew, ["lease_id": .string(leaseID), "ttl_seconds": .int(ttlSeconds)])
    }
    public func release(leaseID: String) throws -> JSONObject { try call(.release, ["lease_id": .string(leaseID)]) }

    /// Running, queued and recent jobs, newest first (feature `jobs`).
    public func jobs(state: String? = nil, limit: Int = 100) throws -> [JSONValue] {
        var p: JSONObject = ["limit": .int(Int64(limit))]
        if let state { p["state"] = .string(state) }
        return try call(.jobs, p)["jobs"]?.arrayValue ?? []
    }

    /// `affinity` (feature `affinity`): live load and whether the worker holds `source` and results of `jobKeys`.
    public func affinity(source: SHA256Digest?, jobKeys: [SHA256Digest], namespace: String, profile: String) throws
        -> JSONObject
    {
        var p: JSONObject = [
            "job_keys": .array(jobKeys.map { .string($0.hex) }), "namespace": .string(namespace),
            "profile": .string(profile),
        ]
        if let source { p["source_sha256"] = .string(source.hex) }
        return try call(.affinity, p)
    }

    public func status(_ jobID: String) throws -> JSONObject { try call(.status, ["job_id": .string(jobID)]) }
    public func cancel(_ jobID: String) throws -> JSONObject { try call(.cancel, ["job_id": .string(jobID)]) }
    /// `tail`: the log from byte `cursor` and the events from index `eventCursor` (`next_cursor`,
    /// `next_event_cursor` continue them).
    public func tail(_ jobID: String, cursor: Int64, eventCursor: Int64 = 0, maxBytes: Int = 64 << 10) throws
        -> JSONObject
    {
        try call(
            .tail,
            [
                "job_id": .string(jobID), "cursor": .int(cursor), "max_bytes": .int(Int64(maxBytes)),
                "event_cursor": .int(eventCursor),
            ])
    }
}
