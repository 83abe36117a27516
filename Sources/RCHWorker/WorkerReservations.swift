import RCHCore
import RCHProtocol
import RCHStore

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Slot reservations (`reserve` / `renew` / `release`, feature `lease`): a multi-step run holds one of
/// the worker's `max_concurrent_jobs` slots from its first step to its last, so another host's job cannot
/// slip in between build and test.
///
/// Rules: `work/reservations/<lease_id>.json` = `{lease_id, run_id, expires_at_ms}`, replaced atomically on
/// renew. A reservation counts as one used slot while unexpired; a job submitted with its `lease_id` uses
/// that slot (its active marker names the lease and is not counted again). Reservations are created and
/// counted under the same `locks/slots.lock` as submits. An expired reservation frees its slot at once
/// (it is removed when next seen); `renew` or a submit with it then answers `LEASE_EXPIRED`.
struct WorkerReservations {
    let store: LocalStore
    var directory: String { store.root + "/work/reservations" }

    struct Reservation {
        var id: String
        var runID: String
        var expiresAtMs: Int64
    }

    func path(_ id: String) -> String { directory + "/" + id + ".json" }

    func write(_ r: Reservation) throws {
        try Syscalls.makeDirectories(directory)
        let doc = JSONValue.obj([
            "lease_id": .string(r.id), "run_id": .string(r.runID), "expires_at_ms": .int(r.expiresAtMs),
        ])
        _ = try DurableFile.write(doc.canonicalBytes, to: path(r.id), replace: true, durable: false)
    }

    func read(_ id: String) -> Reservation? {
        guard Identifier.isValid(id, .jobID), let v = try? JSONParser().parse(DurableFile.read(path(id))),
            let run = v["run_id"]?.stringValue, let exp = v["expires_at_ms"]?.intValue
        else { return nil }
        return Reservation(id: id, runID: run, expiresAtMs: exp)
    }

    /// Unexpired reservations; expired ones are removed.
    func active(nowMs: Int64 = Timestamp.nowNanos() / 1_000_000) -> [Reservation] {
        var out: [Reservation] = []
        for name in (try? Directory.list(directory)) ?? [] where name.hasSuffix(".json") {
            let id = String(name.dropLast(5))
            guard let r = read(id) else { continue }
            if r.expiresAtMs > nowMs { out.append(r) } else { unlink(path(id)) }
        }
        return out
    }

    func valid(_ id: String, nowMs: Int64 = Timestamp.nowNanos() / 1_000_000) -> Bool {
        guard let r = read(id) else { return false }
        return r.expiresAtMs > nowMs
    }

    static func expired(_ id: String) -> RPCError {
        RPCError(
            .leaseExpired, "lease \(id) has expired or was released; its slot is free again — reserve a new one",
            data: ["lease_id": .string(id)])
    }
}

extension WorkerServer {
    static let maxLeaseSeconds: Int64 = 3600

    func leaseTTL(_ p: JSONObject) throws -> Int64 {
        guard let v = p["ttl_seconds"] else { return 120 }
        guard let n = v.intValue, (1...Self.maxLeaseSeconds).contains(n) else {
            throw RPCError.invalid("payload.ttl_seconds must be an integer in 1...\(Self.maxLeaseSeconds)")
        }
        return n
    }

    /// `reserve {run_id, ttl_seconds?}` → `{lease_id, expires_at_ms, ttl_seconds}`, or BUSY without a free slot.
    /// A run that still holds an active reservation (a resumed run whose host died) gets that one back,
    /// renewed: the slot belongs to the run, not to the host process.
    func reserve(_ p: JSONObject) throws -> JSONObject {
        try Self.only(p, ["run_id", "ttl_seconds"], op: "reserve")
        let runID = try Self.id(p, "run_id", .runID)
        let ttl = try leaseTTL(p)
        let reservations = WorkerReservations(store: store)
        var lease = Identifier.generate()
        let expires = Timestamp.nowNanos() / 1_000_000 + ttl * 1000
        try FileLock.with(store, name: "slots") {
            let held = reservations.active()
            if let own = held.first(where: { $0.runID == runID }) {
                lease = own.id
                try reservations.write(.init(id: own.id, runID: runID, expiresAtMs: expires))
                return
            }
            let used = held.count + jobs.activeCount(ignoringLeases: Set(held.map(\.id)))
            guard used < config.maxConcurrentJobs else {
                throw RPCError(
                    .busy, "\(used) slot(s) in use (max_concurrent_jobs \(config.maxConcurrentJobs)); retry later",
                    data: ["retry_after_seconds": .int(5), "active_jobs": .int(Int64(used))])
            }
            try reservations.write(.init(id: lease, runID: runID, expiresAtMs: expires))
        }
        return [
            "lease_id": .string(lease), "run_id": .string(runID), "expires_at_ms": .int(expires),
            "ttl_seconds": .int(ttl),
        ]
    }

    /// `renew {lease_id, ttl_seconds?}` → `{lease_id, expires_at_ms}`; an expired lease → LEASE_EXPIRED.
    func renew(_ p: JSONObject) throws -> JSONObject {
        try Self.only(p, ["lease_id", "ttl_seconds"], op: "renew")
        let id = try Self.id(p, "lease_id", .jobID)
        let ttl = try leaseTTL(p)
        let reservations = WorkerReservations(store: store)
        return try FileLock.with(store, name: "slots") {
            guard var r = reservations.read(id), r.expiresAtMs > Timestamp.nowNanos() / 1_000_000 else {
                unlink(reservations.path(id))
                throw WorkerReservations.expired(id)
            }
            r.expiresAtMs = Timestamp.nowNanos() / 1_000_000 + ttl * 1000
            try reservations.write(r)
            return ["lease_id": .string(id), "expires_at_ms": .int(r.expiresAtMs)]
        }
    }

    /// `release {lease_id}` → `{released}` (idempotent).
    func release(_ p: JSONObject) throws -> JSONObject {
        try Self.only(p, ["lease_id"], op: "release")
        let id = try Self.id(p, "lease_id", .jobID)
        let path = WorkerReservations(store: store).path(id)
        let existed = access(path, F_OK) == 0
        unlink(path)
        return ["lease_id": .string(id), "released": .bool(existed)]
    }
}
