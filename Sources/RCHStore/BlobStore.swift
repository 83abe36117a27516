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
