import SystemPackage

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Directory listing.
///
/// Invariant: a `dirent` is a variable-length record — only `d_reclen` bytes of it exist — so its name is
/// read through a pointer up to its NUL, never by copying the fixed-size `d_name` field (which can read
/// past the end of libc's directory buffer and fault).
public enum Directory {
    /// The name of a directory entry as raw bytes (no copy of the `dirent` itself).
    public static func nameBytes(_ ent: UnsafeMutablePointer<dirent>) -> UnsafeRawBufferPointer {
        let p = UnsafeRawPointer(ent).advanced(by: MemoryLayout<dirent>.offset(of: \dirent.d_name)!)
            .assumingMemoryBound(to: CChar.self)
        return UnsafeRawBufferPointer(start: p, count: strlen(p))
    }

    /// The name as a C string pointer (valid until the next `readdir` on the same stream).
    public static func namePointer(_ ent: UnsafeMutablePointer<dirent>) -> UnsafePointer<CChar> {
        UnsafeRawPointer(ent).advanced(by: MemoryLayout<dirent>.offset(of: \dirent.d_name)!).assumingMemoryBound(
            to: CChar.self)
    }

    /// The names in `dir` other than `.` and `..`; a missing directory lists as empty.
    public static func list(_ dir: String) throws -> [String] {
        guard let d = opendir(dir) else {
            if errno == ENOENT { return [] }
            throw SystemError("opendir", path: dir, errno: Errno(rawValue: errno))
        }
        defer { closedir(d) }
        var out: [String] = []
        while let e = readdir(d) {
            let n = String(decoding: nameBytes(e), as: UTF8.self)
            if n != "." && n != ".." { out.append(n) }
        }
        return out
    }
}
