import Foundation
import RCHCore
import RCHTestSupport
import Testing

@testable import RCHBundle

/// Pins the exact bytes of bundle format v1. A change here means every cache key changes: it needs a
/// deliberate `bundle_format` bump, never a silent update of these constants.
@Suite("Golden bytes of bundle format v1")
struct GoldenTests {
    static func fixture(_ root: String) {
        let t = Tree(root)
        t.file("README.md", "# Golden\n")
        t.file("Caf\u{E9}/na\u{EF}ve \u{65E5}\u{672C}.swift", "let x = 1\n")
        t.file(String(repeating: "a", count: 100), "100")
        t.file(String(repeating: "b", count: 101), "101")
        t.file(String(repeating: "p", count: 155) + "/" + String(repeating: "n", count: 20), "prefix 155")
        t.file(String(repeating: "c", count: 255), "255")
        t.file("long/" + String(repeating: "\u{E9}", count: 120), "non-ascii long")
        t.file("bin/tool", "#!/bin/sh\necho hi\n", mode: 0o755)
        t.file("empty", "")
        t.link("link", "bin/tool")
        t.link("dir/up", "../README.md")
    }

    static let expectedSource = "b260f4d89c21f5e7eb69319d6d86bd28339bd01b38c68330b1ccd22071b0e10f"
    static let expectedTree = "7165cfe4618fcc37bd354f2170ff398110f4c6984ed5e6ec4c90b1fd0d4de548"

    @Test func goldenDigests() throws {
        let d = TempDir()
        Self.fixture(d.sub("g"))
        let r = try Fixtures.bundle(d.sub("g"), to: d.sub("g.tar.zst"))
        #expect(r.sourceSHA256.hex == Self.expectedSource)
        #expect(r.manifest.treeSHA256.hex == Self.expectedTree)
        #expect(r.manifest.entries.count == 11)
    }

    @Test("the streamed manifest serialisation is exactly the JCS form of the manifest value")
    func manifestSerialisation() throws {
        let d = TempDir()
        Self.fixture(d.sub("g"))
        var o = BundleOptions()
        o.runID = "run_0123456789"
        let m = try Bundler.bundle(root: d.sub("g"), options: o, output: nil).manifest
        #expect(m.canonicalBytes() == m.json.canonicalBytes)
    }

    @Test("the tar stream has exactly the documented shape")
    func streamShape() throws {
        let d = TempDir()
        Self.fixture(d.sub("g"))
        try Fixtures.bundle(d.sub("g"), to: d.sub("g.tar.zst"))
        let tar = try Run.shell("zstd -dc '\(d.sub("g.tar.zst"))' > '\(d.sub("g.tar"))'")
        #expect(tar.status == 0)
        let bytes = Array(try Data(contentsOf: URL(fileURLWithPath: d.sub("g.tar"))))
        #expect(bytes.count % 512 == 0)
        #expect(bytes.suffix(1024).allSatisfy { $0 == 0 })
        #expect(SHA256Digest.of(bytes).hex == Self.expectedSource)
        // README.md's header: ustar, mode 644, uid/gid 0, mtime 0, no user/group names.
        let offset = try #require(
            stride(from: 0, to: bytes.count, by: 512).first {
                bytes[$0..<($0 + 10)].elementsEqual(Array("README.md\0".utf8))
            })
        let h = Array(bytes[offset..<(offset + 512)])
        #expect(h[257..<263].elementsEqual(Array("ustar\0".utf8)))
        #expect(h[156] == UInt8(ascii: "0"))
        #expect(String(decoding: h[100..<106], as: UTF8.self) == "000644")
        #expect(
            String(decoding: h[108..<114], as: UTF8.self) == "000000"
                && String(decoding: h[116..<122], as: UTF8.self) == "000000")
        #expect(String(decoding: h[136..<147], as: UTF8.self) == "00000000000")
        #expect(h[265..<297].allSatisfy { $0 == 0 } && h[297..<329].allSatisfy { $0 == 0 })
        // The first entry sorts first by bytes ("Caf\u{E9}/…" < "README.md") and needs a pax header.
        #expect(bytes[156] == UInt8(ascii: "x"))
        // Non-ASCII names use a pax header with only path=.
        let text = String(decoding: bytes, as: UTF8.self)
        #expect(text.contains("path=Caf\u{E9}/na\u{EF}ve \u{65E5}\u{672C}.swift\n"))
        #expect(
            !text.contains("hdrcharset") && !text.contains("SCHILY") && !text.contains("LIBARCHIVE")
                && !text.contains("atime"))
    }
}
