import RCHCore
import RCHHost
import RCHProtocol

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// The slot a multi-step run reserves on its worker (feature `lease`, PLAN §15): taken before the first
/// step (waiting like a submit while the worker is busy), renewed while the run follows its jobs (every
/// third of the TTL), passed with every submit, released at the end or on cancel. A lease that expired
/// anyway is taken again at the next submit (`LEASE_EXPIRED` → reserve → resubmit).
final class RunLease {
    let client: WorkerClient
    let runID: String
    let ttlSeconds: Int64
    let renew: Bool
    private(set) var id: String?
    private var renewedAt: Int64 = 0

    init(client: WorkerClient, runID: String, ttlSeconds: Int64, renew: Bool) {
        self.client = client
        self.runID = runID
        self.ttlSeconds = ttlSeconds
        self.renew = renew
    }

    /// Reserves, waiting for a slot like a submit does (`wait` is the submit's BUSY loop).
    func acquire(_ wait: (() throws -> JSONObject) throws -> JSONObject) throws {
        let reply = try wait { try self.client.reserve(runID: self.runID, ttlSeconds: self.ttlSeconds) }
        id = reply["lease_id"]?.stringValue
        renewedAt = Timestamp.nowNanos()
    }

    /// Renews when a third of the TTL has passed (best effort; an expired lease is taken again at submit).
    func renewIfDue() {
        guard renew, let id, Timestamp.nowNanos() - renewedAt > ttlSeconds * 1_000_000_000 / 3 else { return }
        do {
            _ = try client.renew(leaseID: id, ttlSeconds: ttlSeconds)
            renewedAt = Timestamp.nowNanos()
        } catch let e as RPCError where e.code == .leaseExpired {
            self.id = nil
        } catch {}
    }

    func release() {
        guard let id else { return }
        _ = try? client.release(leaseID: id)
        self.id = nil
    }
}
