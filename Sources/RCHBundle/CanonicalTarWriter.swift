/// Writes the canonical tar stream (bundle format v1): headers from ``TarHeaderEncoder``, file data
/// padded to 512 bytes, two zero blocks at the end and nothing after them.
///
/// Invariant: the bytes depend only on the entries given (never on a library's build, the locale or the
/// file system): an entry is a path, and either a file (size, executable bit) whose exactly `size` bytes
/// follow through ``writeData(_:)``, or a symlink target. A file of 8 GiB or more cannot be encoded
/// (the bundler refuses it with `LIMIT_EXCEEDED`); writing more or fewer bytes than declared is an error.
final class CanonicalTarWriter {
    typealias Sink = (UnsafeRawBufferPointer) throws -> Void

    private let sink: Sink
    /// Called at the end of each entry (after its padding): the stream is then at a multiple of 512 bytes.
    var boundary: (() throws -> Void)?
    private var entryOpen = false
    private var remaining: UInt64 = 0
    private var pad = 0
    private var currentPath = ""
    private var finished = false

    init(sink: @escaping Sink) throws {
        self.sink = sink
    }

    /// Writes the header of a regular file; its `size` bytes must follow through ``writeData(_:)``.
    func beginFile(path: String, size: UInt64, executable: Bool) throws {
        guard size <= TarHeaderEncoder.maxFileSize else {
            throw BundleError.limitExceeded("'\(path)' is \(size) bytes; files of 8 GiB or more cannot be bundled")
        }
        try closeEntry()
        try emit(TarHeaderEncoder.encode(path: Array(path.utf8), kind: .file(size: size, executable: executable)))
        remaining = size
        pad = TarHeaderEncoder.padding(size)
        currentPath = path
    }

    /// Writes a symlink entry.
    func symlink(path: String, target: String) throws {
        try closeEntry()
        try emit(TarHeaderEncoder.encode(path: Array(path.utf8), kind: .symlink(target: Array(target.utf8))))
    }

    func writeData(_ buf: UnsafeRawBufferPointer) throws {
        try writeData(buf, via: sink)
    }

    /// ``writeData(_:)`` whose bytes go through `direct` instead of the writer's sink (to the same stream: the
    /// bundler hashes a file's data and the stream in one pass).
    func writeData(_ buf: UnsafeRawBufferPointer, via direct: Sink) throws {
        guard buf.count > 0 else { return }
        guard UInt64(buf.count) <= remaining else {
            throw BundleError.fileChanged(path: currentPath)
        }
        remaining -= UInt64(buf.count)
        try direct(buf)
    }

    /// Finishes the archive (two zero blocks) and flushes everything to the sink.
    func finish() throws {
        precondition(!finished, "finish() called twice")
        try closeEntry()
        try emit(TarHeaderEncoder.end)
        finished = true
    }

    /// Completes the current file: all its bytes written, then the padding.
    private func closeEntry() throws {
        guard remaining == 0 else {
            throw BundleError.fileChanged(path: currentPath)
        }
        if pad > 0 {
            try emit([UInt8](repeating: 0, count: pad))
            pad = 0
        }
        if entryOpen { try boundary?() }
        entryOpen = true
    }

    private func emit(_ bytes: [UInt8]) throws {
        try bytes.withUnsafeBytes { try sink($0) }
    }
}
