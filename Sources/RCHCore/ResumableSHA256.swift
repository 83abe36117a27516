import CRCHSHA

/// A SHA-256 state saved at a 64-byte boundary of a stream: hashing can go on from `byteCount` bytes in
/// without the bytes before. Serialised as 40 bytes: the eight state words big-endian, then `byteCount`
/// big-endian; a count that is not a multiple of 64 is refused.
public struct SHA256Midstate: Hashable, Sendable {
    public var words: [UInt32]
    public var byteCount: UInt64

    public static let encodedSize = 40

    public init?(words: [UInt32], byteCount: UInt64) {
        guard words.count == 8, byteCount % 64 == 0 else { return nil }
        self.words = words
        self.byteCount = byteCount
    }

    public init?(encoded b: some Collection<UInt8>) {
        let a = Array(b)
        guard a.count == Self.encodedSize else { return nil }
        func be(_ at: Int, _ n: Int) -> UInt64 { a[at..<(at + n)].reduce(0) { $0 << 8 | UInt64($1) } }
        self.init(words: (0..<8).map { UInt32(be(4 * $0, 4)) }, byteCount: be(32, 8))
    }

    public var encoded: [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(Self.encodedSize)
        for w in words { out += [UInt8(w >> 24), UInt8(w >> 16 & 0xff), UInt8(w >> 8 & 0xff), UInt8(w & 0xff)] }
        for s in stride(from: 56, through: 0, by: -8) { out.append(UInt8(byteCount >> UInt64(s) & 0xff)) }
        return out
    }
}

/// SHA-256 over a stream whose state can be saved at block boundaries (``midstate``) and resumed
/// (``init(resuming:)``). The compression runs in `CRCHSHA` (the CPU's SHA instructions where present); the
/// digests are the standard ones (tested against FIPS 180-4 vectors and swift-crypto).
public struct ResumableSHA256 {
    private var state = [UInt32](repeating: 0, count: 8)
    private var buffer = [UInt8](repeating: 0, count: 64)
    private var buffered = 0
    public private(set) var byteCount: UInt64 = 0

    public init() {
        state.withUnsafeMutableBufferPointer { rch_sha256_init($0.baseAddress) }
    }

    public init(resuming m: SHA256Midstate) {
        state = m.words
        byteCount = m.byteCount
    }

    /// The state here, if the bytes so far are a whole number of blocks.
    public var midstate: SHA256Midstate? {
        buffered == 0 ? SHA256Midstate(words: state, byteCount: byteCount) : nil
    }

    public static var implementation: String { String(cString: rch_sha256_implementation()) }

    public mutating func update(_ data: UnsafeRawBufferPointer) {
        guard var p = data.baseAddress?.assumingMemoryBound(to: UInt8.self) else { return }
        var n = data.count
        byteCount += UInt64(n)
        if buffered > 0 {
            let take = min(64 - buffered, n)
            buffer.withUnsafeMutableBufferPointer { b in (b.baseAddress! + buffered).update(from: p, count: take) }
            buffered += take
            p += take
            n -= take
            if buffered < 64 { return }
            compress(buffer, blocks: 1)
            buffered = 0
        }
        let blocks = n / 64
        if blocks > 0 {
            state.withUnsafeMutableBufferPointer { rch_sha256_blocks($0.baseAddress, p, blocks) }
            p += blocks * 64
            n -= blocks * 64
        }
        if n > 0 {
            buffer.withUnsafeMutableBufferPointer { b in b.baseAddress!.update(from: p, count: n) }
            buffered = n
        }
    }

    /// Updates `a` and `b` with the same bytes (a file's own hasher and the tar stream's over the file's data,
    /// which starts at a multiple of 512). While both are at the same offset within a block, the whole blocks
    /// go through `rch_sha256_blocks2` — one shared message schedule, interleaved rounds: two digests for
    /// about the price of one with SHA-NI — and only partial blocks through each hasher alone.
    public static func update(_ a: inout ResumableSHA256, _ b: inout ResumableSHA256, with data: UnsafeRawBufferPointer)
    {
        guard a.buffered == b.buffered, data.baseAddress != nil else {
            a.update(data)
            b.update(data)
            return
        }
        var rest = data
        if a.buffered > 0 {
            // Complete both partial blocks first (one compression each).
            let head = UnsafeRawBufferPointer(rebasing: rest[0..<min(64 - a.buffered, rest.count)])
            a.update(head)
            b.update(head)
            rest = UnsafeRawBufferPointer(rebasing: rest[head.count...])
        }
        let blocks = rest.count / 64
        if blocks > 0 {
            let p = rest.baseAddress!.assumingMemoryBound(to: UInt8.self)
            a.state.withUnsafeMutableBufferPointer { sa in
                b.state.withUnsafeMutableBufferPointer { sb in
                    rch_sha256_blocks2(sa.baseAddress, sb.baseAddress, p, blocks)
                }
            }
            a.byteCount += UInt64(blocks * 64)
            b.byteCount += UInt64(blocks * 64)
            rest = UnsafeRawBufferPointer(rebasing: rest[(blocks * 64)...])
        }
        a.update(rest)
        b.update(rest)
    }

    public mutating func update(_ bytes: [UInt8]) {
        bytes.withUnsafeBytes { update($0) }
    }

    /// The digest of everything so far (the hasher itself is unchanged).
    public func finalize() -> SHA256Digest {
        var copy = self
        var tail = [UInt8](repeating: 0, count: 128)
        for i in 0..<buffered { tail[i] = buffer[i] }
        tail[buffered] = 0x80
        let blocks = buffered + 9 <= 64 ? 1 : 2
        let bits = byteCount &* 8
        for i in 0..<8 { tail[blocks * 64 - 1 - i] = UInt8(bits >> UInt64(8 * i) & 0xff) }
        copy.compress(tail, blocks: blocks)
        return SHA256Digest(
            bytes: copy.state.flatMap { w in
                [UInt8(w >> 24), UInt8(w >> 16 & 0xff), UInt8(w >> 8 & 0xff), UInt8(w & 0xff)]
            })
    }

    private mutating func compress(_ bytes: [UInt8], blocks: Int) {
        bytes.withUnsafeBufferPointer { b in
            state.withUnsafeMutableBufferPointer { rch_sha256_blocks($0.baseAddress, b.baseAddress, blocks) }
        }
    }
}
