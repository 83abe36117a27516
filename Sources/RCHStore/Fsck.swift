#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation
import RCHCore

/// Checks a store: re-hashes every blob (streaming, bounded memory, several threads), checks every entry's
/// manifest digests and references, and reports missing, corrupt and orphaned items. With `repair`, corrupt
/// blobs and broken entries are *moved* to `quarantine/` (never deleted), so later lookups miss instead of
/// failing, and a re-upload can store good copies.
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
        public var quarantined: [String] = []
        public var clean: Bool { corruptBlobs.isEmpty && brokenEntries.isEmpty }

        public var json: JSONValue {
            .obj([
                "clean": .bool(clean), "blobs_checked": .int(Int64(blobsChecked)), "entries_checked": .int(Int64(entriesChecked)),
                "corrupt_blobs": .array(corruptBlobs.map { .string($0.hex) }), "orphan_blobs": .int(Int64(orphanBlobs)),
                "broken_entries": .array(brokenEntries.map { .obj(["entry": .string($0.label), "reason": .string($0.reason)]) }),
                "quarantined": .array(quarantined.map { .string($0) }),
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
        let sources = SourceStore(store: store)
        let results = ResultStore(store: store)
        for e in entries {
            referenced.formUnion(e.blobs)
            if let why = e.broken { broken.append((e, why)); continue }
            // Full manifest checks (paths, order, tree_sha256 / artifact_root_sha256).
            do {
                switch e.kind {
                case .source(let s): _ = try sources.manifest(s)
                case .result(let ns, let k): _ = try results.entry(namespace: ns, jobKey: k)
                }
            } catch { broken.append((e, "\(error)")); continue }
            if let missing = e.blobs.first(where: { !blobs.contains($0) }) { broken.append((e, "blob \(missing.digest.hex) is missing")); continue }
            if let bad = e.blobs.first(where: { corrupt.contains($0) }) { broken.append((e, "blob \(bad.digest.hex) is corrupt")); continue }
        }
        report.brokenEntries = broken.map { ($0.0.label, $0.1) }
        report.orphanBlobs = blobs.keys.filter { !referenced.contains($0) }.count
        if repair && (!corrupt.isEmpty || !broken.isEmpty) {
            try StoreLock.exclusive(store) {
                let q = store.root + "/quarantine"
                let stamp = String(Timestamp.nowNanos())
                try Syscalls.makeDirectories(q + "/blobs")
                try Syscalls.makeDirectories(q + "/entries")
                for d in corrupt {
                    let to = q + "/blobs/" + d.digest.hex + "." + stamp
                    if rename(store.blobs.path(d.digest), to) == 0 { report.quarantined.append(to) }
                }
                for (e, _) in broken {
                    let to = q + "/entries/" + (e.path.split(separator: "/").suffix(3).joined(separator: "_")) + "." + stamp
                    if rename(e.path, to) == 0 { report.quarantined.append(to) }
                }
                try Syscalls.fsyncDirectory(q + "/blobs")
                try Syscalls.fsyncDirectory(q + "/entries")
            }
        }
        return report
    }

    /// Re-hashes blobs on `threads` threads; returns the corrupt ones.
    func hashAll(_ keys: [DigestKey]) -> [DigestKey] {
        let blobs = store.blobs
        return parallelMap(keys.count, threads: threads) { i in blobs.verify(keys[i].digest) ? nil : keys[i] }.compactMap { $0 }
    }
}
