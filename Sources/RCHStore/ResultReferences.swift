import RCHCore

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Cache hits served by reference: `work/<job_id>/reference.json` (`rch-xcode/result_reference@1`).
///
/// A worker serves a hit without copying its files: the job's artifacts directory holds only what is
/// new for this job (the rewritten job-scoped JSON records and the three commit files); every other file
/// of its manifest stays a blob and is read from the store, by the manifest's digest and re-hashed, when
/// it is fetched. The reference record names the blobs the job directory stands on.
///
/// Protocol (what keeps those blobs alive):
/// 1. The serve looks the result up and writes the record **under the shared store lock**, so gc's sweep
///    (exclusive) either ran before the lookup — whose hit then proves every blob exists — or sees the
///    record when it re-reads references.
/// 2. The record is written before the artifacts directory is renamed into place and is removed with the
///    job directory (job retention); it is never rewritten. Like the job directory it is not synced: a job
///    directory is disposable, and one damaged by a crash fails its fetch (digests are checked) rather than
///    serving wrong bytes.
/// 3. gc counts every blob of every readable record as referenced (planning), and re-reads, under its
///    exclusive lock, records that appeared since planning before it deletes a blob. A record that does
///    not parse pins nothing (its job directory is broken anyway) and is reported by `fsck`.
public struct ResultReferences: Sendable {
    public let store: LocalStore

    public init(store: LocalStore) { self.store = store }

    public static let schemaID = "rch-xcode/result_reference@1"

    public struct Record: Sendable, Equatable {
        public var jobID: String
        public var namespace: String
        public var jobKey: SHA256Digest
        public var cachedFromJobID: String
        /// Distinct, sorted by hex.
        public var blobs: [SHA256Digest]
    }

    /// The record's `blobs` from an entry's digests (in any order, repeats allowed): distinct and ascending —
    /// DigestKey order is byte order, which is hex order.
    static func blobList(_ digests: some Sequence<SHA256Digest>) -> [SHA256Digest] {
        var keys = digests.map(DigestKey.init)
        keys.sort()
        var out: [SHA256Digest] = []
        out.reserveCapacity(keys.count)
        for (i, k) in keys.enumerated() where i == 0 || keys[i - 1] != k { out.append(k.digest) }
        return out
    }

    /// The jobs' root (`work/`): the worker's job directories.
    public var root: String { store.root + "/work" }

    public func path(_ jobID: String) -> String { root + "/" + jobID + "/reference.json" }

    /// True if `jobID`'s directory was served by reference (a record exists, readable or not).
    public func exists(_ jobID: String) -> Bool { access(path(jobID), F_OK) == 0 }

    func write(_ r: Record) throws {
        try Syscalls.makeDirectories(root + "/" + r.jobID)
        guard try DurableFile.write(Self.canonicalBytes(r), to: path(r.jobID), replace: false, durable: false) else {
            throw StoreError.invalid("job \(r.jobID) already has a reference record; a job directory must be new")
        }
    }

    /// The record's JCS bytes, written directly (a served hit of thousands of files writes thousands of
    /// digests): members in key order, the same bytes as the equivalent `JSONValue`'s (tested).
    static func canonicalBytes(_ r: Record) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(r.blobs.count * 67 + 512)
        out.append(contentsOf: #"{"blobs":["#.utf8)
        for (i, d) in r.blobs.enumerated() {
            out.append(contentsOf: (i == 0 ? "\"" : ",\"").utf8)
            d.appendHex(to: &out)
            out.append(UInt8(ascii: "\""))
        }
        out.append(contentsOf: #"],"cached_from_job_id":"#.utf8)
        JCS.writeString(r.cachedFromJobID, into: &out)
        out.append(contentsOf: #","job_id":"#.utf8)
        JCS.writeString(r.jobID, into: &out)
        out.append(contentsOf: #","job_key":""#.utf8)
        r.jobKey.appendHex(to: &out)
        out.append(contentsOf: #"","namespace":"#.utf8)
        JCS.writeString(r.namespace, into: &out)
        out.append(contentsOf: #","schema_id":"#.utf8)
        JCS.writeString(schemaID, into: &out)
        out.append(contentsOf: #","schema_version":1}"#.utf8)
        return out
    }

    /// Reads a record strictly: exactly the members our writer writes, digests distinct and sorted.
    public func read(_ jobID: String) throws -> Record {
        let p = path(jobID)
        let v: JSONValue
        do { v = try JSONParser().parse(try DurableFile.read(p)) } catch {
            throw StoreError.corrupt("\(p) cannot be read as a reference record: \(error)")
        }
        return try Self.parse(v, jobID: jobID, path: p)
    }

    static func parse(_ v: JSONValue, jobID: String, path p: String) throws -> Record {
        let members: Set<String> = [
            "schema_version", "schema_id", "job_id", "namespace", "job_key", "cached_from_job_id", "blobs",
        ]
        guard case .object(let o) = v, o.count == members.count, Set(o.keys) == members,
            o["schema_version"]?.intValue == 1,
            o["schema_id"]?.stringValue == schemaID, o["job_id"]?.stringValue == jobID,
            let ns = o["namespace"]?.stringValue, Identifier.isValid(ns, .namespace),
            let key = o["job_key"]?.stringValue.flatMap({ SHA256Digest(hex: $0) }),
            let from = o["cached_from_job_id"]?.stringValue, Identifier.isValid(from, .jobID),
            let list = o["blobs"]?.arrayValue
        else { throw StoreError.corrupt("\(p) is not a reference record our writer would produce") }
        var blobs: [SHA256Digest] = []
        blobs.reserveCapacity(list.count)
        var previous = ""
        for item in list {
            guard let hex = item.stringValue, hex > previous, let d = SHA256Digest(hex: hex) else {
                throw StoreError.corrupt("\(p): blobs must be distinct 64-hex digests in ascending order")
            }
            previous = hex
            blobs.append(d)
        }
        return Record(jobID: jobID, namespace: ns, jobKey: key, cachedFromJobID: from, blobs: blobs)
    }

    /// The job ids that have a record (job directories being removed, `.rch-removing-*`, are not listed).
    public func jobIDs() -> [String] {
        ((try? Directory.list(root)) ?? []).filter {
            Identifier.isValid($0, .jobID) && access(path($0), F_OK) == 0
        }
    }
}

extension StoreScan {
    /// One reference record as gc and fsck see it.
    struct ScannedReference {
        var jobID: String
        var blobs: [DigestKey]
        /// Set when the record does not parse (it pins nothing).
        var broken: String?
    }

    /// Every reference record under `work/` (skipping `except`, by job id).
    func references(except known: Set<String> = []) -> [ScannedReference] {
        let refs = ResultReferences(store: store)
        let ids = refs.jobIDs().filter { !known.contains($0) }
        return parallelMap(ids.count) { i in
            do {
                let r = try refs.read(ids[i])
                return ScannedReference(jobID: ids[i], blobs: r.blobs.map(DigestKey.init))
            } catch {
                return ScannedReference(jobID: ids[i], blobs: [], broken: "\(error)")
            }
        }
    }
}
