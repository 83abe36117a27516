import CRCHSys
import SystemPackage

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// The small set of syscalls swift-system does not offer: fsync, no-replace rename/link, flock,
/// clone and in-kernel copy. Each wrapper retries on EINTR and throws ``SystemError``.
public enum Syscalls {
    @inline(__always)
    static func retrying(_ body: () -> Int32) -> Int32 {
        while true {
            let r = body()
            if r == -1 && errno == EINTR { continue }
            return r
        }
    }

    static func check(_ op: String, _ path: String?, _ body: () -> Int32) throws(SystemError) {
        if retrying(body) == -1 { throw SystemError(op, path: path, errno: Errno(rawValue: errno)) }
    }

    /// fsync(2): the file's data and metadata reach stable storage.
    public static func fsync(_ fd: FileDescriptor, path: String? = nil) throws(SystemError) {
        #if canImport(Darwin)
            // On Darwin fsync does not flush the drive cache; F_FULLFSYNC does (falls back to fsync).
            if retrying({ fcntl(fd.rawValue, F_FULLFSYNC) }) == 0 { return }
        #endif
        try check("fsync", path) { Glibc_or_Darwin_fsync(fd.rawValue) }
    }

    /// fsync a directory so that a rename/link/unlink inside it is durable.
    public static func fsyncDirectory(_ path: String) throws(SystemError) {
        let fd: FileDescriptor
        do {
            fd = try FileDescriptor.open(FilePath(path), .readOnly, options: [.directory], retryOnInterrupt: true)
        } catch { throw SystemError("open directory", path: path, errno: error) }
        defer { try? fd.close() }
        try fsync(fd, path: path)
    }

    /// Publish `from` at `to` unless `to` exists. Returns false (and leaves `from` in place) if `to`
    /// already exists. Uses renameat2(RENAME_NOREPLACE)/renamex_np(RENAME_EXCL), falling back to
    /// link+unlink on filesystems that do not support it (files only).
    @discardableResult
    public static func renameNoReplace(from: String, to: String) throws(SystemError) -> Bool {
        try renameNoReplace(from, in: AT_FDCWD, to: to, in: AT_FDCWD)
    }

    /// ``renameNoReplace(from:to:)`` of `name` in the directory `fromDir` to the same name in `toDir` (open
    /// directory descriptors: one component looked up each, for commits of thousands of files).
    public static func renameNoReplace(_ name: String, fromDirectory fromDir: Int32, toDirectory toDir: Int32)
        throws(SystemError) -> Bool
    {
        try renameNoReplace(name, in: fromDir, to: name, in: toDir)
    }

    /// The one implementation: paths relative to directory descriptors (`AT_FDCWD`: to the working directory).
    private static func renameNoReplace(_ from: String, in fromDir: Int32, to: String, in toDir: Int32)
        throws(SystemError) -> Bool
    {
        let r = retrying { CRCHSys_rename_noreplace(fromDir, from, toDir, to) }
        if r == 0 { return true }
        let e = errno
        if e == EEXIST { return false }
        if e == EINVAL || e == ENOSYS || e == ENOTSUP {
            let l = retrying { linkat(fromDir, from, toDir, to, 0) }
            if l == -1 {
                if errno == EEXIST { return false }
                throw SystemError("link", path: to, errno: Errno(rawValue: errno))
            }
            _ = unlinkat(fromDir, from, 0)
            return true
        }
        throw SystemError("rename", path: to, errno: Errno(rawValue: e))
    }

    /// rename(2), replacing `to` atomically.
    public static func rename(from: String, to: String) throws(SystemError) {
        try check("rename", to) { Glibc_or_Darwin_rename(from, to) }
    }

    /// flock(2) on an open descriptor. Returns false if `blocking` is false and the lock is held.
    public static func flock(_ fd: FileDescriptor, exclusive: Bool, blocking: Bool, path: String? = nil)
        throws(SystemError) -> Bool
    {
        var op = exclusive ? LOCK_EX : LOCK_SH
        if !blocking { op |= LOCK_NB }
        let r = retrying { Glibc_or_Darwin_flock(fd.rawValue, op) }
        if r == 0 { return true }
        if errno == EWOULDBLOCK { return false }
        throw SystemError("flock", path: path, errno: Errno(rawValue: errno))
    }

    /// Makes everything written so far on the filesystem of `directory` durable (Linux `syncfs`).
    /// Returns false where unsupported (Darwin): callers must then fsync files one by one.
    public static func syncFilesystem(of directory: String) throws(SystemError) -> Bool {
        let fd = open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if fd < 0 { throw SystemError("open", path: directory, errno: Errno(rawValue: errno)) }
        defer { close(fd) }
        if retrying({ CRCHSys_syncfs(fd) }) == 0 { return true }
        if errno == ENOTSUP || errno == ENOSYS { return false }
        throw SystemError("syncfs", path: directory, errno: Errno(rawValue: errno))
    }

    /// Whether ``syncFilesystem(of:)`` is available on this platform.
    public static var hasSyncFilesystem: Bool {
        #if os(Linux)
            true
        #else
            false
        #endif
    }

    /// Reflink `src` into the empty `dst` (Linux FICLONE). Returns false when unsupported.
    public static func ficlone(dst: FileDescriptor, src: FileDescriptor) -> Bool {
        CRCHSys_ficlone(dst.rawValue, src.rawValue) == 0
    }

    /// Darwin clonefile(2). Returns false when unsupported (Linux, non-APFS, cross-device).
    public static func clonefile(from: String, to: String) -> Bool {
        CRCHSys_clonefile(from, to) == 0
    }

    /// copy_file_range(2) from current offsets; returns bytes copied, 0 at EOF, nil if unsupported.
    public static func copyFileRange(from: FileDescriptor, to: FileDescriptor, count: Int) throws(SystemError) -> Int? {
        while true {
            let n = CRCHSys_copy_file_range(from.rawValue, to.rawValue, UInt64(count))
            if n >= 0 { return Int(n) }
            let e = errno
            if e == EINTR { continue }
            if e == ENOSYS || e == EXDEV || e == EINVAL || e == EOPNOTSUPP || e == ENOTSUP { return nil }
            throw SystemError("copy_file_range", errno: Errno(rawValue: e))
        }
    }

    /// mkdir -p with the given mode; existing directories are fine.
    public static func makeDirectories(_ path: String, mode: mode_t = 0o755) throws(SystemError) {
        if mkdir(path, mode) == 0 { return }
        let e = errno
        if e == EEXIST {
            var st = stat()
            if stat(path, &st) == 0 && (st.st_mode & S_IFMT) == S_IFDIR { return }
            throw SystemError("mkdir", path: path, errno: Errno(rawValue: EEXIST))
        }
        if e == ENOENT {
            let parent = FilePath(path).removingLastComponent().string
            if !parent.isEmpty && parent != path {
                try makeDirectories(parent, mode: mode)
                if mkdir(path, mode) == 0 || errno == EEXIST { return }
            }
        }
        throw SystemError("mkdir", path: path, errno: Errno(rawValue: e))
    }

    /// lstat(2); nil if the path does not exist.
    public static func lstatIfExists(_ path: String) throws(SystemError) -> stat? {
        var st = stat()
        if lstat(path, &st) == 0 { return st }
        if errno == ENOENT { return nil }
        throw SystemError("lstat", path: path, errno: Errno(rawValue: errno))
    }
}

// Unqualified names would resolve to our own static members inside `Syscalls`.
@inline(__always) private func Glibc_or_Darwin_fsync(_ fd: Int32) -> Int32 { fsync(fd) }
@inline(__always) private func Glibc_or_Darwin_rename(_ a: String, _ b: String) -> Int32 { rename(a, b) }
@inline(__always) private func Glibc_or_Darwin_flock(_ fd: Int32, _ op: Int32) -> Int32 { flock(fd, op) }
