import RCHCore

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Bounds a store by age and size without breaking anything in use.
///
/// Algorithm:
/// 1. *Plan* (no lock, read-only): scan entries (roots: sources and results), the reference records of
///    job directories served by reference (``ResultReferences``: roots that are never evicted) and blobs;
///    count blob references; drop expired leases from consideration; then choose victims — every entry unused for
///    longer than `maxAge`, then, while the store's real disk usage (blobs' `st_blocks`, entries' sizes)
///    exceeds `maxSize`, the least recently used remaining entry. Entries under an unexpired lease are never
///    chosen. A blob becomes a victim when no surviving entry references it and its mtime is older than the
///    grace period (an in-flight upload or a writer that just deduplicated against it touches it).
///    Crash residue (`.tmp-*`, `.staging-*`, `.part-*`, and the `.rch-staging-*` / `.rch-extract-*`
///    directories of interrupted materialisations under `work/<job_id>/`) older than the grace period, and
///    inactive leases (expired, or whose owner process is gone), are removed too.
/// 2. *Sweep* (exclusive store lock): re-read leases; delete each victim entry only if it is unchanged since
///    planning (same mtime: not used meanwhile) and not leased; then delete each victim blob only if its
///    mtime is still older than the grace cutoff and no entry or reference record written since references it. Entries go
///    before their blobs, so no entry ever points at a deleted blob; writers re-check their blobs under the
///    shared lock before publishing, so a blob deleted just before is noticed (they retry).
/// `dryRun` runs only the plan: the store is not modified in any way (not even last-use times).
public struct GarbageCollector: Sendable {
    public var store: LocalStore
    public var maxSize: UInt64?
    public var maxAgeSeconds: Int64?
    /// Only result entries of this namespace are eviction candidates (sources and other namespaces stay).
    public var namespace: String?
    public var graceSeconds: Int64 = 3600
    public var dryRun = false

    public init(store: LocalStore) { self.store = store }

    public struct Report: Sendable {
        public var entries: [(label: String, reason: String)] = []
        public var blobs = 0
        public var bytesFreed: UInt64 = 0
        public var residue = 0
        public var expiredLeases = 0
        public var bytesBefore: UInt64 = 0
        public var bytesAfter: UInt64 = 0
        public var skipped: [String] = []
        public var dryRun = false

        public var json: JSONValue {
            .obj([
                "dry_run": .bool(dryRun), "bytes_before": .int(Int64(bytesBefore)),
                "bytes_after": .int(Int64(bytesAfter)),
                "bytes_freed": .int(Int64(bytesFreed)), "blobs_removed": .int(Int64(blobs)),
                "residue_removed": .int(Int64(residue)),
                "expired_leases_removed": .int(Int64(expiredLeases)),
                "entries_removed": .array(
                    entries.map { .obj(["entry": .string($0.label), "reason": .string($0.reason)]) }),
                "skipped": .array(skipped.map { .string($0) }),
            ])
        }
    }

    public func run(now: Int64 = Timestamp.nowNanos()) throws -> Report {
        var report = Report()
        report.dryRun = dryRun
        let scan = StoreScan(store: store)
        var entries = scan.entries()
        var blobs = scan.blobs()
        for e in entries { for b in e.blobs { if let j = blobs.index(b) { blobs.infos[j].refs += 1 } } }
        // Job directories served by reference pin their blobs until job retention removes them.
        let references = scan.references()
        for r in references { for b in r.blobs { if let j = blobs.index(b) { blobs.infos[j].refs += 1 } } }
        let leases = Leases(store: store).all()
        let leased = Set(leases.filter { $0.isActive(at: now) }.map { "\($0.subject)" })
        let graceCutoff = now - graceSeconds * 1_000_000_000

        func blobBytes() -> UInt64 { blobs.infos.reduce(0) { $0 + $1.diskBytes } }
        var total = blobBytes() + entries.reduce(0) { $0 + $1.fileBytes }
        report.bytesBefore = total

        // Orphans old enough to go already count as freed space; every blob is subtracted at most once.
        var freed = [Bool](repeating: false, count: blobs.count)
        for j in 0..<blobs.count where blobs.infos[j].refs == 0 && blobs.infos[j].mtime < graceCutoff {
            freed[j] = true
            total -= blobs.infos[j].diskBytes
        }
        // Victims among entries.
        var victims: [(index: Int, reason: String)] = []
        var chosen = Set<Int>()
        func eligible(_ i: Int) -> Bool {
            let e = entries[i]
            if chosen.contains(i) || leased.contains("\(e.leaseSubject)") { return false }
            if let ns = namespace, case .result(let ens, _) = e.kind { return ens == ns }
            return namespace == nil
        }
        func evict(_ i: Int, _ reason: String) {
            chosen.insert(i)
            victims.append((i, reason))
            total -= entries[i].fileBytes
            for b in entries[i].blobs {
                guard let j = blobs.index(b) else { continue }
                blobs.infos[j].refs -= 1
                let info = blobs.infos[j]
                if info.refs == 0 && info.mtime < graceCutoff && !freed[j] {
                    freed[j] = true
                    total -= info.diskBytes
                }
            }
        }
        for i in entries.indices where entries[i].broken != nil && eligible(i) { evict(i, "unreadable entry") }
        if let maxAge = maxAgeSeconds {
            let cutoff = now - maxAge * 1_000_000_000
            for i in entries.indices where entries[i].lastUse < cutoff && eligible(i) {
                evict(i, "unused for more than \(maxAge)s")
            }
        }
        if let maxSize, total > maxSize {
            let lru = entries.indices.filter { eligible($0) }.sorted { entries[$0].lastUse < entries[$1].lastUse }
            for i in lru {
                if total <= maxSize { break }
                evict(i, "least recently used; store over \(maxSize) bytes")
            }
            if total > maxSize {
                report.skipped.append(
                    "still \(total) bytes after evicting every eligible entry (leased, grace period or other namespaces)"
                )
            }
        }
        let deadBlobs = (0..<blobs.count).filter { blobs.infos[$0].refs <= 0 && blobs.infos[$0].mtime < graceCutoff }
            .map { (key: blobs.keys[$0], value: blobs.infos[$0]) }
        let residue = scan.residue().filter { $0.mtime < graceCutoff }
        let expired = leases.filter { !$0.isActive(at: now) }

        if dryRun {
            report.entries = victims.map { (entries[$0.index].label, $0.reason) }
            report.blobs = deadBlobs.count
            report.bytesFreed =
                deadBlobs.reduce(0) { $0 + $1.value.diskBytes } + victims.reduce(0) { $0 + entries[$1.index].fileBytes }
            report.residue = residue.count
            report.expiredLeases = expired.count
            report.bytesAfter = report.bytesBefore - report.bytesFreed
            return report
        }

        try StoreLock.exclusive(store) {
            let activeNow = Set(Leases(store: store).all().filter { $0.isActive() }.map { "\($0.subject)" })
            var removedEntries = Set<Int>()
            for (i, reason) in victims {
                let e = entries[i]
                var st = Glibc_stat()
                guard lstat(e.path, &st) == 0, StoreScan.mtimeNanos(st) == e.lastUse else {
                    report.skipped.append("\(e.label): used since planning")
                    continue
                }
                guard !activeNow.contains("\(e.leaseSubject)") else {
                    report.skipped.append("\(e.label): leased since planning")
                    continue
                }
                guard unlink(e.path) == 0 else { continue }
                // A source's checkpoints go with it (SourceCheckpoints; nothing else is named so).
                if e.path.hasSuffix(".json") { unlink(String(e.path.dropLast(5)) + ".ckpt") }
                removedEntries.insert(i)
                report.entries.append((e.label, reason))
                report.bytesFreed += e.fileBytes
            }
            // Planned-dead blobs are referenced only by victims (or nothing). Keep those of victims that were
            // not removed, and those of entries published since planning (re-scanned: there are few).
            let known = Set(entries.map(\.path))
            var referencedNow = Set<DigestKey>()
            for (i, _) in victims where !removedEntries.contains(i) { referencedNow.formUnion(entries[i].blobs) }
            for (path, ns) in scan.entryPaths() where !known.contains(path) {
                if let e = scan.entry(at: path, namespace: ns) { referencedNow.formUnion(e.blobs) }
            }
            for r in scan.references(except: Set(references.map(\.jobID))) { referencedNow.formUnion(r.blobs) }
            for (key, info) in deadBlobs where !referencedNow.contains(key) {
                let path = store.blobs.path(key.digest)
                var st = Glibc_stat()
                guard lstat(path, &st) == 0, StoreScan.mtimeNanos(st) < graceCutoff else { continue }
                if unlink(path) == 0 {
                    report.blobs += 1
                    report.bytesFreed += info.diskBytes
                }
            }
            for r in residue {
                if r.isDirectory { removeTree(r.path) } else { unlink(r.path) }
                report.residue += 1
            }
            for l in expired where !l.isActive() {
                Leases(store: store).release(l)
                report.expiredLeases += 1
            }
        }
        entries.removeAll()
        report.bytesAfter = report.bytesBefore > report.bytesFreed ? report.bytesBefore - report.bytesFreed : 0
        return report
    }
}
