#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// The stat fields that identify a file's version: what the stat cache keys on and what the bundler
/// re-checks after reading a file to detect concurrent modification.
public struct FileIdentity: Hashable, Sendable {
    public var device: UInt64
    public var inode: UInt64
    public var size: UInt64
    public var mtimeNanos: Int64
    public var ctimeNanos: Int64
    public var mode: UInt32

    public init(device: UInt64, inode: UInt64, size: UInt64, mtimeNanos: Int64, ctimeNanos: Int64, mode: UInt32) {
        self.device = device
        self.inode = inode
        self.size = size
        self.mtimeNanos = mtimeNanos
        self.ctimeNanos = ctimeNanos
        self.mode = mode
    }

    public init(_ st: stat) {
        device = UInt64(truncatingIfNeeded: st.st_dev)
        inode = UInt64(truncatingIfNeeded: st.st_ino)
        size = UInt64(truncatingIfNeeded: st.st_size)
        mode = UInt32(st.st_mode)
        #if canImport(Darwin)
            mtimeNanos = Int64(st.st_mtimespec.tv_sec) * 1_000_000_000 + Int64(st.st_mtimespec.tv_nsec)
            ctimeNanos = Int64(st.st_ctimespec.tv_sec) * 1_000_000_000 + Int64(st.st_ctimespec.tv_nsec)
        #else
            mtimeNanos = Int64(st.st_mtim.tv_sec) * 1_000_000_000 + Int64(st.st_mtim.tv_nsec)
            ctimeNanos = Int64(st.st_ctim.tv_sec) * 1_000_000_000 + Int64(st.st_ctim.tv_nsec)
        #endif
    }

    public var isExecutable: Bool { mode & 0o111 != 0 }
}
