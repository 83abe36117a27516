import RCHCore

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// A cached successful result: `results/<namespace>/<ab>/<job_key>.json` (`rch-xcode/result_entry@1`)
/// plus one blob per artifact file.
///
/// Read strictly: every member must be present and typed as we write it; `backend` is
/// `{name, version, executor_class}` (who produced the files); `artifact_profile` must be the profile the
/// entry's own file list satisfies — an entry whose recorded profile disagrees with its files is
/// corrupt (an edited entry can never serve a richer profile than its files give).
public struct ResultEntry: Sendable, Equatable {
    public static let schemaID = "rch-xcode/result_entry@1"
    public var namespace: String
    public var jobKey: SHA256Digest
    public var action: String
    public var profile: ArtifactProfile
    public var jobID: String
    public var runID: String
    public var sourceSHA256: SHA256Digest
    public var producer: Producer
    public var createdAt: String
    public var entries: [ArtifactManifest.Entry]
    /// Set when the entry was pulled from the shared tier: who published it there (PLAN §18).
    public var origin: Origin?

    public struct Origin: Sendable, Equatable {
        public var publisherName: String
        public var publisherFingerprint: String

        public init(publisherName: String, publisherFingerprint: String) {
            self.publisherName = publisherName
            self.publisherFingerprint = publisherFingerprint
        }

        public var json: JSONValue {
            .obj([
                "tier": .string("shared"),
                "publisher": .obj(["name": .string(publisherName), "fingerprint": .string(publisherFingerprint)]),
            ])
        }

        /// Exactly `{tier: "shared", publisher: {name, fingerprint (64 hex)}}`.
        public init?(json v: JSONValue) {
            guard let o = v.objectValue, Set(o.keys) == ["tier", "publisher"], o["tier"]?.stringValue == "shared",
                let p = o["publisher"]?.objectValue, Set(p.keys) == ["name", "fingerprint"],
                let name = p["name"]?.stringValue, let fp = p["fingerprint"]?.stringValue, SHA256Digest(hex: fp) != nil
            else { return nil }
            self.init(publisherName: name, publisherFingerprint: fp)
        }
    }

    public var json: JSONValue {
        var o: JSONObject = [
            "schema_version": .int(1), "schema_id": .string(Self.schemaID), "created_at": .string(createdAt),
            "namespace": .string(namespace), "job_key": .string(jobKey.hex), "action": .string(action),
            "artifact_profile": .string(profile.rawValue), "job_id": .string(jobID), "run_id": .string(runID),
            "source_sha256": .string(sourceSHA256.hex), "backend": producer.json,
            "entries": ArtifactManifest.entriesJSON(entries),
            "artifact_root_sha256": .string(ArtifactManifest.rootDigest(entries).hex),
        ]
        if let origin { o["origin"] = origin.json }
        return .object(o)
    }

    /// Parses an entry strictly (see the type's rules).
    public static func parse(_ bytes: [UInt8]) throws -> ResultEntry {
        try ResultEntry(json: try JSONParser().parse(bytes))
    }

    init(
        namespace: String, jobKey: SHA256Digest, action: String, profile: ArtifactProfile, jobID: String, runID: String,
        sourceSHA256: SHA256Digest, producer: Producer, createdAt: String, entries: [ArtifactManifest.Entry]
    ) {
        self.namespace = namespace
        self.jobKey = jobKey
        self.action = action
        self.profile = profile
        self.jobID = jobID
        self.runID = runID
        self.sourceSHA256 = sourceSHA256
        self.producer = producer
        self.createdAt = createdAt
        self.entries = entries
    }

    public init(json v: JSONValue) throws {
        guard let items = v["entries"]?.arrayValue else { throw StoreError.corrupt("result entry: missing fields") }
        var entries: [ArtifactManifest.Entry] = []
        entries.reserveCapacity(items.count)
        for i in items {
            guard let p = i["path"]?.stringValue, let t = i["type"]?.stringValue, let size = i["size"]?.intValue,
                t == "file" || t == "directory"
            else {
                throw StoreError.corrupt("result entry: malformed entry")
            }
            let sha = i["sha256"]?.stringValue.flatMap { SHA256Digest(hex: $0) }
            entries.append(.init(path: p, isDirectory: t == "directory", size: UInt64(max(0, size)), sha256: sha))
        }
        try self.init(json: v, entries: entries, entriesRoot: ArtifactManifest.rootDigest(entries))
    }

    /// The rules of an entry, with its `entries` already read (`entriesRoot`: SHA-256 of their JCS bytes);
    /// the `entries` member of `v` itself is not read again.
    init(json v: JSONValue, entries: [ArtifactManifest.Entry], entriesRoot: SHA256Digest) throws {
        func bad(_ m: String) -> StoreError { .corrupt("result entry: \(m)") }
        let members: Set<String> = [
            "schema_version", "schema_id", "created_at", "namespace", "job_key", "action", "artifact_profile", "job_id",
            "run_id", "source_sha256", "backend", "entries", "artifact_root_sha256", "origin",
        ]
        if let k = v.objectValue?.keys.first(where: { !members.contains($0) }) { throw bad("unknown member '\(k)'") }
        guard v["schema_id"]?.stringValue == Self.schemaID, let ns = v["namespace"]?.stringValue,
            Identifier.isValid(ns, .namespace),
            let key = v["job_key"]?.stringValue.flatMap({ SHA256Digest(hex: $0) }),
            let action = v["action"]?.stringValue,
            action == "build" || action == "test",
            let profile = v["artifact_profile"]?.stringValue.flatMap(ArtifactProfile.init(rawValue:)),
            let job = v["job_id"]?.stringValue, let run = v["run_id"]?.stringValue,
            let src = v["source_sha256"]?.stringValue.flatMap({ SHA256Digest(hex: $0) }),
            v["entries"]?.arrayValue != nil,
            let root = v["artifact_root_sha256"]?.stringValue, let created = v["created_at"]?.stringValue
        else { throw bad("missing fields") }
        guard let b = v["backend"]?.objectValue, Set(b.keys) == ["name", "version", "executor_class"],
            let name = b["name"]?.stringValue, let version = b["version"]?.stringValue,
            let cls = b["executor_class"]?.stringValue, Producer.classes.contains(cls)
        else {
            throw bad("backend must be {name, version, executor_class (recording|xcodebuild)}")
        }
        for e in entries {
            guard PathRulesLite.check(e.path) else { throw bad("unsafe path '\(e.path)'") }
            guard e.isDirectory == (e.sha256 == nil) else { throw bad("entry '\(e.path)' type and digest disagree") }
        }
        guard entriesRoot.hex == root else { throw bad("artifact_root_sha256 does not match") }
        guard case .success(let derived) = ArtifactProfile.satisfied(by: entries, action: action), derived == profile
        else {
            throw bad("artifact_profile \(profile.rawValue) is not the profile its files satisfy")
        }
        self.init(
            namespace: ns, jobKey: key, action: action, profile: profile, jobID: job, runID: run, sourceSHA256: src,
            producer: Producer(executorClass: cls, backend: name, backendVersion: version), createdAt: created,
            entries: entries)
        if let o = v["origin"] {
            guard let origin = Origin(json: o) else {
                throw bad("origin must be {tier: shared, publisher: {name, fingerprint}}")
            }
            self.origin = origin
        }
    }
}

/// Relative artifact paths: no empty, `.` or `..` components, not absolute.
enum PathRulesLite {
    /// Not empty, not absolute, no empty, `.` or `..` component (one pass over the bytes).
    static func check(_ p: String) -> Bool {
        var component = 0  // bytes of the current component, or -1 once it is not all dots
        var dots = 0
        for b in p.utf8 {
            if b == UInt8(ascii: "/") {
                if component == 0 || (component > 0 && dots == component && dots <= 2) { return false }
                component = 0
                dots = 0
            } else {
                component += 1
                if b == UInt8(ascii: ".") { dots += 1 }
            }
        }
        return !(component == 0 || (dots == component && dots <= 2))
    }
}

/// The profile-aware result cache.
///
/// Invariants: only `status=success` results are recorded; an entry's profile is computed from its files;
/// a lookup hits only if the entry is of the requesting worker's executor class, its profile ≥ the
/// requested one **and** every blob it references exists;
/// an entry is replaced only by a strictly richer one (under a per-key lock); served bytes are verified.
public struct ResultStore: Sendable {
    public let store: LocalStore

    public init(store: LocalStore) { self.store = store }

    public func entryPath(namespace: String, jobKey: SHA256Digest) -> String {
        store.resultsDirectory + "/" + namespace + "/" + String(jobKey.hex.prefix(2)) + "/" + jobKey.hex + ".json"
    }

    public func entry(namespace: String, jobKey: SHA256Digest) throws -> ResultEntry? {
        guard let bytes = try? DurableFile.read(entryPath(namespace: namespace, jobKey: jobKey)) else { return nil }
        return try CanonicalEntries.readEntry(bytes)
    }

    public struct RecordResult: Sendable {
        public var profile: ArtifactProfile
        /// False when an entry at least as rich was already there (it is kept).
        public var stored: Bool
        public var newBlobs: Int
        public var fileCount: Int
    }

    /// Records a finished job's artifact directory, produced by `producer`.
    public func record(_ dir: String, jobKey: SHA256Digest, namespace: String, producer: Producer) throws
        -> RecordResult
    {
        guard Producer.classes.contains(producer.executorClass) else {
            throw StoreError.invalid("executor class must be recording or xcodebuild, not '\(producer.executorClass)'")
        }
        guard Identifier.isValid(namespace, .namespace) else {
            throw StoreError.invalid(IdentifierError(kind: .namespace, value: namespace).description)
        }
        let summary = try readJSON(dir + "/summary.json", "summary.json")
        guard let status = summary["status"]?.stringValue else {
            throw StoreError.notCacheable("summary.json has no status")
        }
        guard status == "success" else {
            throw StoreError.notCacheable("status is \(status); only successful results are cached")
        }
        let job = try readJSON(dir + "/job.json", "job.json")
        for (name, doc) in [("summary.json", summary), ("job.json", job)] {
            if let k = doc["job_key"]?.stringValue, k != jobKey.hex {
                throw StoreError.invalid("\(name) says job_key \(k), not \(jobKey.hex)")
            }
        }
        guard let action = job["action"]?.stringValue, action == "build" || action == "test" else {
            throw StoreError.notCacheable("job.json has no action build|test")
        }
        guard let source = job["job_key_inputs"]?["source_sha256"]?.stringValue.flatMap({ SHA256Digest(hex: $0) })
        else {
            throw StoreError.notCacheable("job.json has no job_key_inputs.source_sha256")
        }
        let jobID = try Identifier.validate(summary["job_id"]?.stringValue ?? job["job_id"]?.stringValue ?? "", .jobID)
        let runID = try Identifier.validate(summary["run_id"]?.stringValue ?? job["run_id"]?.stringValue ?? "", .runID)

        let listing = try ArtifactManifest.walk(dir)
        let batch = try BlobBatch(blobs: store.blobs)
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 1 << 20, alignment: 16)
        defer { buffer.deallocate() }
        var entries: [ArtifactManifest.Entry] = []
        for item in listing {
            if item.isDirectory {
                entries.append(.init(path: item.path, isDirectory: true, size: 0, sha256: nil))
                continue
            }
            let staged = try batch.stream()
            let size = try copyInto(staged, from: dir + "/" + item.path, buffer: buffer)
            entries.append(.init(path: item.path, isDirectory: false, size: size, sha256: try staged.finish()))
        }
        let profile: ArtifactProfile
        switch ArtifactProfile.satisfied(by: entries, action: action) {
        case .success(let p): profile = p
        case .failure(let e): throw e
        }
        let entry = ResultEntry(
            namespace: namespace, jobKey: jobKey, action: action, profile: profile, jobID: jobID, runID: runID,
            sourceSHA256: source, producer: producer, createdAt: Timestamp.now(), entries: entries)
        return try publish(entry, batch: batch)
    }

    /// Publishes `entry` once the blobs staged in `batch` (and any it names that the store already has) are
    /// committed: under the entry's lock, an existing entry of the same class at least as rich and complete
    /// is kept (the batch is dropped); otherwise the batch is committed and the entry written after
    /// re-checking, under the shared store lock, that every blob exists. Used by `record` and by the shared
    /// tier's pull (which stages downloaded, verified blobs).
    public func publish(_ entry: ResultEntry, batch: BlobBatch) throws -> RecordResult {
        let namespace = entry.namespace
        let jobKey = entry.jobKey
        let producer = entry.producer
        return try FileLock.with(store, name: "result-\(namespace)-\(jobKey.hex)") {
            // An entry of another executor class is replaced: only the current class can ever be served.
            if let existing = try? self.entry(namespace: namespace, jobKey: jobKey),
                existing.producer.executorClass == producer.executorClass,
                existing.profile >= entry.profile,
                store.blobs.missing(existing.entries.compactMap(\.sha256)).isEmpty
            {
                batch.discard()
                return RecordResult(
                    profile: existing.profile, stored: false, newBlobs: 0, fileCount: existing.entries.count)
            }
            try batch.commit()
            let path = entryPath(namespace: namespace, jobKey: jobKey)
            try Syscalls.makeDirectories(directoryOf(path))
            try StoreLock.shared(store) {
                if let gone = store.blobs.missing(entry.entries.compactMap(\.sha256)).first {
                    throw StoreError.retry("blob \(gone.hex) was removed by a concurrent gc")
                }
                _ = try DurableFile.write(entry.json.canonicalBytes + [10], to: path, replace: true)
            }
            return RecordResult(
                profile: entry.profile, stored: true, newBlobs: batch.newBlobs, fileCount: entry.entries.count)
        }
    }

    public enum Lookup: Sendable, Equatable {
        case hit(ResultEntry)
        case miss(String)
    }

    /// Hit only for a complete entry of `executorClass` whose profile satisfies `profile`; a miss says
    /// why. Counted in stats.
    public func lookup(jobKey: SHA256Digest, namespace: String, profile: ArtifactProfile, executorClass: String)
        -> Lookup
    {
        let r = uncountedLookup(jobKey: jobKey, namespace: namespace, profile: profile, executorClass: executorClass)
        if case .hit = r { StoreCounters.add(store, resultHits: 1) } else { StoreCounters.add(store, resultMisses: 1) }
        return r
    }

    /// The same answer as ``lookup(jobKey:namespace:profile:executorClass:)``, not counted (fleet selection asks
    /// before any job exists).
    public func uncountedLookup(
        jobKey: SHA256Digest, namespace: String, profile: ArtifactProfile, executorClass: String
    )
        -> Lookup
    {
        let found = candidate(jobKey: jobKey, namespace: namespace, profile: profile, executorClass: executorClass)
        guard case .hit(let entry) = found else { return found }
        if let why = incomplete(entry, missing: store.blobs.firstMissing(entry.entries.compactMap(\.sha256))) {
            return .miss(why)
        }
        Usage.touch(entryPath(namespace: namespace, jobKey: jobKey))
        return .hit(entry)
    }

    /// Every rule of a hit but the blobs' presence (the caller checks it: ``incomplete(_:missing:)``); no
    /// last-use update.
    func candidate(jobKey: SHA256Digest, namespace: String, profile: ArtifactProfile, executorClass: String)
        -> Lookup
    {
        guard Identifier.isValid(namespace, .namespace) else { return .miss("invalid cache.namespace '\(namespace)'") }
        let entry: ResultEntry?
        do { entry = try self.entry(namespace: namespace, jobKey: jobKey) } catch {
            return .miss("entry is unreadable: \(error)")
        }
        guard let entry else { return .miss("no cached result for job_key \(jobKey.hex) in namespace \(namespace)") }
        guard entry.producer.executorClass == executorClass else {
            return .miss(
                "the cached result was produced by the \(entry.producer.executorClass) executor; this worker runs \(executorClass)"
            )
        }
        guard entry.profile >= profile else {
            return .miss("cached profile \(entry.profile.rawValue) does not satisfy requested \(profile.rawValue)")
        }
        return .hit(entry)
    }

    /// The miss reason when `missing` (a blob of `entry` found absent) is set.
    func incomplete(_ entry: ResultEntry, missing: SHA256Digest?) -> String? {
        guard let gone = missing else { return nil }
        let path = entry.entries.first { $0.sha256 == gone }?.path ?? "?"
        return "blob \(gone.hex) for '\(path)' is missing (incomplete entry)"
    }

    func readJSON(_ path: String, _ name: String) throws -> JSONValue {
        guard let bytes = try? DurableFile.read(path) else { throw StoreError.notCacheable("\(name) is missing") }
        do { return try JSONParser().parse(bytes) } catch {
            throw StoreError.notCacheable("\(name) is not valid JSON: \(error)")
        }
    }

    func copyInto(_ staged: StagedBlob, from path: String, buffer: UnsafeMutableRawBufferPointer) throws -> UInt64 {
        let fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)
        if fd < 0 { throw StoreError.invalid("cannot read '\(path)'") }
        defer { close(fd) }
        var total: UInt64 = 0
        while true {
            let n = read(fd, buffer.baseAddress, buffer.count)
            if n < 0 {
                if errno == EINTR { continue }
                throw StoreError.invalid("cannot read '\(path)'")
            }
            if n == 0 { return total }
            try staged.write(UnsafeRawBufferPointer(rebasing: buffer[0..<n]))
            total += UInt64(n)
        }
    }
}
