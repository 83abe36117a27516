import Foundation
import RCHCore
import RCHHost
import RCHStore

/// What an operator looks at first (`rch-xcode workers`, `rch-xcode probe --all`): each inventory worker with
/// its tags and priority, its last capability snapshot (age, Xcode, macOS, free slots) and whether the last
/// probe reached it. Without `probe`, nothing goes over the network: the host's cached snapshots are read.
public struct WorkerStatus: Sendable {
    public var entry: WorkerEntry
    public var snapshotAgeSeconds: Int64?
    public var snapshotSource: String?
    public var probe: JSONValue?
    /// The last probe failure, when it is newer than the last snapshot.
    public var unreachable: String?
    public var probeDurationMs: Int64?

    public var reachable: Bool? { unreachable != nil ? false : probe != nil ? true : nil }

    public var json: JSONValue {
        let caps = probe?["capabilities"] ?? .null
        let xcode = caps["xcodes"]?.arrayValue?.first
        let active = probe?["status"]?["active_jobs"]?.intValue
        let capacity = caps["capacity"]?["max_concurrent_jobs"]?.intValue
        return .obj([
            "name": .string(entry.name), "host": entry.host.map { .string($0) } ?? .null,
            "transport": .string(entry.transport), "tags": .array(entry.tags.map { .string($0) }),
            "priority": .int(entry.priority), "reachable": reachable.map { .bool($0) } ?? .null,
            "error": unreachable.map { .string($0) } ?? .null,
            "snapshot_source": snapshotSource.map { .string($0) } ?? .null,
            "snapshot_age_seconds": snapshotAgeSeconds.map { .int($0) } ?? .null,
            "probe_duration_ms": probeDurationMs.map { .int($0) } ?? .null,
            "executor": caps["executor"] ?? .null,
            "xcode_version": xcode?["version"] ?? .null, "xcode_build": xcode?["build"] ?? .null,
            "macos_version": caps["macos_version"] ?? .null, "arch": caps["arch"] ?? .null,
            "max_concurrent_jobs": capacity.map { .int($0) } ?? .null,
            "active_jobs": active.map { .int($0) } ?? .null,
            "free_slots": (capacity != nil && active != nil) ? .int(max(0, capacity! - active!)) : .null,
            "identity_error": caps["identity_error"] ?? .null,
        ])
    }

    /// Every inventory worker (the embedded `local` only when the inventory names none). `probe`: probe each
    /// now, in parallel; otherwise read the cached snapshots only.
    public static func collect(inventory: [WorkerEntry], hostStore: LocalStore, probe: Bool) -> [WorkerStatus] {
        let pool = inventory.contains(where: \.fromInventory) ? inventory.filter(\.fromInventory) : inventory
        if probe {
            return Probes.run(pool, hostStore: hostStore, connectSeconds: nil, force: true).map { o in
                var s = cached(o.worker, hostStore: hostStore)
                s.probeDurationMs = o.durationMs
                if let c = o.client {
                    s.probe = .object(c.probeReply ?? [:])
                    s.snapshotSource = "fresh"
                    s.snapshotAgeSeconds = 0
                } else {
                    s.unreachable = o.error
                }
                return s
            }
        }
        return pool.map { cached($0, hostStore: hostStore) }
    }

    /// The worker's cached snapshot and last failure, as the host store holds them.
    static func cached(_ w: WorkerEntry, hostStore: LocalStore) -> WorkerStatus {
        var s = WorkerStatus(entry: w)
        guard let client = try? WorkerClient(worker: w, hostStore: hostStore) else { return s }
        let dir = client.stateDirectory
        let now = Timestamp.nowNanos() / 1_000_000
        var probedAt: Int64 = 0
        if let v = try? JSONParser().parse(try DurableFile.read(dir + "/probe.json")),
            let at = v["probed_at_ms"]?.intValue
        {
            probedAt = at
            s.probe = v["probe"]
            s.snapshotSource = "cached"
            s.snapshotAgeSeconds = max(0, (now - at) / 1000)
        }
        if let v = try? JSONParser().parse(try DurableFile.read(dir + "/probe_failure.json")),
            let at = v["failed_at_ms"]?.intValue, at >= probedAt
        {
            s.unreachable = v["error"]?.stringValue ?? "unreachable"
        }
        return s
    }
}
