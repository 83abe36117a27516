import RCHCore
import SystemPackage

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Content-addressed blobs: `blobs/sha256/<ab>/<hex>` holds exactly the bytes whose SHA-256 is `<hex>`.
///
/// Invariants:
/// - a blob appears under its final name only after its bytes are durable and were hashed while being
///   written (see ``BlobBatch``), so a present blob is never a half-written or zero-length file after a
///   crash;
/// - blobs are immutable and never rewritten; "already present" is success;
/// - reads used to serve content verify the digest unless the caller explicitly opts out, so a blob
///   corrupted on disk is never served (the read fails with ``StoreError/corruptBlob(_:)``).
public struct BlobStore: Sendable {
    public let root: String
    let minFreeBytes: UInt64

    init(storeRoot: String, minFreeBytes: UInt64 = 0) {
        root = storeRoot + "/blobs/sha256"
        self.minFreeBytes = minFreeBytes
    }

    /// Throws ``StoreError/storeFull(_:)`` if writing `more` bytes would leave less than the floor free;
    /// returns the bytes that may still be written above the floor afterwards (`.max` without a floor).
    @discardableResult
    public func checkSpace(more: UInt64) throws -> UInt64 {
        guard minFreeBytes > 0 else { return .max }
        var s = statvfs()
        guard statvfs(root, &s) == 0 || statvfs(directoryOf(directoryOf(root)), &s) == 0 else { return .max }
        let free = UInt64(s.f_bavail) * UInt64(s.f_frsize)
        if free < minFreeBytes + more {
            throw StoreError.storeFull(
                "writing \(more) bytes would leave \(free > more ? free - more : 0) bytes free, below the floor of \(minFreeBytes) bytes ([gc] min_free)"
            )
        }
        return free - minFreeBytes - more
    }

    public func path(_ d: SHA256Digest) -> String {
        let hex = d.hex
        return root + "/" + String(hex.prefix(2)) + "/" + hex
    }

    /// Whether the blob exists (not verified; see ``verify(_:)``).
    public func has(_ d: SHA256Digest) -> Bool {
        var st = stat()
        return lstat(path(d), &st) == 0 && (st.st_mode & S_IFMT) == S_IFREG
    }

    /// The subset of `digests` that are absent, in input order without duplicates. One reused path
    /// buffer (no string building per digest): callers check thousands of blobs at a time.
    public func missing(_ digests: some Sequence<SHA256Digest>) -> [SHA256Digest] {
        var seen = Set<SHA256Digest>()
        let paths = DigestPaths(root: root)
        var st = stat()
        return digests.filter { d in
            guard seen.insert(d).inserted else { return false }
            return paths.with(d) { fstatat($0, $1, &st, AT_SYMLINK_NOFOLLOW) } != 0 || (st.st_mode & S_IFMT) != S_IFREG
        }
    }

    /// A digest of `digests` that is absent (the first in order within each of `threads` slices), or nil
    /// when all are present — one `fstatat` each, relative to the blob root (the serve of a hit checks
    /// thousands, on every core).
    public func firstMissing(_ digests: [SHA256Digest], threads: Int = 2) -> SHA256Digest? {
        let slices = max(1, min(threads, digests.count / 512))
        let root = self.root
        let found = parallelMap(slices, threads: slices) { k -> SHA256Digest? in
            let paths = DigestPaths(root: root)
            var st = stat()
            let range = (digests.count * k / slices)..<(digests.count * (k + 1) / slices)
            return digests[range].first { d in
                paths.with(d) { fstatat($0, $1, &st, AT_SYMLINK_NOFOLLOW) } != 0 || (st.st_mode & S_IFMT) != S_IFREG
            }
        }
        return found.lazy.compactMap { $0 }.first
    }

    /// Marks a blob as just used (mtime = now) if it exists: a writer that deduplicates against a blob
    /// touches it, so gc's grace period protects it until the writer's entry is published.
    /// False if the blob does not exist (the caller must store the content itself).
    public func touchIfPresent(_ d: SHA256Digest) -> Bool {
        utimensat(AT_FDCWD, path(d), nil, AT_SYMLINK_NOFOLLOW) == 0
    }

    /// Size on disk of a present blob.
    public func size(_ d: SHA256Digest) -> UInt64? {
        var st = stat()
        guard lstat(path(d), &st) == 0 else { return nil }
        return UInt64(st.st_size)
    }

    /// Re-hashes a blob; true if present and intact.
    public func verify(_ d: SHA256Digest) -> Bool {
        guard
            let fd = try? FileDescriptor.open(
                FilePath(path(d)), .readOnly, options: [.noFollow], retryOnInterrupt: true)
        else { return false }
        defer { try? fd.close() }
        var h = StreamingSHA256()
        let buf = UnsafeMutableRawBufferPointer.allocate(byteCount: 1 << 20, alignment: 16)
        defer { buf.deallocate() }
        while true {
            guard let n = try? fd.read(into: buf, retryOnInterrupt: true) else { return false }
            if n == 0 { break }
            h.update(UnsafeRawBufferPointer(rebasing: buf[0..<n]))
        }
        return h.finalize() == d
    }

    /// A small blob's bytes, verified: ``StoreError/missingBlob(_:)`` or ``StoreError/corruptBlob(_:)``.
    public func readVerified(_ d: SHA256Digest) throws -> [UInt8] {
        guard has(d), let bytes = try? DurableFile.read(path(d)) else { throw StoreError.missingBlob(d) }
        guard SHA256Digest.of(bytes) == d else { throw StoreError.corruptBlob(d) }
        return bytes
    }

    /// Creates `dest` (which must not exist) with the blob's content and `mode`.
    ///
    /// With `verify`, the content is read, hashed and written in one pass and a mismatch removes `dest`
    /// and throws ``StoreError/corruptBlob(_:)``; without it the cheapest copy is used (reflink, then
    /// in-kernel copy).
    public func copy(
        _ d: SHA256Digest, to dest: String, mode: mode_t, verify: Bool, buffer: UnsafeMutableRawBufferPointer
    ) throws {
        #if canImport(Darwin)
            // APFS: clone by path (the destination must not exist yet); verification then only reads.
            if Syscalls.clonefile(from: path(d), to: dest) {
                _ = chmod(dest, mode)
                if verify && !self.verify(d) {
                    unlink(dest)
                    throw StoreError.corruptBlob(d)
                }
                return
            }
        #endif
        let src: FileDescriptor
        do {
            src = try FileDescriptor.open(FilePath(path(d)), .readOnly, options: [.noFollow], retryOnInterrupt: true)
        } catch {
            if (error as? Errno) == .noSuchFileOrDirectory { throw StoreError.missingBlob(d) }
            throw SystemError("open", path: path(d), errno: error)
        }
        defer { try? src.close() }
        let out = open(dest, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode)
        if out < 0 { throw SystemError("create", path: dest, errno: Errno(rawValue: errno)) }
        let dst = FileDescriptor(rawValue: out)
        var ok = false
        defer {
            try? dst.close()
            if !ok { unlink(dest) }
        }
        _ = fchmod(out, mode)
        if verify, Syscalls.ficlone(dst: dst, src: src) {
            // Reflinked (no data written): verifying only needs to read the shared extents.
            guard self.verify(d) else { throw StoreError.corruptBlob(d) }
        } else if verify {
            var h = StreamingSHA256()
            while true {
                let n: Int
                do { n = try src.read(into: buffer, retryOnInterrupt: true) } catch {
                    throw SystemError("read", path: path(d), errno: error)
                }
                if n == 0 { break }
                let chunk = UnsafeRawBufferPointer(rebasing: buffer[0..<n])
                h.update(chunk)
                do { _ = try dst.writeAll(chunk) } catch { throw SystemError("write", path: dest, errno: error) }
            }
            guard h.finalize() == d else { throw StoreError.corruptBlob(d) }
        } else if !Syscalls.ficlone(dst: dst, src: src) {
            var st = stat()
            fstat(src.rawValue, &st)
            var remaining = Int(st.st_size)
            while remaining > 0, let n = try Syscalls.copyFileRange(from: src, to: dst, count: remaining), n > 0 {
                remaining -= n
            }
            while remaining > 0 {
                let n: Int
                do { n = try src.read(into: buffer, retryOnInterrupt: true) } catch {
                    throw SystemError("read", path: path(d), errno: error)
                }
                if n == 0 { break }
                do { _ = try dst.writeAll(UnsafeRawBufferPointer(rebasing: buffer[0..<n])) } catch {
                    throw SystemError("write", path: dest, errno: error)
                }
                remaining -= n
            }
        }
        ok = true
    }
}

/// The blobs of one ingest or record, made durable and visible together.
///
/// Protocol: each blob is written (hashed as it is written) to a private staging directory
/// `blobs/.staging-<random>/` without an fsync; ``commit()`` then makes the whole staging directory
/// durable with one `syncfs` (Darwin: every file was `F_FULLFSYNC`ed as it was closed), renames each blob
/// to its final name without replacing (present = already stored: the staged copy is dropped), and makes
/// the renames durable with a second `syncfs` (Darwin: fsync of each touched shard directory). Only after
/// that may an entry referencing the blobs be published. A crash leaves a staging directory that gc
/// removes; never a visible blob with non-durable bytes.
public final class BlobBatch {
    let blobs: BlobStore
    public let staging: String
    private var staged: [SHA256Digest] = []
    private var stagedSet = Set<SHA256Digest>()
    private var committed = false
    /// Blobs that were new to the store (for reporting).
    public private(set) var newBlobs = 0
    public private(set) var newBytes: UInt64 = 0

    init(blobs: BlobStore) throws {
        self.blobs = blobs
        staging = blobs.root + "/.staging-" + String(UInt64.random(in: 0...UInt64.max), radix: 36)
        try Syscalls.makeDirectories(blobs.root)
        guard mkdir(staging, 0o700) == 0 else {
            throw SystemError("mkdir", path: staging, errno: Errno(rawValue: errno))
        }
    }

    deinit { if !committed { discard() } }

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

    func finishStaged(_ f: FileDescriptor, path: String, digest: SHA256Digest, size: UInt64) throws {
        if !Syscalls.hasSyncFilesystem { try Syscalls.fsync(f, path: path) }
        staged.append(digest)
        stagedSet.insert(digest)
        newBytes += size
    }

    /// Makes every staged blob durable and visible (see the type's protocol).
    public func commit() throws {
        precondition(!committed)
        committed = true
        defer { removeTree(staging) }
        if staged.isEmpty { return }
        _ = try Syscalls.syncFilesystem(of: staging)
        // Renamed relative to open directories (the staged name is the final name): one component looked
        // up on each side, thousands of times per ingest.
        let from = open(staging, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard from >= 0 else { throw SystemError("open", path: staging, errno: Errno(rawValue: errno)) }
        var shardFDs = [Int32](repeating: -1, count: 256)
        defer {
            close(from)
            for fd in shardFDs where fd >= 0 { close(fd) }
        }
        var shards: [String] = []
        for d in staged {
            let index = Int(d.bytes[0])
            if shardFDs[index] < 0 {
                let final = blobs.path(d)
                let shard = String(final[..<final.lastIndex(of: "/")!])
                try Syscalls.makeDirectories(shard)
                shardFDs[index] = open(shard, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
                guard shardFDs[index] >= 0 else {
                    throw SystemError("open", path: shard, errno: Errno(rawValue: errno))
                }
                shards.append(shard)
            }
            if try Syscalls.renameNoReplace(d.hex, fromDirectory: from, toDirectory: shardFDs[index]) {
                newBlobs += 1
            }
        }
        if try !Syscalls.syncFilesystem(of: blobs.root) {
            for s in shards { try Syscalls.fsyncDirectory(s) }
        }
    }

    /// Drops everything staged.
    public func discard() {
        committed = true
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
            try batch.finishStaged(fd, path: tempPath, digest: d, size: size)
            try fd.close()
        } catch {
            unlink(tempPath)
            throw error
        }
        guard rename(tempPath, final) == 0 else {
            throw SystemError("rename", path: final, errno: Errno(rawValue: errno))
        }
        return d
    }
}

extension BlobBatch {
    func stagedContains(_ d: SHA256Digest) -> Bool { stagedSet.contains(d) }
}

extension BlobStore {
    /// A new batch for storing several blobs durably and atomically-visible (see ``BlobBatch``).
    public func batch() throws -> BlobBatch { try BlobBatch(blobs: self) }
}

/// `<ab>/<hex><suffix>` relative to an open `<root>` directory, in one reusable C buffer: blob and entry
/// paths checked by the thousand (relative lookups walk two components, not the whole root path).
/// If `root` cannot be opened, paths are absolute and `dirFD` is `AT_FDCWD`.
final class DigestPaths {
    private var bytes: [CChar]
    private let prefix: Int
    let dirFD: Int32

    init(root: String, suffix: String = "") {
        let fd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        dirFD = fd >= 0 ? fd : AT_FDCWD
        let head = fd >= 0 ? [] : root.utf8.map { CChar(bitPattern: $0) } + [47]
        prefix = head.count
        bytes = head + [0, 0, 47] + [CChar](repeating: 0, count: 64) + suffix.utf8.map { CChar(bitPattern: $0) } + [0]
    }

    deinit { if dirFD != AT_FDCWD { close(dirFD) } }

    /// Calls `body(dirFD, path)` with the path of `d`.
    func with<T>(_ d: SHA256Digest, _ body: (Int32, UnsafePointer<CChar>) -> T) -> T {
        let p = prefix
        bytes.withUnsafeMutableBufferPointer { b in
            d.bytes.withUnsafeBufferPointer { raw in
                for i in 0..<32 {
                    b[p + 3 + 2 * i] = CChar(bitPattern: SHA256Digest.hexDigit(raw[i] >> 4))
                    b[p + 4 + 2 * i] = CChar(bitPattern: SHA256Digest.hexDigit(raw[i] & 15))
                }
            }
            b[p] = b[p + 3]
            b[p + 1] = b[p + 4]
        }
        return bytes.withUnsafeBufferPointer { body(dirFD, $0.baseAddress!) }
    }
}

extension LocalStore {
    /// Moves blob `d` to `quarantine/blobs/<hex>.<nanos>` (as `fsck --repair` does) if it is present and its
    /// bytes no longer hash to its name; true if it was moved. Under the exclusive store lock, so no writer
    /// is between its blob check and its publish; entries naming it then miss until it is stored again.
    public func quarantineIfCorrupt(_ d: SHA256Digest) -> Bool {
        let blobs = self.blobs
        return
            (try? StoreLock.exclusive(self) { () throws -> Bool in
                guard blobs.has(d), !blobs.verify(d) else { return false }
                let q = root + "/quarantine/blobs"
                try Syscalls.makeDirectories(q)
                return rename(blobs.path(d), q + "/" + d.hex + "." + String(Timestamp.nowNanos())) == 0
            }) ?? false
    }
}
