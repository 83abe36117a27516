import SystemPackage

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Streaming reads of whole files in buffer-sized chunks (memory independent of file size).
public enum FileChunks {
    /// Hands every chunk of `fd`, from its current offset to the end, to `body`.
    public static func read(
        _ fd: FileDescriptor, path: String, buffer: UnsafeMutableRawBufferPointer,
        _ body: (UnsafeRawBufferPointer) throws -> Void
    ) throws {
        while true {
            let n: Int
            do { n = try fd.read(into: buffer, retryOnInterrupt: true) } catch {
                throw SystemError("read", path: path, errno: error)
            }
            if n == 0 { return }
            try body(UnsafeRawBufferPointer(rebasing: buffer[0..<n]))
        }
    }

    /// Opens `path` (never following a symlink) and hands every chunk to `body`.
    public static func read(
        path: String, buffer: UnsafeMutableRawBufferPointer, _ body: (UnsafeRawBufferPointer) throws -> Void
    ) throws {
        let fd: FileDescriptor
        do {
            fd = try FileDescriptor.open(FilePath(path), .readOnly, options: [.noFollow], retryOnInterrupt: true)
        } catch {
            throw SystemError("open", path: path, errno: error)
        }
        defer { try? fd.close() }
        try read(fd, path: path, buffer: buffer, body)
    }

    /// SHA-256 and length of what remains of `fd`.
    public static func sha256(_ fd: FileDescriptor, path: String) throws -> (digest: SHA256Digest, count: UInt64) {
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 1 << 20, alignment: 16)
        defer { buffer.deallocate() }
        var h = StreamingSHA256()
        try read(fd, path: path, buffer: buffer) { h.update($0) }
        return (h.finalize(), h.byteCount)
    }
}

/// The per-user base directories (XDG, with the usual fallbacks).
public enum UserDirectories {
    public static func home(_ env: [String: String]) -> String {
        if let h = env["HOME"], !h.isEmpty { return h }
        if let pw = getpwuid(getuid()), let dir = pw.pointee.pw_dir { return String(cString: dir) }
        return "/"
    }

    /// `$XDG_CONFIG_HOME`, else `~/.config`.
    public static func configHome(_ env: [String: String]) -> String {
        env["XDG_CONFIG_HOME"].flatMap { $0.isEmpty ? nil : $0 } ?? home(env) + "/.config"
    }

    /// `$XDG_DATA_HOME`, else `~/.local/share`.
    public static func dataHome(_ env: [String: String]) -> String {
        env["XDG_DATA_HOME"].flatMap { $0.isEmpty ? nil : $0 } ?? home(env) + "/.local/share"
    }
}
