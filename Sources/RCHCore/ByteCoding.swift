/// Little-endian binary encoding for the private cache formats (stat cache, shard summaries): u64 numbers,
/// length-prefixed strings, optional digests. Readers return nil on anything short or out of range.
public struct ByteWriter {
    public init() {}
    public var out: [UInt8] = []
    public mutating func bytes(_ b: [UInt8]) { out += b }
    public mutating func u64(_ v: UInt64) { withUnsafeBytes(of: v.littleEndian) { out += $0 } }
    public mutating func string(_ s: String) {
        u64(UInt64(s.utf8.count))
        out += s.utf8
    }
    public mutating func digest(_ d: SHA256Digest?) {
        if let d {
            out.append(1)
            out += d.bytes
        } else {
            out.append(0)
        }
    }
}

public struct ByteReader {
    let data: [UInt8]
    var pos = 0
    public init(_ d: [UInt8]) { data = d }
    public var atEnd: Bool { pos == data.count }
    public mutating func take(_ n: Int) -> ArraySlice<UInt8>? {
        guard n >= 0, data.count - pos >= n else { return nil }
        defer { pos += n }
        return data[pos..<pos + n]
    }
    public mutating func u64() -> UInt64? {
        guard let s = take(8) else { return nil }
        return s.reversed().reduce(0) { $0 << 8 | UInt64($1) }
    }
    public mutating func string() -> String? {
        guard let n = u64(), n < 1 << 20, let s = take(Int(n)) else { return nil }
        return String(decoding: s, as: UTF8.self)
    }
    public mutating func optionalDigest() -> SHA256Digest?? {
        guard let flag = take(1)?.first else { return nil }
        if flag == 0 { return .some(nil) }
        guard let d = take(32) else { return nil }
        return .some(SHA256Digest(bytes: Array(d)))
    }
}
