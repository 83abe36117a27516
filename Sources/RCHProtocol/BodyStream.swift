import RCHCore

/// A request's stream body read as it arrives (pull style), for a receiver that decodes while the sender
/// is still sending.
///
/// Invariants: never hands out more than `content_length` bytes, nor reads past them except for the one
/// look-ahead of ``finish()`` that proves end of input; every byte handed out is hashed. A body that ends
/// early is refused at the first read that finds the end. Nothing decoded from the body may be published
/// before ``finish()`` has returned: only then are the length, the end of input and `content_sha256` known
/// to match the header.
public final class BodyStream {
    public let descriptor: StreamDescriptor
    private let reader: FrameReader
    private var hasher = StreamingSHA256()
    public private(set) var received: UInt64 = 0
    private var finished = false

    public init(_ descriptor: StreamDescriptor, reader: FrameReader) {
        self.descriptor = descriptor
        self.reader = reader
    }

    /// Up to `dst.count` more bytes of the body; 0 once all `content_length` bytes were handed out.
    public func read(into dst: UnsafeMutableRawBufferPointer) throws -> Int {
        let left = descriptor.contentLength - received
        guard left > 0, dst.count > 0 else { return 0 }
        let n = try reader.read(
            into: UnsafeMutableRawBufferPointer(rebasing: dst[0..<Int(min(UInt64(dst.count), left))]))
        guard n > 0 else {
            throw RPCError.invalid(
                "the stream ended after \(received) of content_length \(descriptor.contentLength) bytes")
        }
        hasher.update(UnsafeRawBufferPointer(rebasing: dst[0..<n]))
        received += UInt64(n)
        return n
    }

    /// Reads (and hashes) whatever the consumer left of the body, then checks the end of input and the
    /// digest. Throws `INVALID_REQUEST` naming what differs; once it has passed, later calls do nothing.
    public func finish() throws {
        guard !finished else { return }
        let buf = UnsafeMutableRawBufferPointer.allocate(byteCount: 1 << 16, alignment: 16)
        defer { buf.deallocate() }
        while try read(into: buf) > 0 {}
        guard try reader.atEnd() else {
            throw RPCError.invalid("more bytes than content_length \(descriptor.contentLength) were sent")
        }
        let actual = hasher.finalize()
        guard actual == descriptor.contentSHA256 else {
            throw RPCError.invalid(
                "content_sha256 does not match the bytes received",
                data: ["expected": .string(descriptor.contentSHA256.hex), "actual": .string(actual.hex)])
        }
        finished = true
    }
}
