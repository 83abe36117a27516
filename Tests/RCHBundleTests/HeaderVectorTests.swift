import Foundation
import RCHCore
import RCHTestSupport
import Testing

@testable import RCHBundle

/// Golden vectors of the header encoding written from PLAN §2.7 by hand (not produced by any tar
/// library), and the canonical reader's refusal of every other encoding of the same entry.
@Suite("Header vectors of bundle format v1 and the canonical reader")
struct HeaderVectorTests {
    static func text(_ h: [UInt8], _ r: Range<Int>) -> String { String(decoding: h[r], as: UTF8.self) }
    static func cstr(_ h: [UInt8], _ r: Range<Int>) -> [UInt8] { Array(h[r].prefix { $0 != 0 }) }

    /// Checks a ustar header's fixed fields and its checksum.
    static func checkFixed(_ h: [UInt8], mode: String, size: UInt64, type: Character) {
        #expect(h.count == 512)
        #expect(Array(h[100..<108]) == Array((mode + " ").utf8) + [0])
        #expect(
            Array(h[108..<116]) == Array("000000 ".utf8) + [0] && Array(h[116..<124]) == Array("000000 ".utf8) + [0])
        #expect(
            text(h, 124..<136) == String(repeating: "0", count: 11 - String(size, radix: 8).count)
                + String(size, radix: 8) + " ")
        #expect(text(h, 136..<148) == "00000000000 ")
        #expect(h[156] == UInt8(ascii: String(type).unicodeScalars.first!))
        #expect(Array(h[257..<265]) == Array("ustar".utf8) + [0, 48, 48])
        #expect(h[265..<329].allSatisfy { $0 == 0 })
        #expect(
            Array(h[329..<337]) == Array("000000 ".utf8) + [0] && Array(h[337..<345]) == Array("000000 ".utf8) + [0])
        #expect(h[500..<512].allSatisfy { $0 == 0 })
        var sum = 0
        for (i, b) in h.enumerated() { sum += (148..<156).contains(i) ? 32 : Int(b) }
        let s = String(sum, radix: 8)
        #expect(Array(h[148..<156]) == Array((String(repeating: "0", count: 6 - s.count) + s).utf8) + [0, 32])
    }

    @Test("a 100-byte ASCII name fills `name` without a NUL; no pax header")
    func hundred() {
        let p = Array(String(repeating: "a", count: 100).utf8)
        let h = TarHeaderEncoder.encode(path: p, kind: .file(size: 3, executable: false))
        #expect(h.count == 512)
        #expect(Array(h[0..<100]) == p)
        Self.checkFixed(h, mode: "000644", size: 3, type: "0")
    }

    @Test("a long ASCII path splits at the first '/' at or after len − 101: prefix ≤ 155, name ≤ 100")
    func split() {
        let p =
            String(repeating: "d", count: 60) + "/" + String(repeating: "e", count: 60) + "/"
            + String(repeating: "f", count: 10)
        let h = TarHeaderEncoder.encode(path: Array(p.utf8), kind: .file(size: 0, executable: true))
        #expect(h.count == 512)
        #expect(Self.cstr(h, 345..<500) == Array(String(repeating: "d", count: 60).utf8))
        #expect(
            Self.cstr(h, 0..<100)
                == Array((String(repeating: "e", count: 60) + "/" + String(repeating: "f", count: 10)).utf8))
        Self.checkFixed(h, mode: "000755", size: 0, type: "0")
        let p155 = String(repeating: "p", count: 155) + "/" + String(repeating: "n", count: 20)
        let h155 = TarHeaderEncoder.encode(path: Array(p155.utf8), kind: .file(size: 10, executable: false))
        #expect(h155.count == 512 && Array(h155[345..<500]) == Array(String(repeating: "p", count: 155).utf8))
    }

    @Test("an unsplittable ASCII name: pax `path` record, fallback names with a 99-byte budget")
    func unsplittable() {
        let p = Array(String(repeating: "b", count: 101).utf8)
        let h = TarHeaderEncoder.encode(path: p, kind: .file(size: 3, executable: false))
        #expect(h.count == 1536)
        let pax = Array(h[0..<512])
        #expect(Self.cstr(pax, 0..<100) == Array(("PaxHeader/" + String(repeating: "b", count: 88)).utf8))
        Self.checkFixed(pax, mode: "000644", size: 111, type: "x")
        #expect(Array(h[512..<623]) == Array(("111 path=" + String(repeating: "b", count: 101) + "\n").utf8))
        #expect(h[623..<1024].allSatisfy { $0 == 0 })
        let main = Array(h[1024..<1536])
        #expect(Self.cstr(main, 0..<100) == Array(String(repeating: "b", count: 99).utf8))
        Self.checkFixed(main, mode: "000644", size: 3, type: "0")
    }

    @Test("a short non-ASCII name: pax `path`, the ustar name is the raw bytes")
    func nonASCII() {
        let p = Array("Caf\u{E9}.swift".utf8)
        let h = TarHeaderEncoder.encode(path: p, kind: .file(size: 1, executable: false))
        #expect(Self.cstr(Array(h[0..<512]), 0..<100) == Array("PaxHeader/Caf\u{E9}.swift".utf8))
        // 1 + 4 ("path") + 1 + 11 + 1 = 18 bytes + 2 length digits = 20.
        #expect(Array(h[512..<532]) == Array("20 path=Caf\u{E9}.swift\n".utf8))
        #expect(Self.cstr(Array(h[1024..<1536]), 0..<100) == p)
    }

    @Test("symlinks: a target ≤ 100 bytes in linkname; a longer one in a `linkpath` record, linkname ././@LongSymLink")
    func links() {
        let short = TarHeaderEncoder.encode(path: Array("link".utf8), kind: .symlink(target: Array("bin/tool".utf8)))
        #expect(short.count == 512 && Self.cstr(short, 157..<257) == Array("bin/tool".utf8))
        Self.checkFixed(short, mode: "000777", size: 0, type: "2")
        let target = Array((String(repeating: "../", count: 1) + String(repeating: "t", count: 98)).utf8)
        #expect(target.count == 101)
        let long = TarHeaderEncoder.encode(path: Array("d/l".utf8), kind: .symlink(target: target))
        #expect(long.count == 1536)
        // 1 + 8 ("linkpath") + 1 + 101 + 1 = 112 bytes + 3 length digits = 115.
        #expect(Array(long[512..<627]) == Array("115 linkpath=".utf8) + target + [10])
        #expect(Self.cstr(Array(long[1024..<1536]), 157..<257) == Array("././@LongSymLink".utf8))
        #expect(Self.cstr(Array(long[0..<512]), 0..<100) == Array("d/PaxHeader/l".utf8))
        let accent = TarHeaderEncoder.encode(path: Array("l".utf8), kind: .symlink(target: Array("caf\u{E9}".utf8)))
        #expect(accent.count == 1536 && Self.cstr(Array(accent[1024..<1536]), 157..<257) == Array("caf\u{E9}".utf8))
    }

    @Test("the empty bundle is 1024 zero bytes")
    func empty() {
        #expect(
            SHA256Digest.of(TarHeaderEncoder.end).hex
                == "5f70bf18a086007016e948b04aed3b82103a36bea41755b6cddfaf10ace3c6ef")
    }

    /// One canonical entry (`x`, 2 bytes) then the end blocks, with `mutate` applied to its header and the
    /// checksum recomputed, so only the canonical comparison can notice.
    static func archive(_ mutate: (inout [UInt8]) -> Void) throws -> [UInt8] {
        var h = TarHeaderEncoder.encode(path: Array("x".utf8), kind: .file(size: 2, executable: false))
        mutate(&h)
        for i in 148..<156 { h[i] = 32 }
        let sum = h.reduce(0) { $0 + Int($1) }
        let s = String(sum, radix: 8)
        let field = Array((String(repeating: "0", count: max(0, 6 - s.count)) + s).utf8) + [0, 32]
        for (i, b) in field.enumerated() { h[148 + i] = b }
        var t = RawTar()
        t.bytes = h
        t.data(Array("hi".utf8))
        t.end()
        return try t.zstd()
    }

    struct Variant: Sendable, CustomTestStringConvertible {
        var testDescription: String
        var offset: Int
        var bytes: [UInt8]
    }

    static let variants: [Variant] = [
        .init(testDescription: "size with leading spaces", offset: 124, bytes: Array("          2 ".utf8)),
        .init(testDescription: "size NUL-terminated", offset: 124, bytes: Array("0000000002".utf8) + [0, 0]),
        .init(testDescription: "mode with 7 digits", offset: 100, bytes: Array("0000644".utf8) + [0]),
        .init(testDescription: "mode with a leading space", offset: 100, bytes: Array(" 00644 ".utf8) + [0]),
        .init(testDescription: "uid NUL-terminated", offset: 108, bytes: Array("0000000".utf8) + [0]),
        .init(testDescription: "mtime without its space", offset: 136, bytes: Array("00000000000".utf8) + [0]),
        .init(testDescription: "devmajor all NUL", offset: 329, bytes: [UInt8](repeating: 0, count: 8)),
        .init(testDescription: "bytes after the name's NUL", offset: 50, bytes: Array("junk".utf8)),
        .init(testDescription: "junk in bytes 500-511", offset: 505, bytes: [1, 2, 3]),
        .init(testDescription: "version '  ' instead of '00'", offset: 263, bytes: [32, 32]),
        .init(testDescription: "a uname", offset: 265, bytes: Array("root".utf8)),
    ]

    @Test("one tree has one accepted stream: any other header encoding is refused", arguments: variants)
    func nonCanonical(_ v: Variant) throws {
        let d = TempDir()
        let ok = try Self.archive { _ in }
        write(ok, to: d.sub("ok.tar.zst"))
        #expect(try Extractor().verify(bundle: d.sub("ok.tar.zst")).entryCount == 1)
        let bad = try Self.archive { h in for (i, b) in v.bytes.enumerated() { h[v.offset + i] = b } }
        write(bad, to: d.sub("bad.tar.zst"))
        let e = bundleError { _ = try Extractor().verify(bundle: d.sub("bad.tar.zst")) }
        #expect(e != nil, "accepted: \(v.testDescription)")
        #expect(e?.failureSubkind == "INVALID_ARCHIVE")
    }

    @Test("a non-zero byte in a file's padding is refused (found by the FuzzTar target)")
    func padding() throws {
        let d = TempDir()
        var t = RawTar()
        t.bytes = TarHeaderEncoder.encode(path: Array("x".utf8), kind: .file(size: 2, executable: false))
        t.data(Array("hi".utf8))
        t.bytes[512 + 300] = 1
        t.end()
        write(try t.zstd(), to: d.sub("bad.tar.zst"))
        let e = bundleError { _ = try Extractor().verify(bundle: d.sub("bad.tar.zst")) }
        #expect(
            e?.failureSubkind == "INVALID_ARCHIVE" && e?.description.contains("padding") == true,
            "\(String(describing: e))")
    }

    @Test("files of 8 GiB or more are refused by the bundler (LIMIT_EXCEEDED, exit 92), naming the file")
    func eightGiB() throws {
        let d = TempDir()
        Tree(d.sub("r")).file("small", "x")
        let big = d.sub("r/huge.bin")
        FileManager.default.createFile(atPath: big, contents: nil)
        let fh = try FileHandle(forWritingTo: URL(fileURLWithPath: big))
        try fh.truncate(atOffset: 8 << 30)
        try fh.close()
        let e = bundleError { _ = try Fixtures.bundle(d.sub("r"), to: d.sub("out.tar.zst")) }
        #expect(
            e?.failureSubkind == "LIMIT_EXCEEDED" && e?.description.contains("huge.bin") == true,
            "\(String(describing: e))")
        #expect(!FileManager.default.fileExists(atPath: d.sub("out.tar.zst")))
    }
}
