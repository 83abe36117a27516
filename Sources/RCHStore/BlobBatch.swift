import Foundation
import RCHCore
import SystemPackage

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// The blobs of one ingest or record, made durable and visible together.
///
/// Protocol: each blob is written (hashed as it is written) to a private staging directory
/// `blobs/.staging-<random>/` without an fsync; ``commit()`` then makes the whole staging directory
/// durable with one `syncfs` (Darwin: every file was `F_FULLFSYNC`ed as it was closed), renames each blob
/// to its final name without replacing (present = already stored: the staged copy is dropped), and makes
/// the renames durable with a second `syncfs` (Darwin: fsync of each touched shard directory). Only after
/// that may an entry referencing the blobs be published. A crash leaves a staging directory that gc
/// removes; never a visible blob with non-durable bytes. A large batch may publish its blobs in waves
/// while it is still being staged (``publishInWaves(everyBytes:everyBlobs:)``, ``WavePublisher``): the
/// same two steps per wave, so ``commit()`` is left with the last wave only. A batch of at most
/// ``fsyncEachAtMost`` blobs (no waves) `fsync`s each staged file and then each touched shard directory
/// instead of the two `syncfs`.
public final class BlobBatch {
    let blobs: BlobStore
    public let staging: String
    private var staged: [SHA256Digest] = []
    private var stagedSet = Set<SHA256Digest>()
    private var committed = false
    /// Blobs that were new to the store (for reporting; complete after ``commit()``).
    public private(set) var newBlobs = 0
    public private(set) var newBytes: UInt64 = 0
    // Waves: off while `waveBytes` is 0; `staged[..<handedOver]` went to the publisher.
    private var waveBytes: UInt64 = 0
    private var waveBlobs = 0
    private var handedOver = 0
    private var bytesSinceWave: UInt64 = 0
    private var publisher: WavePublisher?
    private var renamer: ShardRenamer?
    /// Waves published before ``commit()`` (0 unless ``publishInWaves(everyBytes:everyBlobs:)``).
    public var wavesPublished: Int { publisher?.waves ?? 0 }

    init(blobs: BlobStore) throws {
        self.blobs = blobs
        staging = blobs.root + "/.staging-" + String(UInt64.random(in: 0...UInt64.max), radix: 36)
        try Syscalls.makeDirectories(blobs.root)
        guard mkdir(staging, 0o700) == 0 else {
            throw SystemError("mkdir", path: staging, errno: Errno(rawValue: errno))
        }
    }

    deinit { if !committed { discard() } }

    /// Publishes the blobs staged so far in a wave on a thread of its own each time `everyBytes` bytes or
    /// `everyBlobs` blobs were staged since the last wave (see ``WavePublisher``): for a large ingest, whose
    /// last byte should not be followed by a whole tree's `syncfs` and renames.
    public func publishInWaves(everyBytes: UInt64, everyBlobs: Int) {
        precondition(everyBytes > 0 && everyBlobs > 0 && staged.isEmpty)
        waveBytes = everyBytes
        waveBlobs = everyBlobs
    }

    /// Stores `bytes` (small contents, known in full) unless the store already has them. With `expected`,
    /// bytes that hash to anything else are refused (``StoreError/corruptBlob(_:)`` names the expected
    /// digest) and nothing is staged.
    public func add(_ bytes: UnsafeRawBufferPointer, expected: SHA256Digest? = nil) throws -> SHA256Digest {
        var h = StreamingSHA256()
        h.update(bytes)
        let d = h.finalize()
        if let expected, expected != d { throw StoreError.corruptBlob(expected) }
        return try add(bytes, hashedAs: d)
    }

    /// ``add(_:expected:)`` of bytes the caller has just hashed to `d` itself (the ingest's reader hashes each
    /// file in the pass that hashes the stream, from these very bytes): stored under `d` without hashing again.
    public func add(_ bytes: UnsafeRawBufferPointer, hashedAs d: SHA256Digest) throws -> SHA256Digest {
        if stagedSet.contains(d) || blobs.touchIfPresent(d) { return d }
        try account(UInt64(bytes.count))
        let path = staging + "/" + d.hex
        let fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o444)
        if fd < 0 { throw SystemError("create", path: path, errno: Errno(rawValue: errno)) }
        let f = FileDescriptor(rawValue: fd)
        defer { try? f.close() }
        do { _ = try f.writeAll(bytes) } catch { throw SystemError("write", path: path, errno: error) }
        try finishStaged(f, path: path, digest: d, size: UInt64(bytes.count))
        return d
    }

    /// Moves `path` — a file on the store's filesystem whose bytes the caller has just hashed to `digest`
    /// (e.g. a download verified against the digest it was requested by) — into the batch without copying.
    /// A blob already stored or staged is dropped instead. The file is made read-only.
    public func adopt(_ path: String, digest: SHA256Digest, size: UInt64) throws {
        if stagedSet.contains(digest) || blobs.touchIfPresent(digest) {
            unlink(path)
            return
        }
        try account(size)
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw SystemError("open", path: path, errno: Errno(rawValue: errno)) }
        let f = FileDescriptor(rawValue: fd)
        defer { try? f.close() }
        fchmod(fd, 0o444)
        let final = staging + "/" + digest.hex
        guard rename(path, final) == 0 else { throw SystemError("rename", path: final, errno: Errno(rawValue: errno)) }
        try finishStaged(f, path: final, digest: digest, size: size)
    }

    /// A writer for content that arrives in pieces (large files); call ``StagedBlob/finish()``.
    /// `hashing: false` for content the caller hashes itself (finish it with ``StagedBlob/finish(hashedAs:)``).
    public func stream(hashing: Bool = true) throws -> StagedBlob {
        let s = try StagedBlob(batch: self)
        s.hashing = hashing
        return s
    }

    /// Bytes that may be staged before the free-space floor is checked again.
    private var budget: UInt64 = 0

    /// Called for every staged write of `n` bytes. The floor is checked against the write at hand (never a
    /// fixed reserve): a check allows the next min(64 MiB, half the headroom left) bytes without another.
    func account(_ n: UInt64) throws {
        if n > budget {
            let headroom = try blobs.checkSpace(more: n)
            budget = n + min(64 << 20, headroom / 2)
        }
        budget -= n
    }

    /// ``syncStaged(_:path:)`` then ``record(_:size:)`` of a file already under its digest.
    func finishStaged(_ f: FileDescriptor, path: String, digest: SHA256Digest, size: UInt64) throws {
        try syncStaged(f, path: path)
        try record(digest, size: size)
    }

    /// Darwin, which has no `syncfs`: makes a staged file's bytes durable as it is closed.
    func syncStaged(_ f: FileDescriptor, path: String) throws {
        if !Syscalls.hasSyncFilesystem { try Syscalls.fsync(f, path: path) }
    }

    /// Records a blob whose bytes are all written and which is under its digest in the staging directory
    /// (a wave may rename it from now on); may hand a wave over.
    func record(_ digest: SHA256Digest, size: UInt64) throws {
        staged.append(digest)
        stagedSet.insert(digest)
        newBytes += size
        guard waveBytes > 0 else { return }
        bytesSinceWave += size
        if bytesSinceWave >= waveBytes || staged.count - handedOver >= waveBlobs { try offerWave() }
    }

    private func offerWave() throws {
        if publisher == nil {
            let r = try ShardRenamer(blobs: blobs, staging: staging)
            renamer = r
            publisher = WavePublisher(renamer: r, staging: staging)
        }
        if publisher!.offer({ Array(staged[handedOver...]) }) {
            handedOver = staged.count
            bytesSinceWave = 0
        }
    }

    /// Makes every staged blob durable and visible (see the type's protocol).
    public func commit() throws {
        precondition(!committed)
        committed = true
        defer { removeTree(staging) }
        try publisher?.finish()
        if staged.isEmpty { return }
        let renamer = try self.renamer ?? ShardRenamer(blobs: blobs, staging: staging)
        // A few blobs (an edit's upload, a small record) are made durable one by one — each file, then each
        // touched shard directory — instead of by two `syncfs` of a filesystem that may hold anyone's dirty
        // data: the same guarantee, at the cost of the batch rather than of the disk.
        let few = publisher == nil && staged.count <= Self.fsyncEachAtMost
        if handedOver < staged.count {
            if few {
                for d in staged { try fsyncStaged(d) }
            } else {
                _ = try Syscalls.syncFilesystem(of: staging)
            }
            try renamer.rename(staged[handedOver...])
        }
        try renamer.makeDurable(eachDirectory: few)
        newBlobs = renamer.newBlobs
    }

    /// Batches of at most this many blobs (and no waves) are made durable file by file.
    static let fsyncEachAtMost = 16

    private func fsyncStaged(_ d: SHA256Digest) throws {
        guard Syscalls.hasSyncFilesystem else { return }  // Darwin: synced as each was closed
        let path = staging + "/" + d.hex
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw SystemError("open", path: path, errno: Errno(rawValue: errno)) }
        let f = FileDescriptor(rawValue: fd)
        defer { try? f.close() }
        try Syscalls.fsync(f, path: path)
    }

    /// Drops everything staged.
    public func discard() {
        committed = true
        try? publisher?.finish()
        removeTree(staging)
    }

    func stagingPath(_ name: String) -> String { staging + "/" + name }
}

/// One blob being written piecewise into a batch.
public final class StagedBlob {
    let batch: BlobBatch
    let tempPath: String
    let fd: FileDescriptor
    var hasher = StreamingSHA256()
    var hashing = true
    var written: UInt64 = 0
    var done = false

    init(batch: BlobBatch) throws {
        self.batch = batch
        tempPath = batch.stagingPath(".part-" + String(UInt64.random(in: 0...UInt64.max), radix: 36))
        let raw = open(tempPath, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o444)
        if raw < 0 { throw SystemError("create", path: tempPath, errno: Errno(rawValue: errno)) }
        fd = FileDescriptor(rawValue: raw)
    }

    deinit {
        if !done {
            try? fd.close()
            unlink(tempPath)
        }
    }

    public func write(_ chunk: UnsafeRawBufferPointer) throws {
        try batch.account(UInt64(chunk.count))
        if hashing { hasher.update(chunk) }
        written += UInt64(chunk.count)
        do { _ = try fd.writeAll(chunk) } catch { throw SystemError("write", path: tempPath, errno: error) }
    }

    /// Finishes the blob; returns its digest (a duplicate of a stored or staged blob is dropped). With
    /// `expected`, other content is refused and dropped.
    public func finish(expected: SHA256Digest? = nil) throws -> SHA256Digest {
        precondition(hashing, "a blob written without hashing is finished with finish(hashedAs:)")
        let d = hasher.finalize()
        if let expected, expected != d {
            done = true
            try? fd.close()
            unlink(tempPath)
            throw StoreError.corruptBlob(expected)
        }
        return try finish(hashedAs: d)
    }

    /// Finishes a blob whose bytes the caller hashed to `d` as it handed them over.
    public func finish(hashedAs d: SHA256Digest) throws -> SHA256Digest {
        done = true
        let size = written
        if batch.stagedContains(d) || batch.blobs.touchIfPresent(d) {
            try? fd.close()
            unlink(tempPath)
            return d
        }
        let final = batch.stagingPath(d.hex)
        do {
            try batch.syncStaged(fd, path: tempPath)
            try fd.close()
        } catch {
            unlink(tempPath)
            throw error
        }
        guard rename(tempPath, final) == 0 else {
            let e = Errno(rawValue: errno)
            unlink(tempPath)
            throw SystemError("rename", path: final, errno: e)
        }
        try batch.record(d, size: size)
        return d
    }
}

extension BlobBatch {
    func stagedContains(_ d: SHA256Digest) -> Bool { stagedSet.contains(d) }
}
