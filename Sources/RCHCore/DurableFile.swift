import SystemPackage

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// A temporary file that becomes visible under its final name only when committed.
///
/// Publish protocol (every durable write in this package goes through here):
/// 1. create `<dir>/.tmp-<random>` with `O_CREAT|O_EXCL` in the *same directory* as the final name,
///    so the publish is a same-filesystem rename;
/// 2. write the content;
/// 3. `fsync` the file;
/// 4. rename to the final name — with `replace: false` a no-replace rename, where "already exists" is
///    reported (content-addressed callers treat it as success and discard the temp file);
/// 5. `fsync` the directory so the new name itself is durable.
/// A temp file that is never committed is unlinked on ``discard()`` or `deinit`; one left behind by a
/// crash keeps its `.tmp-` prefix and is never mistaken for content (gc removes stale ones).
public final class TempFile {
    public let directory: String
    public let path: String
    public let fd: FileDescriptor
    private var open = true
    private var done = false

    /// The prefix every temp file name starts with; nothing else in a store directory starts with it.
    public static let prefix = ".tmp-"

    public init(directory: String, mode: mode_t = 0o644) throws {
        self.directory = directory
        var attempt = 0
        while true {
            let name = Self.prefix + String(UInt64.random(in: 0...UInt64.max), radix: 36)
            let candidate = directory + "/" + name
            do {
                fd = try FileDescriptor.open(
                    FilePath(candidate), .readWrite, options: [.create, .exclusiveCreate],
                    permissions: FilePermissions(rawValue: mode), retryOnInterrupt: true)
                path = candidate
                return
            } catch Errno.fileExists where attempt < 8 {
                attempt += 1
            } catch {
                throw SystemError("create temp file", path: candidate, errno: error)
            }
        }
    }

    /// Write all of `buffer`.
    public func write(_ buffer: UnsafeRawBufferPointer) throws {
        do { _ = try fd.writeAll(buffer) } catch let e as Errno { throw SystemError("write", path: path, errno: e) }
    }

    public func write(_ bytes: [UInt8]) throws {
        try bytes.withUnsafeBytes { try write($0) }
    }

    /// fsync, close and rename to `finalPath` (which must be in ``directory``), then fsync the directory.
    /// - Returns: false if `replace` is false and `finalPath` already existed (the temp file is removed).
    @discardableResult
    public func commit(to finalPath: String, replace: Bool = true, durable: Bool = true) throws -> Bool {
        precondition(!done, "TempFile committed twice")
        if durable { try Syscalls.fsync(fd, path: path) }
        try closeFD()
        done = true
        if replace {
            try Syscalls.rename(from: path, to: finalPath)
        } else if try !Syscalls.renameNoReplace(from: path, to: finalPath) {
            _ = unlink(path)
            return false
        }
        if durable { try Syscalls.fsyncDirectory(directory) }
        return true
    }

    /// Remove the temp file without publishing it.
    public func discard() {
        guard !done else { return }
        done = true
        try? closeFD()
        _ = unlink(path)
    }

    private func closeFD() throws {
        guard open else { return }
        open = false
        do { try fd.close() } catch { throw SystemError("close", path: path, errno: error) }
    }

    deinit { discard() }
}

/// Whole-file helpers for small files (manifests, indexes, config).
public enum DurableFile {
    /// Atomically and durably replace (or create) `path` with `bytes`.
    /// With `durable: false` the fsyncs are skipped (for files inside a staging directory that is made
    /// durable or discarded as a whole).
    public static func write(
        _ bytes: [UInt8], to path: String, replace: Bool = true, mode: mode_t = 0o644, durable: Bool = true
    ) throws -> Bool {
        let dir = FilePath(path).removingLastComponent().string
        let tmp = try TempFile(directory: dir.isEmpty ? "." : dir, mode: mode)
        do {
            try tmp.write(bytes)
            return try tmp.commit(to: path, replace: replace, durable: durable)
        } catch {
            tmp.discard()
            throw error
        }
    }

    /// Read a whole (small) file, sized by fstat (reads on if the file grew).
    public static func read(_ path: String, limit: Int = 64 << 20) throws -> [UInt8] {
        try readWithStatus(path, limit: limit).bytes
    }

    /// ``read(_:limit:)`` that also returns the open file's `stat` (one lookup for both), with `path`
    /// relative to `directory` (a descriptor) unless it is `AT_FDCWD`.
    public static func readWithStatus(_ path: String, relativeTo directory: Int32 = AT_FDCWD, limit: Int = 64 << 20)
        throws -> (bytes: [UInt8], status: stat)
    {
        let fd = openat(directory, path, O_RDONLY | O_CLOEXEC)
        if fd < 0 { throw SystemError("open", path: path, errno: Errno(rawValue: errno)) }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0 else { throw SystemError("fstat", path: path, errno: Errno(rawValue: errno)) }
        if Int(st.st_size) > limit { throw SystemError("read", path: path, errno: .fileTooLarge) }
        var out = [UInt8](repeating: 0, count: Int(st.st_size) + 1)
        var n = 0
        while true {
            if n == out.count {
                if out.count > limit { throw SystemError("read", path: path, errno: .fileTooLarge) }
                out += [UInt8](repeating: 0, count: max(4096, out.count))
            }
            let r = out.withUnsafeMutableBytes { Glibc_read(fd, $0.baseAddress! + n, $0.count - n) }
            if r < 0 {
                if errno == EINTR { continue }
                throw SystemError("read", path: path, errno: Errno(rawValue: errno))
            }
            if r == 0 { break }
            n += r
        }
        out.removeSubrange(n...)
        return (out, st)
    }
}

@inline(__always) private func Glibc_read(_ fd: Int32, _ p: UnsafeMutableRawPointer, _ n: Int) -> Int { read(fd, p, n) }

/// The directory part of `path` (`"."` for a bare name, `"/"` for a file at the root).
public func directoryOf(_ path: String) -> String {
    guard let slash = path.lastIndex(of: "/") else { return "." }
    let d = String(path[..<slash])
    return d.isEmpty ? "/" : d
}

/// `rm -rf` without following symlinks. Used only on directories this package created (staging, temp
/// and job directories); errors are ignored (what remains is reported by fsck and removed by gc).
public func removeTree(_ path: String) {
    var st = stat()
    guard lstat(path, &st) == 0 else { return }
    if (st.st_mode & S_IFMT) == S_IFDIR {
        for n in (try? Directory.list(path)) ?? [] { removeTree(path + "/" + n) }
        rmdir(path)
    } else {
        unlink(path)
    }
}

/// A mutable reference cell. Each box is either confined to one thread at a time or guarded by its
/// user's lock, which is why the unchecked `Sendable` conformance is sound.
public final class Box<T>: @unchecked Sendable {
    public var value: T
    public init(_ v: T) { value = v }
}
