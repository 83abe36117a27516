import RCHCore
import SystemPackage

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// `stream`: the description of the raw bytes that follow a header line.
///
/// Invariant: `content_sha256` is the SHA-256 of exactly the `content_length` raw bytes as sent
/// (compressed, if `compression` is `zstd`); the receiver checks length and digest before it trusts
/// anything decoded from them.
public struct StreamDescriptor: Sendable, Equatable {
    public enum Compression: String, Sendable { case none, zstd }
    public var contentLength: UInt64
    public var contentSHA256: SHA256Digest
    public var compression: Compression
    public var format: String

    public init(
        contentLength: UInt64, contentSHA256: SHA256Digest, compression: Compression = .zstd, format: String = "tar"
    ) {
        self.contentLength = contentLength
        self.contentSHA256 = contentSHA256
        self.compression = compression
        self.format = format
    }

    public var json: JSONValue {
        .obj([
            "content_length": .int(Int64(contentLength)), "content_sha256": .string(contentSHA256.hex),
            "compression": .string(compression.rawValue), "format": .string(format),
        ])
    }

    public init(json v: JSONValue?) throws(RPCError) {
        guard let o = v?.objectValue else { throw .invalid("payload.stream is required (an object)") }
        for k in o.keys where !["content_length", "content_sha256", "compression", "format"].contains(k) {
            throw .invalid("unknown stream member '\(k)'")
        }
        guard case .int(let n)? = o["content_length"], n >= 0 else {
            throw .invalid("stream.content_length must be a non-negative integer")
        }
        guard let hex = o["content_sha256"]?.stringValue, let d = SHA256Digest(hex: hex) else {
            throw .invalid("stream.content_sha256 must be 64 lowercase hex characters")
        }
        guard let c = o["compression"]?.stringValue.flatMap(Compression.init(rawValue:)) else {
            throw .invalid("stream.compression must be none or zstd")
        }
        guard o["format"]?.stringValue == "tar" else { throw .invalid("stream.format must be tar") }
        self.init(contentLength: UInt64(n), contentSHA256: d, compression: c, format: "tar")
    }
}

/// Reads one framed message from a file descriptor: a bounded header line, then an exact body.
///
/// Invariant: the reader never consumes more than the header line + `content_length` bytes + one byte
/// of look-ahead (to prove end of input); memory is bounded by the header limit plus one buffer.
public final class FrameReader {
    public let fd: FileDescriptor
    private var buffer: UnsafeMutableRawBufferPointer
    private var start = 0, end = 0
    public private(set) var bytesRead: UInt64 = 0

    /// Longest wait for the next byte (nil: forever). A peer that stalls longer is cut off with
    /// ``ReadTimeout``, so a stalled client cannot hold a worker process (and its partial upload) forever.
    public var idleTimeoutSeconds: Double?

    public init(fd: FileDescriptor, bufferSize: Int = 1 << 20, idleTimeoutSeconds: Double? = nil) {
        self.fd = fd
        self.idleTimeoutSeconds = idleTimeoutSeconds
        buffer = .allocate(byteCount: bufferSize, alignment: 16)
    }

    /// No byte arrived within ``idleTimeoutSeconds``.
    public struct ReadTimeout: Error, CustomStringConvertible, Sendable {
        public var seconds: Double
        public var bytesRead: UInt64
        public var description: String {
            "no data for \(Int(seconds)) s after \(bytesRead) bytes: the request was abandoned ([worker] read_timeout)"
        }
    }

    deinit { buffer.deallocate() }

    private func fill() throws -> Bool {
        if start == end {
            start = 0
            end = 0
        }
        if end == buffer.count {
            // Compact (only happens while a header line grows).
            if start > 0 {
                buffer.baseAddress!.copyMemory(from: buffer.baseAddress! + start, byteCount: end - start)
                end -= start
                start = 0
            } else {
                return true
            }
        }
        try waitForInput()
        let n: Int
        do {
            n = try fd.read(into: UnsafeMutableRawBufferPointer(rebasing: buffer[end...]), retryOnInterrupt: true)
        } catch {
            throw SystemError("read", path: "<rpc stream>", errno: error)
        }
        end += n
        bytesRead += UInt64(n)
        return n > 0
    }

    /// Waits up to ``idleTimeoutSeconds`` for input (a no-op without a timeout).
    private func waitForInput() throws {
        guard let idle = idleTimeoutSeconds else { return }
        var p = pollfd(fd: fd.rawValue, events: Int16(POLLIN), revents: 0)
        var r: Int32
        repeat { r = poll(&p, 1, Int32(min(idle * 1000, Double(Int32.max)))) } while r < 0 && errno == EINTR
        if r == 0 { throw ReadTimeout(seconds: idle, bytesRead: bytesRead) }
    }

    public enum HeaderError: Error { case tooLong(Int), empty, unterminated }

    /// The header line without its `\n` (a last line without `\n` at end of input is accepted).
    public func readHeaderLine(maxBytes: Int) throws -> [UInt8] {
        var line: [UInt8] = []
        while true {
            if start == end, !(try fill()) {
                if line.isEmpty { throw HeaderError.empty }
                return line
            }
            let avail = UnsafeRawBufferPointer(rebasing: buffer[start..<end])
            if let nl = avail.firstIndex(of: 10) {
                line.append(contentsOf: avail[..<nl])
                start += nl + 1
                guard line.count <= maxBytes else { throw HeaderError.tooLong(maxBytes) }
                return line
            }
            line.append(contentsOf: avail)
            start = end
            guard line.count <= maxBytes else { throw HeaderError.tooLong(maxBytes) }
        }
    }

    /// Reads exactly `count` bytes, handing them to `sink` in chunks; returns how many arrived (less
    /// than `count` only if the input ended early).
    public func readBody(count: UInt64, _ sink: (UnsafeRawBufferPointer) throws -> Void) throws -> UInt64 {
        var left = count
        while left > 0 {
            if start == end, !(try fill()) { break }
            let n = min(Int(clamping: left), end - start)
            try sink(UnsafeRawBufferPointer(rebasing: buffer[start..<(start + n)]))
            start += n
            left -= UInt64(n)
        }
        return count - left
    }

    /// Copies up to `dst.count` bytes of what follows into `dst` (reading more input only when nothing is
    /// buffered); 0 at end of input. The caller bounds `dst` by what the frame still owes.
    public func read(into dst: UnsafeMutableRawBufferPointer) throws -> Int {
        guard dst.count > 0 else { return 0 }
        if start == end {
            // Nothing buffered: read straight into `dst` (one copy less for a large body).
            try waitForInput()
            let n: Int
            do { n = try fd.read(into: dst, retryOnInterrupt: true) } catch {
                throw SystemError("read", path: "<rpc stream>", errno: error)
            }
            bytesRead += UInt64(n)
            return n
        }
        let n = min(dst.count, end - start)
        dst.baseAddress!.copyMemory(from: buffer.baseAddress! + start, byteCount: n)
        start += n
        return n
    }

    /// True if nothing but JSON whitespace remains before end of input (reads at most one buffer more).
    public func atEnd() throws -> Bool {
        while true {
            if start == end, !(try fill()) { return true }
            let avail = UnsafeRawBufferPointer(rebasing: buffer[start..<end])
            guard avail.allSatisfy({ $0 == 10 || $0 == 13 || $0 == 32 || $0 == 9 }) else { return false }
            start = end
        }
    }
}

/// Writes every byte (retrying short writes and EINTR).
public func writeAll(_ fd: FileDescriptor, _ bytes: UnsafeRawBufferPointer) throws {
    var off = 0
    while off < bytes.count {
        let n: Int
        do { n = try fd.write(UnsafeRawBufferPointer(rebasing: bytes[off...]), retryOnInterrupt: true) } catch {
            throw SystemError("write", path: "<rpc stream>", errno: error)
        }
        off += n
    }
}

public func writeAll(_ fd: FileDescriptor, _ bytes: [UInt8]) throws {
    try bytes.withUnsafeBytes { try writeAll(fd, $0) }
}

/// Copies `count` bytes of the file at `path` to `out` (the sender side of a frame).
public func sendFile(
    _ path: String, to out: FileDescriptor, count: UInt64, progress: ((Int) -> Void)? = nil
) throws {
    let fd: FileDescriptor
    do { fd = try FileDescriptor.open(FilePath(path), .readOnly, retryOnInterrupt: true) } catch {
        throw SystemError("open", path: path, errno: error)
    }
    defer { try? fd.close() }
    let buf = UnsafeMutableRawBufferPointer.allocate(byteCount: 1 << 20, alignment: 16)
    defer { buf.deallocate() }
    var left = count
    #if os(Linux)
        // In-kernel: the page cache goes to the pipe or socket without passing through this process.
        // Anything sendfile refuses (EINVAL, ENOSYS) falls back to read/write; a broken pipe is an error.
        while left > 0 {
            let n = Glibc.sendfile(out.rawValue, fd.rawValue, nil, Int(min(UInt64(1 << 20), left)))
            if n < 0 && errno == EINTR { continue }
            if n < 0 && (errno == EINVAL || errno == ENOSYS) { break }
            if n < 0 { throw SystemError("sendfile", path: path, errno: Errno(rawValue: errno)) }
            if n == 0 { throw SystemError("read", path: path, errno: .ioError) }
            left -= UInt64(n)
            progress?(n)
        }
    #endif
    while left > 0 {
        let n: Int
        do {
            n = try fd.read(
                into: UnsafeMutableRawBufferPointer(rebasing: buf[0..<Int(min(UInt64(buf.count), left))]),
                retryOnInterrupt: true)
        } catch {
            throw SystemError("read", path: path, errno: error)
        }
        if n == 0 { throw SystemError("read", path: path, errno: .ioError) }
        try writeAll(out, UnsafeRawBufferPointer(rebasing: buf[0..<n]))
        left -= UInt64(n)
        progress?(n)
    }
}

/// SHA-256 and length of a file (for building a `stream` descriptor).
public func describeFile(_ path: String, compression: StreamDescriptor.Compression) throws -> StreamDescriptor {
    let fd: FileDescriptor
    do { fd = try FileDescriptor.open(FilePath(path), .readOnly, retryOnInterrupt: true) } catch {
        throw SystemError("open", path: path, errno: error)
    }
    defer { try? fd.close() }
    let (digest, count) = try FileChunks.sha256(fd, path: path)
    return StreamDescriptor(contentLength: count, contentSHA256: digest, compression: compression)
}
