import CRCHSHA
import RCHCore
import Testing

@Suite("Resumable SHA-256 (CRCHSHA)")
struct ResumableSHA256Tests {
    static let vectors: [(String, String)] = [
        ("", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"),
        ("abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"),
        (
            "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"
        ),
        (
            "abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklmnopqklmnopqrlmnopqrsmnopqrstnopqrstu",
            "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1"
        ),
    ]

    @Test("FIPS 180-4 vectors", arguments: vectors)
    func fips(_ v: (String, String)) {
        var h = ResumableSHA256()
        h.update(Array(v.0.utf8))
        #expect(h.finalize().hex == v.1)
    }

    @Test("one million 'a' (FIPS 180-4), fed in odd pieces")
    func million() {
        var h = ResumableSHA256()
        let piece = [UInt8](repeating: 0x61, count: 997)
        var left = 1_000_000
        while left > 0 {
            let n = min(left, piece.count)
            h.update(Array(piece[0..<n]))
            left -= n
        }
        #expect(h.finalize().hex == "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0")
    }

    @Test("equal to swift-crypto for random lengths and splits; resumed from a midstate equals the whole")
    func randomized() {
        var rng = SystemRandomNumberGenerator()
        for _ in 0..<300 {
            let n = Int.random(in: 0..<5000, using: &rng)
            let bytes = (0..<n).map { _ in UInt8.random(in: 0...255, using: &rng) }
            var h = ResumableSHA256()
            var at = 0
            var saved: SHA256Midstate?
            while at < n {
                let k = min(n - at, Int.random(in: 1...300, using: &rng))
                h.update(Array(bytes[at..<(at + k)]))
                at += k
                if let m = h.midstate, saved == nil || Bool.random(using: &rng) { saved = m }
            }
            #expect(h.finalize() == SHA256Digest.of(bytes))
            if let m = saved {
                #expect(m.byteCount % 64 == 0)
                var r = ResumableSHA256(resuming: SHA256Midstate(encoded: m.encoded)!)
                r.update(Array(bytes[Int(m.byteCount)...]))
                #expect(r.finalize() == SHA256Digest.of(bytes))
            }
        }
    }

    @Test("the CPU's implementation equals the portable one")
    func portable() {
        var rng = SystemRandomNumberGenerator()
        let bytes = (0..<(64 * 257)).map { _ in UInt8.random(in: 0...255, using: &rng) }
        var a = [UInt32](repeating: 0, count: 8)
        var b = a
        a.withUnsafeMutableBufferPointer { rch_sha256_init($0.baseAddress) }
        b.withUnsafeMutableBufferPointer { rch_sha256_init($0.baseAddress) }
        bytes.withUnsafeBufferPointer { p in
            a.withUnsafeMutableBufferPointer { rch_sha256_blocks($0.baseAddress, p.baseAddress, 257) }
            b.withUnsafeMutableBufferPointer { rch_sha256_blocks_portable($0.baseAddress, p.baseAddress, 257) }
        }
        #expect(a == b, "implementation \(ResumableSHA256.implementation)")
    }

    @Test("a midstate encoding our writer would not produce is refused")
    func strictEncoding() {
        let good = ResumableSHA256().midstate!.encoded
        #expect(SHA256Midstate(encoded: good) != nil)
        #expect(SHA256Midstate(encoded: good.dropLast()) == nil)
        var odd = good
        odd[39] = 1  // byte count 1: not a block boundary
        #expect(SHA256Midstate(encoded: odd) == nil)
    }

    struct DualCase: Sendable, CustomTestStringConvertible {
        var lead: Int  // bytes only the second hasher had before (its phase and state differ)
        var size: Int
        var piece: Int
        var testDescription: String { "lead \(lead), \(size) bytes in pieces of \(piece)" }
    }

    static let dualCases: [DualCase] = [
        DualCase(lead: 0, size: 0, piece: 64), DualCase(lead: 0, size: 63, piece: 64),
        DualCase(lead: 0, size: 1 << 20, piece: 1 << 20), DualCase(lead: 512, size: 300_001, piece: 4096),
        DualCase(lead: 512, size: 100_000, piece: 1000), DualCase(lead: 7, size: 10_000, piece: 640),
        DualCase(lead: 1024, size: 65_536, piece: 65),
    ]

    @Test("two hashers fed the same bytes in one pass equal two separate ones", arguments: dualCases)
    func dual(_ c: DualCase) {
        var rng = SystemRandomNumberGenerator()
        let lead = (0..<c.lead).map { _ in UInt8.random(in: 0...255, using: &rng) }
        let data = (0..<c.size).map { _ in UInt8.random(in: 0...255, using: &rng) }
        var fileAlone = ResumableSHA256()
        var streamAlone = ResumableSHA256()
        streamAlone.update(lead)
        var file = ResumableSHA256()
        var stream = ResumableSHA256()
        stream.update(lead)
        var at = 0
        while at < data.count {
            let n = min(c.piece, data.count - at)
            data[at..<(at + n)].withUnsafeBytes { ResumableSHA256.update(&file, &stream, with: $0) }
            at += n
        }
        fileAlone.update(data)
        streamAlone.update(data)
        #expect(file.finalize() == fileAlone.finalize() && file.finalize() == .of(data))
        #expect(stream.finalize() == streamAlone.finalize() && stream.finalize() == .of(lead + data))
        #expect(stream.byteCount == UInt64(lead.count + data.count) && file.byteCount == UInt64(data.count))
    }
}
