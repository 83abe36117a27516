import RCHBundle
import RCHCore
import SystemPackage

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Sources keyed by `source_sha256`: `sources/<ab>/<source_sha256>.json` is the source manifest, and
/// every file's content is a blob.
///
/// Invariants:
/// - the entry (manifest) is published last, without replacing, and only after (1) every blob it names is
///   durable in the blob store and (2) the canonical tar rebuilt from — or streamed into — those blobs
///   hashed to `source_sha256`. So a visible entry always describes a verified source;
/// - a source is *present* only if its entry parses and every file blob exists (``has(_:)``); blob
///   contents are re-verified when served (materialise, export) and by fsck;
/// - duplicate and concurrent ingests of one digest all succeed; only the first publish wins and the
///   others discard their copy.
public struct SourceStore: Sendable {
    public let store: LocalStore
    /// An ingest's wave size (``BlobBatch/publishInWaves(everyBytes:everyBlobs:)``): a first push's tree
    /// (≈ 100 MB, 4,000 files) is published in about a dozen waves behind the transfer instead of one
    /// `syncfs` and 4,000 renames after its last byte.
    public var waveBytes: UInt64 = 8 << 20
    public var waveBlobs = 512

    public init(store: LocalStore) { self.store = store }

    var blobs: BlobStore { store.blobs }

    public func entryPath(_ sha: SHA256Digest) -> String {
        store.sourcesDirectory + "/" + String(sha.hex.prefix(2)) + "/" + sha.hex + ".json"
    }

    /// The stored manifest, if the entry exists.
    public func manifest(_ sha: SHA256Digest) throws -> SourceManifest? {
        guard let bytes = try? DurableFile.read(entryPath(sha)) else { return nil }
        let m: SourceManifest
        do { m = try SourceManifest(canonicalFile: bytes) } catch {
            throw StoreError.corrupt("source entry \(sha.hex) does not parse: \(error)")
        }
        guard m.sourceSHA256 == sha else {
            throw StoreError.corrupt("source entry \(sha.hex) names \(m.sourceSHA256.hex)")
        }
        return m
    }

    /// Present: the entry exists and every file blob exists. Records the use (for gc's LRU).
    public func has(_ sha: SHA256Digest) -> Bool {
        guard let m = try? manifest(sha) else { return false }
        guard blobs.missing(m.entries.lazy.filter { $0.type == .file }.map(\.sha256)).isEmpty else { return false }
        Usage.touch(entryPath(sha))
        return true
    }

    /// The spec's `has_source` for a batch of digests (counted in stats). Answered from the entries
    /// alone: an entry is published only after its blobs, and gc and fsck remove or quarantine entries
    /// before the blobs they need — so a committed entry implies its blobs. (Damage done behind the
    /// store's back is caught where the source is used: `submit` checks with ``has(_:)``, which answers
    /// SOURCE_MISSING and makes the host re-upload; materialisation verifies every blob.)
    public func query(_ digests: [SHA256Digest]) -> [Bool] {
        let paths = DigestPaths(root: store.sourcesDirectory, suffix: ".json")
        // One listing of the shard directories: a digest whose shard does not exist is answered without a
        // lookup (a store with few sources has few shards; a failed lookup costs a dentry on tmpfs).
        let shards = Self.existingShards(store.sourcesDirectory)
        let r = digests.map { d -> Bool in
            guard shards[Int(d.bytes[0])] else { return false }
            // Records the use; a store we may not write to is still answered.
            return paths.with(d) {
                utimensat($0, $1, nil, 0) == 0 || (errno != ENOENT && faccessat($0, $1, F_OK, 0) == 0)
            }
        }
        let hits = r.filter { $0 }.count
        StoreCounters.add(store, sourceHits: hits, sourceMisses: r.count - hits)
        return r
    }

    /// Which of the 256 shard directories (`<ab>/`, named by a digest's first byte) exist under `directory`; all
    /// of them if it cannot be listed (then every digest is looked up).
    static func existingShards(_ directory: String) -> [Bool] {
        guard let names = try? Directory.list(directory) else { return [Bool](repeating: true, count: 256) }
        var shards = [Bool](repeating: false, count: 256)
        let hex = Array("0123456789abcdef".utf8)
        for name in names {
            let u = Array(name.utf8)
            guard u.count == 2, let hi = hex.firstIndex(of: u[0]), let lo = hex.firstIndex(of: u[1]) else { continue }
            shards[hi << 4 | lo] = true
        }
        return shards
    }

    /// The file blobs of `manifest` the store lacks (what an incremental upload must send).
    public func missingBlobs(_ manifest: SourceManifest) -> [SHA256Digest] {
        blobs.missing(manifest.entries.lazy.filter { $0.type == .file }.map(\.sha256))
    }

    /// The blobs of `manifest` the store lacks, not counting contents of `base` (a committed source: its blobs are
    /// implied, and a blob lost behind the store's back fails the rebuild with `StoreError.missingBlob`).
    public func missingBlobs(_ manifest: SourceManifest, beyond base: SourceManifest) -> [SHA256Digest] {
        let known = Set(base.entries.lazy.filter { $0.type == .file }.map(\.sha256))
        return blobs.missing(
            manifest.entries.lazy.filter { $0.type == .file && !known.contains($0.sha256) }.map(\.sha256))
    }

    public struct IngestResult: Sendable {
        public var sourceSHA256: SHA256Digest
        /// False when the source was already present (nothing was changed).
        public var stored: Bool
        public var newBlobs: Int
        public var newBytes: UInt64
        public var entryCount: Int
    }

    /// Ingests a whole `.tar.zst` bundle (the spec's `upload_source`): verifies the stream digest if given,
    /// decompresses with limits, validates every entry strictly, stores files as blobs while hashing,
    /// verifies `source_sha256`, then publishes the entry.
    public func ingest(
        bundle path: String, expected: SHA256Digest? = nil, contentSHA256: SHA256Digest? = nil,
        compressed: Bool = true, limits: ExtractLimits = ExtractLimits()
    ) throws -> IngestResult {
        let fd: FileDescriptor
        do { fd = try FileDescriptor.open(FilePath(path), .readOnly, retryOnInterrupt: true) } catch {
            throw StoreError.invalid("cannot open bundle '\(path)': \(error)")
        }
        defer { try? fd.close() }
        if let contentSHA256 {
            let actual = try FileChunks.sha256(fd, path: path).digest
            guard actual == contentSHA256 else {
                throw BundleError.digestMismatch(
                    expected: contentSHA256.hex, actual: actual.hex + " (content_sha256 of the transferred bytes)")
            }
            guard lseek(fd.rawValue, 0, SEEK_SET) == 0 else {
                throw SystemError("lseek", path: path, errno: Errno(rawValue: errno))
            }
        }
        return try ingest(expected: expected, compressed: compressed, limits: limits) { buf in
            do { return try fd.read(into: buf, retryOnInterrupt: true) } catch {
                throw BundleError.io("cannot read the bundle: \(error)")
            }
        }
    }

    /// Ingests a bundle read from `input` as it arrives (the worker decodes an upload while it is still
    /// being sent). Blobs are staged as the stream is decoded and published in waves of
    /// ``waveBytes``/``waveBlobs`` while it still arrives (``BlobBatch/publishInWaves(everyBytes:everyBlobs:)``:
    /// each durable before it is visible); `beforePublish` runs after the whole stream was read and checked,
    /// before the entry becomes visible — a throw there (e.g. the transfer's own digest) discards everything
    /// still staged and publishes no entry (blobs of earlier waves stay as orphans for gc).
    public func ingest(
        expected: SHA256Digest?, compressed: Bool = true, limits: ExtractLimits = ExtractLimits(),
        beforePublish: () throws -> Void = {}, input: @escaping (UnsafeMutableRawBufferPointer) throws -> Int
    ) throws -> IngestResult {
        if let expected, has(expected), let m = try manifest(expected) {
            try beforePublish()
            return IngestResult(
                sourceSHA256: expected, stored: false, newBlobs: 0, newBytes: 0, entryCount: m.entries.count)
        }
        let batch = try BlobBatch(blobs: blobs)
        batch.publishInWaves(everyBytes: waveBytes, everyBlobs: waveBlobs)
        // Discarded explicitly on every failure (after the pipeline's thread has been joined): the batch
        // must not outlive the request in a staging directory.
        do {
            return try ingest(
                into: batch, expected: expected, compressed: compressed, limits: limits,
                beforePublish: beforePublish, input: input)
        } catch {
            batch.discard()
            throw error
        }
    }

    private func ingest(
        into batch: BlobBatch, expected: SHA256Digest?, compressed: Bool, limits: ExtractLimits,
        beforePublish: () throws -> Void, input: @escaping (UnsafeMutableRawBufferPointer) throws -> Int
    ) throws -> IngestResult {
        var visitor = IngestVisitor(batch: batch)
        defer { visitor.release() }
        let read = try BundleReader.read(limits: limits, compressed: compressed, visitor: &visitor, input: input)
        try visitor.finish()
        try beforePublish()
        if let expected, read.sourceSHA256 != expected {
            throw BundleError.digestMismatch(expected: expected.hex, actual: read.sourceSHA256.hex)
        }
        try PathRules.checkCollisions(read.paths)
        let manifest = SourceManifest(
            createdAt: Timestamp.now(), runID: nil, sourceSHA256: read.sourceSHA256,
            treeSHA256: SourceManifest.treeDigest(visitor.entries), tarBytes: read.tarBytes,
            entries: visitor.entries, tarEncoder: "", zstdVersion: "")
        try batch.commit()
        let published = try publish(manifest)
        if published, read.checkpoints.count == manifest.entries.count {
            SourceCheckpoints(store: store).write(manifest.sourceSHA256, read.checkpoints)
        }
        return IngestResult(
            sourceSHA256: read.sourceSHA256, stored: published, newBlobs: batch.newBlobs, newBytes: batch.newBytes,
            entryCount: manifest.entries.count)
    }

    /// Commits a source described by `manifest` whose blobs are already in the store (the incremental
    /// upload path): every blob must be present, and the canonical tar rebuilt from them must hash to the
    /// manifest's `source_sha256`.
    ///
    /// With `base` (a stored source whose checkpoints are kept), the hash resumes after the entries the two
    /// share at the start (``SourceCheckpoints``); a mismatch after a resumed hash is checked again by a whole
    /// one, so a damaged checkpoint file can cost time, never refuse a valid source or accept a wrong one.
    @discardableResult
    public func commit(_ manifest: SourceManifest, base: SourceManifest? = nil) throws -> Bool {
        // An existing entry wins (publish would not replace it anyway).
        if access(entryPath(manifest.sourceSHA256), F_OK) == 0 {
            Usage.touch(entryPath(manifest.sourceSHA256))
            return false
        }
        guard SourceManifest.treeDigest(manifest.entries) == manifest.treeSHA256 else {
            throw StoreError.invalid("manifest tree_sha256 does not match its entries")
        }
        try PathRules.checkCollisions(bytes: manifest.entries.map { Array($0.path.utf8) })
        // A missing blob fails the rebuild (StoreError.missingBlob). The stream digest covers every byte:
        // a blob that does not match its name changes it.
        var rebuilt = try rebuild(manifest, output: nil, verifyFiles: false, resume: resume(manifest, base: base))
        if rebuilt.sourceSHA256 != manifest.sourceSHA256 && base != nil {
            rebuilt = try rebuild(manifest, output: nil, verifyFiles: false)
        }
        guard rebuilt.sourceSHA256 == manifest.sourceSHA256 else {
            throw BundleError.digestMismatch(expected: manifest.sourceSHA256.hex, actual: rebuilt.sourceSHA256.hex)
        }
        var m = manifest
        m.tarBytes = rebuilt.tarBytes
        let published = try publish(m)
        if published { SourceCheckpoints(store: store).write(manifest.sourceSHA256, rebuilt.checkpoints) }
        return published
    }

    /// Where a rebuild of `manifest` may resume: after the entries it shares at the start with `base`.
    func resume(_ manifest: SourceManifest, base: SourceManifest?) -> BundleResume? {
        guard let base,
            let states = SourceCheckpoints(store: store).read(base.sourceSHA256, entries: base.entries.count)
        else { return nil }
        var k = 0
        while k < min(manifest.entries.count, base.entries.count) && manifest.entries[k] == base.entries[k] { k += 1 }
        return BundleResume(entries: Array(manifest.entries.prefix(k)), checkpoints: Array(states.prefix(k)))
    }

    /// Publishes the entry (no-replace); false if another writer published it first. Runs under the
    /// shared store lock and re-checks that every blob still exists, so gc (exclusive) can never delete a
    /// blob between this check and the publish. (Every blob, not only those beyond a base: a resumed commit
    /// does not read the base's, and a blob lost behind the store's back must not become part of a new source.)
    func publish(_ manifest: SourceManifest) throws -> Bool {
        let path = entryPath(manifest.sourceSHA256)
        try Syscalls.makeDirectories(directoryOf(path))
        return try StoreLock.shared(store) {
            if let gone = missingBlobs(manifest).first {
                throw StoreError.retry("blob \(gone.hex) was removed by a concurrent gc")
            }
            return try DurableFile.write(manifest.canonicalBytes() + [10], to: path, replace: false)
        }
    }

    /// Regenerates the canonical `.tar.zst` into `output` (blobs verified while read).
    public func export(_ sha: SHA256Digest, to output: String, level: Int = 3) throws -> CanonicalTarRebuilder.Result {
        guard let m = try manifest(sha) else { throw StoreError.sourceMissing(sha) }
        let temp = try TempFile(directory: directoryOf(output))
        do {
            let r = try rebuild(m, output: temp, level: level)
            guard r.sourceSHA256 == sha else {
                throw StoreError.corrupt("source \(sha.hex) rebuilds to \(r.sourceSHA256.hex)")
            }
            try temp.commit(to: output)
            Usage.touch(entryPath(sha))
            return r
        } catch {
            temp.discard()
            throw error
        }
    }

    func rebuild(
        _ m: SourceManifest, output: TempFile?, level: Int = 3, verifyFiles: Bool = true, resume: BundleResume? = nil
    ) throws
        -> CanonicalTarRebuilder.Result
    {
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 1 << 20, alignment: 16)
        defer { buffer.deallocate() }
        return try CanonicalTarRebuilder.rebuild(
            entries: m.entries, level: level, output: output, verifyFiles: verifyFiles, resume: resume
        ) { entry, sink in
            let path = blobs.path(entry.sha256)
            let fd: FileDescriptor
            do {
                fd = try FileDescriptor.open(FilePath(path), .readOnly, options: [.noFollow], retryOnInterrupt: true)
            } catch {
                throw StoreError.missingBlob(entry.sha256)
            }
            defer { try? fd.close() }
            try FileChunks.read(fd, path: path, buffer: buffer, sink)
        }
    }

    /// Materialises a source into `directory`, a new isolated job directory that must not exist yet.
    /// Files are copied from verified blobs (a corrupt blob aborts and nothing is left), symlinks last.
    public func materialize(_ sha: SHA256Digest, jobID: String, into directory: String, verify: Bool = true) throws
        -> Int
    {
        _ = try Identifier.validate(jobID, .jobID)
        // A short lease keeps gc away while the files are copied (taken under the shared lock: gc either
        // sees it or has already finished).
        let leases = Leases(store: store)
        let lease = try leases.acquire(.source(sha), jobID: jobID, ttlSeconds: 3600)
        defer { leases.release(lease) }
        guard let m = try manifest(sha) else { throw StoreError.sourceMissing(sha) }
        let items = m.entries.map { e in
            TreeMaterializer.Item(
                path: e.path,
                kind: e.type == .symlink ? .symlink(e.symlinkTarget ?? "") : .file(e.sha256, executable: e.executable))
        }
        try TreeMaterializer(blobs: blobs, verify: verify).materialize(items, into: directory)
        Usage.touch(entryPath(sha))
        return items.count
    }
}

/// Stores each file of a bundle as a blob while the strict reader walks it. Small files are buffered
/// (so an already-stored blob is never rewritten); larger ones stream into the batch.
/// Collects the entries of an ingested stream; file contents go to a ``BlobPipeline`` (staged on another
/// thread, under the digest the reader computed from the same bytes), their digests filled in by ``finish()``.
struct IngestVisitor: TarVisitor {
    static let pending = SHA256Digest(bytes: [UInt8](repeating: 0, count: 32))
    let pipeline: BlobPipeline
    private(set) var entries: [SourceManifest.Entry] = []
    private var current: (path: String, executable: Bool, size: UInt64)?

    init(batch: BlobBatch) { pipeline = BlobPipeline(batch: batch) }

    /// Stops the pipeline if ``finish()`` was not reached (an error path).
    func release() { pipeline.abandon() }

    mutating func beginFile(path: String, executable: Bool, size: UInt64) throws {
        current = (path, executable, size)
        try pipeline.beginFile(size: size)
    }

    mutating func fileData(_ chunk: UnsafeRawBufferPointer) throws { try pipeline.fileData(chunk) }

    /// The reader hashes each file with the stream (one pass); the pipeline then only stages.
    var wantsFileDigests: Bool { true }

    mutating func endFile() throws {
        guard current != nil else { return }
        throw StoreError.invalid("a file ended without its digest")
    }

    mutating func endFile(sha256: SHA256Digest) throws {
        guard let c = current else { return }
        pipeline.endFile(digest: sha256)
        // The digest is not known yet: a placeholder, replaced in order by finish().
        entries.append(
            .init(
                path: c.path, type: .file, size: c.size, sha256: Self.pending, executable: c.executable,
                symlinkTarget: nil))
        current = nil
    }

    mutating func symlink(path: String, target: String) throws {
        entries.append(
            .init(
                path: path, type: .symlink, size: UInt64(target.utf8.count), sha256: .of(target.utf8),
                executable: false, symlinkTarget: target))
    }

    /// Waits for every blob to be staged and gives each file entry its digest.
    mutating func finish() throws {
        var digests = try pipeline.finish().makeIterator()
        for i in entries.indices where entries[i].type == .file {
            guard let d = digests.next() else { throw StoreError.invalid("a file's blob was not staged") }
            entries[i].sha256 = d
        }
        guard digests.next() == nil else { throw StoreError.invalid("more blobs were staged than files were read") }
    }
}

/// Last-use records for gc: the mtime of an entry file is its last use (never file atime, which mounts
/// often disable). Updating it never changes the entry's content.
enum Usage {
    static func touch(_ path: String) {
        _ = utimensat(AT_FDCWD, path, nil, 0)
    }
}
