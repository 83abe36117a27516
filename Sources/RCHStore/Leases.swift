import RCHCore
import SystemPackage

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// What a lease protects from gc.
public enum LeaseSubject: Sendable, Equatable {
    case source(SHA256Digest)
    case result(namespace: String, jobKey: SHA256Digest)

    var json: JSONValue {
        switch self {
        case .source(let s): .obj(["kind": .string("source"), "source_sha256": .string(s.hex)])
        case .result(let ns, let k):
            .obj(["kind": .string("result"), "namespace": .string(ns), "job_key": .string(k.hex)])
        }
    }

    init?(json v: JSONValue) {
        switch v["kind"]?.stringValue {
        case "source":
            guard let s = v["source_sha256"]?.stringValue.flatMap({ SHA256Digest(hex: $0) }) else { return nil }
            self = .source(s)
        case "result":
            guard let ns = v["namespace"]?.stringValue, Identifier.isValid(ns, .namespace),
                let k = v["job_key"]?.stringValue.flatMap({ SHA256Digest(hex: $0) })
            else { return nil }
            self = .result(namespace: ns, jobKey: k)
        default: return nil
        }
    }
}

/// A time-limited claim by a job on a source or a result (`leases/<lease_id>.json`,
/// `rch-xcode/lease@1`). Leases expire by themselves, so a crashed job never pins anything forever; gc
/// must not delete a subject that has an active lease. A lease records its owner process (pid + start
/// time): once that process is gone the lease is inactive at once, not only at its expiry, so a killed
/// materialisation does not pin its subject for an hour.
public struct Lease: Sendable, Equatable {
    public var id: String
    public var subject: LeaseSubject
    public var jobID: String
    public var createdAtNanos: Int64
    public var expiresAtNanos: Int64
    /// The process holding it (nil in leases written before owners were recorded: expiry only).
    public var owner: ProcessIdentity?

    public func isActive(at now: Int64 = Timestamp.nowNanos()) -> Bool {
        expiresAtNanos > now && (owner?.isAlive ?? true)
    }

    var json: JSONValue {
        .obj([
            "schema_version": .int(1), "schema_id": .string("rch-xcode/lease@1"),
            "created_at": .string(Timestamp.format(nanosSinceEpoch: createdAtNanos)), "lease_id": .string(id),
            "job_id": .string(jobID), "subject": subject.json,
            // Milliseconds: JSON numbers are doubles, exact only up to 2^53 (nanoseconds since 1970 are not).
            "expires_at": .string(Timestamp.format(nanosSinceEpoch: expiresAtNanos)),
            "expires_at_ms": .int(expiresAtNanos / 1_000_000),
            "owner": owner.map { .obj(["pid": .int(Int64($0.pid)), "start": $0.start.map { .string($0) } ?? .null]) }
                ?? .null,
        ])
    }
}

public struct Leases: Sendable {
    public let store: LocalStore

    public init(store: LocalStore) { self.store = store }

    func path(_ id: String) -> String { store.leasesDirectory + "/" + id + ".json" }

    /// Takes a lease for `ttlSeconds` (renew it before it expires if the job runs longer).
    public func acquire(_ subject: LeaseSubject, jobID: String, ttlSeconds: Int64, owner: ProcessIdentity = .current)
        throws -> Lease
    {
        _ = try Identifier.validate(jobID, .jobID)
        let now = Timestamp.nowNanos()
        let lease = Lease(
            id: Identifier.generate(), subject: subject, jobID: jobID, createdAtNanos: now,
            expiresAtNanos: now + ttlSeconds * 1_000_000_000, owner: owner)
        try Syscalls.makeDirectories(store.leasesDirectory)
        try StoreLock.shared(store) {
            _ = try DurableFile.write(lease.json.canonicalBytes, to: path(lease.id), replace: false)
        }
        return lease
    }

    public func renew(_ lease: Lease, ttlSeconds: Int64) throws -> Lease {
        var l = lease
        l.expiresAtNanos = Timestamp.nowNanos() + ttlSeconds * 1_000_000_000
        _ = try DurableFile.write(l.json.canonicalBytes, to: path(l.id), replace: true)
        return l
    }

    public func release(_ lease: Lease) { unlink(path(lease.id)) }

    /// Every readable lease (expired ones included; check ``Lease/isActive(at:)``).
    public func all() -> [Lease] {
        guard let names = try? FileManagerLite.list(store.leasesDirectory) else { return [] }
        return names.compactMap { n -> Lease? in
            guard n.hasSuffix(".json"), let bytes = try? DurableFile.read(store.leasesDirectory + "/" + n),
                let v = try? JSONParser().parse(bytes), let id = v["lease_id"]?.stringValue,
                let job = v["job_id"]?.stringValue,
                let subject = v["subject"].flatMap(LeaseSubject.init(json:)), let exp = v["expires_at_ms"]?.intValue
            else { return nil }
            var owner: ProcessIdentity? = nil
            if let o = v["owner"], let pid = o["pid"]?.intValue, let p = Int32(exactly: pid) {
                owner = ProcessIdentity(pid: p, start: o["start"]?.stringValue)
            }
            return Lease(
                id: id, subject: subject, jobID: job, createdAtNanos: 0, expiresAtNanos: exp * 1_000_000, owner: owner)
        }
    }

    /// Unexpired leases on `subject`.
    public func active(on subject: LeaseSubject) -> [Lease] {
        let now = Timestamp.nowNanos()
        return all().filter { $0.subject == subject && $0.isActive(at: now) }
    }
}

/// `job_id` → `job_key` bindings (`jobs/<job_id>.json`): the same job id can never stand for two keys.
public struct JobRegistry: Sendable {
    public let store: LocalStore

    public init(store: LocalStore) { self.store = store }

    /// Binds `jobID` to `jobKey` (idempotent for the same key); throws ``StoreError/jobIDConflict`` otherwise.
    public func claim(_ jobID: String, jobKey: SHA256Digest) throws {
        _ = try Identifier.validate(jobID, .jobID)
        let path = store.jobsDirectory + "/" + jobID + ".json"
        try Syscalls.makeDirectories(store.jobsDirectory)
        let doc = JSONValue.obj([
            "schema_version": .int(1), "schema_id": .string("rch-xcode/job_record@1"), "job_id": .string(jobID),
            "job_key": .string(jobKey.hex), "created_at": .string(Timestamp.now()),
        ])
        if try DurableFile.write(doc.canonicalBytes, to: path, replace: false) { return }
        guard let existing = try? JSONParser().parse(try DurableFile.read(path))["job_key"]?.stringValue else {
            throw StoreError.corrupt("job record \(path) does not parse")
        }
        if existing != jobKey.hex {
            throw StoreError.jobIDConflict(jobID: jobID, existing: existing, requested: jobKey.hex)
        }
    }

    /// The key a job id is bound to, if any.
    public func key(of jobID: String) -> SHA256Digest? {
        guard Identifier.isValid(jobID, .jobID),
            let bytes = try? DurableFile.read(store.jobsDirectory + "/" + jobID + ".json")
        else { return nil }
        return (try? JSONParser().parse(bytes))?["job_key"]?.stringValue.flatMap { SHA256Digest(hex: $0) }
    }
}

/// The store-wide lock (`locks/store.lock`). Lock order: this lock before any entry lock.
///
/// Shared: held by writers only around "check referenced blobs → publish entry" and by lease creation —
/// short sections. Exclusive: held by gc (and `fsck --repair`) while it re-checks and deletes, so no entry
/// is published and no lease is taken in the middle of a sweep.
public enum StoreLock {
    public static func shared<T>(_ store: LocalStore, _ body: () throws -> T) throws -> T {
        try FileLock.with(store, name: "store", exclusive: false, body)
    }

    public static func exclusive<T>(_ store: LocalStore, _ body: () throws -> T) throws -> T {
        try FileLock.with(store, name: "store", exclusive: true, body)
    }
}

/// An advisory lock held for the duration of a closure (flock on a file under `locks/`).
public struct FileLock {
    public static func with<T>(_ store: LocalStore, name: String, exclusive: Bool = true, _ body: () throws -> T) throws
        -> T
    {
        try locked(store, name, exclusive: exclusive, blocking: true, body)!
    }

    /// Runs `body` under the exclusive lock `name` if nobody holds it; nil (body not run) if somebody does.
    public static func ifFree<T>(_ store: LocalStore, name: String, _ body: () throws -> T) throws -> T? {
        try locked(store, name, exclusive: true, blocking: false, body)
    }

    static func locked<T>(
        _ store: LocalStore, _ name: String, exclusive: Bool, blocking: Bool, _ body: () throws -> T
    ) throws -> T? {
        let dir = store.root + "/locks"
        try Syscalls.makeDirectories(dir)
        let path = dir + "/" + name + ".lock"
        let fd: FileDescriptor
        do {
            fd = try FileDescriptor.open(
                FilePath(path), .readWrite, options: [.create], permissions: [.ownerReadWrite, .groupRead, .otherRead],
                retryOnInterrupt: true)
        } catch { throw SystemError("open", path: path, errno: error) }
        defer { try? fd.close() }
        guard try Syscalls.flock(fd, exclusive: exclusive, blocking: blocking, path: path) else { return nil }
        return try body()
    }
}

/// Directory listing without Foundation (see ``Directory``).
enum FileManagerLite {
    static func list(_ dir: String) throws -> [String] { try Directory.list(dir) }
}
