import SystemPackage

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Copies file contents the cheapest way the filesystem allows.
///
/// Order: reflink (Linux `FICLONE`; APFS `clonefile` is used by callers that can create the target by
/// path), then in-kernel `copy_file_range`, then a plain read/write loop.
public enum FileCopy {
    public enum Method: String, Sendable { case clone, kernelCopy = "copy_file_range", readWrite = "read_write" }

    /// Copies all of `source` into the (empty) temp file `dest`.
    @discardableResult
    public static func copy(from source: String, into dest: TempFile) throws -> Method {
        let src: FileDescriptor
        do {
            src = try FileDescriptor.open(FilePath(source), .readOnly, options: [.noFollow], retryOnInterrupt: true)
        } catch {
            throw SystemError("open", path: source, errno: error)
        }
        defer { try? src.close() }
        if Syscalls.ficlone(dst: dest.fd, src: src) { return .clone }
        var st = stat()
        guard fstat(src.rawValue, &st) == 0 else {
            throw SystemError("fstat", path: source, errno: Errno(rawValue: errno))
        }
        var remaining = Int(st.st_size)
        var usedKernel = false
        while remaining > 0 {
            guard let n = try Syscalls.copyFileRange(from: src, to: dest.fd, count: min(remaining, 1 << 30)) else {
                break
            }
            if n == 0 { break }
            usedKernel = true
            remaining -= n
        }
        if remaining == 0 { return usedKernel ? .kernelCopy : .readWrite }
        let buf = UnsafeMutableRawBufferPointer.allocate(byteCount: 1 << 20, alignment: 16)
        defer { buf.deallocate() }
        try FileChunks.read(src, path: source, buffer: buf) { try dest.write($0) }
        return .readWrite
    }
}
