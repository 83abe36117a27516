internal import CArchive
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Writes the canonical tar stream (bundle format v1) through libarchive.
///
/// Canonical tar settings (the invariant this type owns):
/// - format `pax_restricted` (plain ustar headers; a pax `x` header carrying only `path=`/`linkpath=`
///   when a name is non-ASCII or does not fit ustar), no compression filter;
/// - `bytes_per_block` 10240 and `bytes_in_last_block` 1: the stream ends right after the two
///   512-byte zero blocks, with no padding, whatever the destination;
/// - every entry is built fresh (never from `stat`, never `read_disk`): pathname (UTF-8), type regular
///   or symlink, perm 0644/0755/0777, size (0 for symlinks), mtime 0, uid/gid 0, no user/group names;
/// - all calls run under a thread-local UTF-8 `LC_CTYPE` (`uselocale`), because libarchive converts
///   names through the current locale (a C locale changes the bytes or crashes, libarchive #2233);
/// - any status other than `ARCHIVE_OK` (warnings included) is an error.
final class CanonicalTarWriter {
    typealias Sink = (UnsafeRawBufferPointer) throws -> Void

    private let archive: OpaquePointer
    private let sink: Sink
    private var sinkError: (any Error)?
    private var closed = false
    private var box: Unmanaged<CanonicalTarWriter>?

    init(sink: @escaping Sink) throws {
        guard let a = archive_write_new() else { throw BundleError.library(operation: "archive_write_new", message: "out of memory") }
        archive = a
        self.sink = sink
        try UTF8Locale.with {
            try check(archive_write_set_format_pax_restricted(a), "archive_write_set_format_pax_restricted")
            try check(archive_write_add_filter_none(a), "archive_write_add_filter_none")
            try check(archive_write_set_bytes_per_block(a, 10240), "archive_write_set_bytes_per_block")
            try check(archive_write_set_bytes_in_last_block(a, 1), "archive_write_set_bytes_in_last_block")
            let unmanaged = Unmanaged.passUnretained(self)
            box = unmanaged
            let write: @convention(c) (OpaquePointer?, UnsafeMutableRawPointer?, UnsafeRawPointer?, Int) -> Int = { _, ctx, buf, len in
                let me = Unmanaged<CanonicalTarWriter>.fromOpaque(ctx!).takeUnretainedValue()
                do {
                    try me.sink(UnsafeRawBufferPointer(start: buf, count: len))
                    return len
                } catch {
                    me.sinkError = error
                    return -1
                }
            }
            try check(archive_write_open2(a, unmanaged.toOpaque(), nil, write, nil, nil), "archive_write_open")
        }
    }

    deinit {
        if !closed { _ = UTF8Locale.with { archive_write_close(archive) } }
        archive_write_free(archive)
    }

    /// Writes the header of a regular file; its `size` bytes must follow through ``writeData(_:)``.
    func beginFile(path: String, size: UInt64, executable: Bool) throws {
        try writeHeader(path: path, type: 0o100000, perm: executable ? 0o755 : 0o644, size: size, target: nil)
    }

    /// Writes a symlink entry.
    func symlink(path: String, target: String) throws {
        try writeHeader(path: path, type: 0o120000, perm: 0o777, size: 0, target: target)
    }

    func writeData(_ buf: UnsafeRawBufferPointer) throws {
        guard buf.count > 0 else { return }
        let n = UTF8Locale.with { archive_write_data(archive, buf.baseAddress, buf.count) }
        if n != buf.count { throw failure("archive_write_data") }
    }

    /// Finishes the archive (two zero blocks) and flushes everything to the sink.
    func finish() throws {
        closed = true
        try UTF8Locale.with { try check(archive_write_close(archive), "archive_write_close") }
    }

    private func writeHeader(path: String, type: UInt32, perm: UInt32, size: UInt64, target: String?) throws {
        guard let e = archive_entry_new() else { throw BundleError.library(operation: "archive_entry_new", message: "out of memory") }
        defer { archive_entry_free(e) }
        try UTF8Locale.with {
            archive_entry_set_pathname_utf8(e, path)
            archive_entry_set_filetype(e, type)
            archive_entry_set_perm(e, perm)
            archive_entry_set_size(e, Int64(size))
            archive_entry_set_mtime(e, 0, 0)
            archive_entry_set_uid(e, 0)
            archive_entry_set_gid(e, 0)
            if let target { archive_entry_set_symlink_utf8(e, target) }
            try check(archive_write_header(archive, e), "archive_write_header(\(path))")
        }
    }

    private func check(_ status: Int32, _ op: String) throws {
        if status != ARCHIVE_OK { throw failure(op) }
    }

    private func failure(_ op: String) -> any Error {
        if let sinkError { return sinkError }
        let msg = archive_error_string(archive).map { String(cString: $0) } ?? "unknown libarchive error"
        return BundleError.library(operation: op, message: msg)
    }
}

/// A thread-local UTF-8 LC_CTYPE for the duration of a libarchive call.
enum UTF8Locale {
    /// Created once; a process that cannot create any UTF-8 locale cannot bundle (fails loudly).
    nonisolated(unsafe) static let locale: locale_t? = {
        for name in ["C.UTF-8", "C.utf8", "en_US.UTF-8", "UTF-8"] {
            if let l = newlocale(CArchive_LC_CTYPE_MASK(), name, nil) { return l }
        }
        return nil
    }()

    static func with<T>(_ body: () throws -> T) rethrows -> T {
        guard let l = locale else {
            fatalError("no UTF-8 locale (C.UTF-8 or en_US.UTF-8) is available; install one (e.g. the locales package)")
        }
        let old = uselocale(l)
        defer { uselocale(old) }
        return try body()
    }
}

/// libarchive's version string, recorded (informationally) in manifests.
enum LibarchiveInfo {
    static var version: String { String(cString: archive_version_string()) }
}
