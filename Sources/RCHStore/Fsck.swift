import Foundation
import RCHCore

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Checks a store: re-hashes every blob (streaming, bounded memory, several threads), checks every entry's
/// manifest digests and references, and reports missing, corrupt and orphaned items. With `repair`, corrupt
/// blobs and broken entries are *moved* to `quarantine/` (never deleted), so later lookups miss instead of
/// failing, and a re-upload can store good copies.
///
/// Consistent beside writers: blobs are listed before entries are read, so a blob an entry names that is
/// absent from the listing is looked up again before it is called missing; repairs take the exclusive store
/// lock (writers publish under the shared one) and re-check every finding on the current files first, so
/// a healthy entry is never quarantined.
public struct Fsck: Sendable {
    public var store: LocalStore
    public var repair = false
    public var threads = min(4, max(1, ProcessInfo.processInfo.activeProcessorCount))

    public init(store: LocalStore) { self.store = store }

    public struct Report: Sendable {
        public var blobsChecked = 0
        public var corruptBlobs: [SHA256Digest] = []
        public var orphanBlobs = 0
        public var entriesChecked = 0
        public var brokenEntries: [(label: String, reason: String)] = []
        /// Job directories served by reference whose record does not parse or names a missing or corrupt
        /// blob (reported, never repaired: the job directory is disposable; its fetch fails, it serves nothing).
        public var brokenReferences: [(jobID: String, reason: String)] = []
        public var referencesChecked = 0
        public var quarantined: [String] = []
        public var clean: Bool { corruptBlobs.isEmpty && brokenEntries.isEmpty && brokenReferences.isEmpty }

        public var json: JSONValue {
            .obj([
                "clean": .bool(clean), "blobs_checked": .int(Int64(blobsChecked)),
                "entries_checked": .int(Int64(entriesChecked)),
                "corrupt_blobs": .array(corruptBlobs.map { .string($0.hex) }), "orphan_blobs": .int(Int64(orphanBlobs)),
                "broken_entries": .array(
                    brokenEntries.map { .obj(["entry": .string($0.label), "reason": .string($0.reason)]) }),
                "quarantined": .array(quarantined.map { .string($0) }),
                "references_checked": .int(Int64(referencesChecked)),
                "broken_references": .array(
                    brokenReferences.map { .obj(["job_id": .string($0.jobID), "reason": .string($0.reason)]) }),
            ])
        }
    }

    public func run() throws -> Report {
        var report = Report()
        let scan = StoreScan(store: store)
        let blobs = scan.blobs()
        report.blobsChecked = blobs.count
        let corrupt = Set(hashAll(blobs.keys))
        report.corruptBlobs = corrupt.map(\.digest).sorted()
        let entries = scan.entries()
        report.entriesChecked = entries.count
        var referenced = Set<DigestKey>()
        var broken: [(ScannedEntry, String)] = []
        for e in entries {
            referenced.formUnion(e.blobs)
            if let why = problem(e, listed: blobs, corrupt: corrupt) { broken.append((e, why)) }
        }
        report.brokenEntries = broken.map { ($0.0.label, $0.1) }
        let references = scan.references()
        report.referencesChecked = references.count
        for r in references {
            referenced.formUnion(r.blobs)
            let refs = ResultReferences(store: store)
            if let why = r.broken {
                if refs.exists(r.jobID) { report.brokenReferences.append((r.jobID, why)) }
            } else if let missing = r.blobs.first(where: { !blobs.contains($0) && !store.blobs.has($0.digest) }) {
                if refs.exists(r.jobID) {
                    report.brokenReferences.append((r.jobID, "blob \(missing.digest.hex) is missing"))
                }
            } else if let bad = r.blobs.first(where: { corrupt.contains($0) }) {
                report.brokenReferences.append((r.jobID, "blob \(bad.digest.hex) is corrupt"))
            }
        }
        report.orphanBlobs = blobs.keys.filter { !referenced.contains($0) }.count
        if repair && (!corrupt.isEmpty || !broken.isEmpty) {
            try StoreLock.exclusive(store) {
                // Writers publish entries under the shared lock: under the exclusive one nothing changes, and
                // every finding is checked again on the current files before anything is moved.
                let q = store.root + "/quarantine"
                let stamp = String(Timestamp.nowNanos())
                try Syscalls.makeDirectories(q + "/blobs")
                try Syscalls.makeDirectories(q + "/entries")
                var stillCorrupt = Set<DigestKey>()
                for d in corrupt where store.blobs.has(d.digest) && !store.blobs.verify(d.digest) {
                    stillCorrupt.insert(d)
                    let to = q + "/blobs/" + d.digest.hex + "." + stamp
                    if rename(store.blobs.path(d.digest), to) == 0 { report.quarantined.append(to) }
                }
                for (e, _) in broken {
                    let ns: String? = if case .result(let n, _) = e.kind { n } else { nil }
                    guard let fresh = scan.entry(at: e.path, namespace: ns),
                        problem(fresh, listed: nil, corrupt: stillCorrupt) != nil
                    else { continue }
                    let to =
                        q + "/entries/" + (e.path.split(separator: "/").suffix(3).joined(separator: "_")) + "." + stamp
                    if rename(e.path, to) == 0 { report.quarantined.append(to) }
                }
                try Syscalls.fsyncDirectory(q + "/blobs")
                try Syscalls.fsyncDirectory(q + "/entries")
            }
        }
        return report
    }

    /// Why entry `e` is broken, or nil. A blob absent from `listed` (the listing taken before the entries
    /// were read) is looked up again: a writer may have published it since, which is not "missing". An
    /// entry file that vanished meanwhile (gc) is not broken either.
    func problem(_ e: ScannedEntry, listed: BlobTable?, corrupt: Set<DigestKey>) -> String? {
        if let why = e.broken { return access(e.path, F_OK) == 0 ? why : nil }
        // Full manifest checks (paths, order, tree_sha256 / artifact_root_sha256, the recorded profile).
        do {
            switch e.kind {
            case .source(let s): _ = try SourceStore(store: store).manifest(s)
            case .result(let ns, let k): _ = try ResultStore(store: store).entry(namespace: ns, jobKey: k)
            }
        } catch {
            return access(e.path, F_OK) == 0 ? "\(error)" : nil
        }
        if let missing = e.blobs.first(where: { !(listed?.contains($0) ?? false) && !store.blobs.has($0.digest) }) {
            return "blob \(missing.digest.hex) is missing"
        }
        if let bad = e.blobs.first(where: { corrupt.contains($0) }) { return "blob \(bad.digest.hex) is corrupt" }
        return nil
    }

    /// Re-hashes blobs on `threads` threads; returns the corrupt ones.
    func hashAll(_ keys: [DigestKey]) -> [DigestKey] {
        let blobs = store.blobs
        return parallelMap(keys.count, threads: threads) { i in blobs.verify(keys[i].digest) ? nil : keys[i] }
            .compactMap { $0 }
    }
}
