import Foundation
import RCHCore
import RCHTestSupport
import Testing
import XcodeTreeGen

@testable import RCHBundle

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

@Suite("Extraction: verify first, fail closed, nothing outside staging")
struct ExtractionTests {
    @Test("round trip: bundle → extract → identical tree and digests")
    func roundTrip() throws {
        let d = TempDir()
        try XcodeTreeGen(seed: 5, scale: 0.03).makeTree(at: d.sub("t"))
        let r = try Fixtures.bundle(d.sub("t"), to: d.sub("b.tar.zst"))
        let v = try Extractor().extract(bundle: d.sub("b.tar.zst"), into: d.sub("out"), expected: r.sourceSHA256)
        #expect(v.treeSHA256 == r.manifest.treeSHA256)
        #expect(v.entryCount == r.manifest.entries.count)
        let again = try Bundler.bundle(root: d.sub("out"), output: nil)
        #expect(again.sourceSHA256 == r.sourceSHA256)
        #expect(again.manifest.entries == r.manifest.entries)
        var st = stat()
        #expect(lstat(d.sub("out/Vendor/Foo.framework/Versions/Current"), &st) == 0 && (st.st_mode & S_IFMT) == S_IFLNK)
        #expect(stat(d.sub("out/Scripts/build-phase-0.sh"), &st) == 0 && st.st_mode & 0o777 == 0o755)
        #expect(stat(d.sub("out/App/Sources/Empty.swift"), &st) == 0 && st.st_mode & 0o777 == 0o644 && st.st_size == 0)
    }

    @Test("a wrong expected digest is refused before the target is touched")
    func digestMismatch() throws {
        let d = TempDir()
        Tree(d.sub("t")).file("a")
        try Fixtures.bundle(d.sub("t"), to: d.sub("b.tar.zst"))
        let wrong = SHA256Digest.of([1, 2, 3])
        let e = bundleError { try Extractor().extract(bundle: d.sub("b.tar.zst"), into: d.sub("out"), expected: wrong) }
        #expect(e?.failureSubkind == "INTEGRITY_MISMATCH")
        #expect(!FileManager.default.fileExists(atPath: d.sub("out")))
        #expect(try FileManager.default.contentsOfDirectory(atPath: d.path).sorted() == ["b.tar.zst", "t"])
    }

    struct Attack: CustomTestStringConvertible, Sendable {
        let name: String
        let make: @Sendable () throws -> [UInt8]  // the .tar.zst bytes
        let mentions: String
        var testDescription: String { name }
    }

    static func tar(_ body: @escaping @Sendable (inout RawTar) -> Void) -> @Sendable () throws -> [UInt8] {
        {
            var t = RawTar()
            body(&t)
            return try t.zstd()
        }
    }

    static func entry(_ name: String, type: UInt8 = UInt8(ascii: "0"), mode: Int = 0o644, link: String = "")
        -> @Sendable () throws -> [UInt8]
    {
        tar { t in
            t.header(.init(name: name, mode: mode, type: type, link: link))
            t.end()
        }
    }

    static let attacks: [Attack] = [
        // 19: path forms
        Attack(name: "../x", make: entry("../x"), mentions: "'..'"),
        Attack(name: "a/../../x", make: entry("a/../../x"), mentions: "'..'"),
        Attack(name: "/abs", make: entry("/abs"), mentions: "absolute"),
        Attack(name: "//abs", make: entry("//abs"), mentions: "absolute"),
        Attack(name: "./a", make: entry("./a"), mentions: "'.'"),
        Attack(name: "a//b", make: entry("a//b"), mentions: "empty"),
        Attack(name: "a/./b", make: entry("a/./b"), mentions: "'.'"),
        Attack(name: ".", make: entry("."), mentions: "'.'"),
        Attack(name: "empty name", make: entry(""), mentions: "empty"),
        Attack(name: "file name with trailing /", make: entry("f/"), mentions: "ending in '/'"),
        Attack(name: "..\\x", make: entry("..\\x"), mentions: "'\\'"),
        Attack(
            name: "NUL inside pax path",
            make: tar { t in
                t.pax([("path", Array("a".utf8) + [0] + Array("b".utf8))])
                t.file("a")
                t.end()
            }, mentions: "NUL"),
        // 20: symlink tricks
        Attack(
            name: "symlink to /etc then file through it",
            make: tar { t in
                t.symlink("d", "/etc")
                t.file("d/f")
                t.end()
            }, mentions: "absolute"),
        Attack(
            name: "symlink to .. then file through it",
            make: tar { t in
                t.symlink("d", "..")
                t.file("d/f")
                t.end()
            }, mentions: "escapes"),
        Attack(
            name: "symlink inside root then file below it",
            make: tar { t in
                t.file("a")
                t.symlink("d", "a")
                t.file("d/f")
                t.end()
            }, mentions: "needs a directory"),
        Attack(
            name: "symlink named .",
            make: tar { t in
                t.symlink(".", "x")
                t.end()
            }, mentions: "'.'"),
        Attack(
            name: "escaping symlink alone",
            make: tar { t in
                t.symlink("evil", "../../../../etc/passwd")
                t.end()
            }, mentions: "escapes"),
        // 21: hardlinks
        Attack(
            name: "hardlink inside root",
            make: tar { t in
                t.file("a")
                t.header(.init(name: "b", type: UInt8(ascii: "1"), link: "a"))
                t.end()
            }, mentions: "hardlink"),
        Attack(
            name: "hardlink to outside", make: entry("b", type: UInt8(ascii: "1"), link: "../outside/x"),
            mentions: "hardlink"),
        // 22: duplicates
        Attack(
            name: "file then same file",
            make: tar { t in
                t.file("a")
                t.file("a")
                t.end()
            }, mentions: "twice"),
        Attack(
            name: "file then symlink of same name",
            make: tar { t in
                t.file("a")
                t.symlink("a", "b")
                t.end()
            }, mentions: "twice"),
        Attack(
            name: "out of canonical order",
            make: tar { t in
                t.file("b")
                t.file("a")
                t.end()
            }, mentions: "order"),
        // 23: case and normalisation twins
        Attack(
            name: "FOO/x then foo symlink",
            make: tar { t in
                t.file("FOO/x")
                t.symlink("foo", "FOO")
                t.end()
            }, mentions: "needs a directory"),
        Attack(
            name: "NFD name",
            make: tar { t in
                t.pax([("path", Array("Cafe\u{301}".utf8))])
                t.file("x")
                t.end()
            }, mentions: "NFC"),
        Attack(
            name: "sharp s twins",
            make: tar { t in
                t.file("strasse")
                t.bytes += TarHeaderEncoder.encode(
                    path: Array("stra\u{DF}e".utf8), kind: .file(size: 2, executable: false))
                t.data(Array("hi".utf8))
                t.end()
            }, mentions: "case-insensitive"),
        // 24: type and record smuggling
        Attack(name: "character device", make: entry("dev", type: UInt8(ascii: "3")), mentions: "character device"),
        Attack(name: "block device", make: entry("dev", type: UInt8(ascii: "4")), mentions: "block device"),
        Attack(name: "FIFO", make: entry("fifo", type: UInt8(ascii: "6")), mentions: "FIFO"),
        Attack(
            name: "directory entry", make: entry("dir/", type: UInt8(ascii: "5"), mode: 0o755), mentions: "directory"),
        Attack(name: "GNU sparse", make: entry("s", type: UInt8(ascii: "S")), mentions: "sparse"),
        Attack(name: "GNU long name", make: entry("././@LongLink", type: UInt8(ascii: "L")), mentions: "GNU long name"),
        Attack(
            name: "global pax header",
            make: tar { t in
                t.header(.init(name: "g", size: 0, type: UInt8(ascii: "g")))
                t.file("a")
                t.end()
            }, mentions: "global"),
        Attack(name: "V header", make: entry("vol", type: UInt8(ascii: "V")), mentions: "'V'"),
        Attack(name: "A header", make: entry("a", type: UInt8(ascii: "A")), mentions: "'A'"),
        Attack(
            name: "pax quarantine xattr",
            make: tar { t in
                t.pax([("SCHILY.xattr.com.apple.quarantine", Array("0081".utf8))])
                t.file("a")
                t.end()
            }, mentions: "SCHILY.xattr"),
        Attack(
            name: "pax ACL",
            make: tar { t in
                t.pax([("SCHILY.acl.access", Array("user::rwx".utf8))])
                t.file("a")
                t.end()
            }, mentions: "SCHILY.acl"),
        Attack(
            name: "pax fflags",
            make: tar { t in
                t.pax([("SCHILY.fflags", Array("uchg".utf8))])
                t.file("a")
                t.end()
            }, mentions: "fflags"),
        Attack(
            name: "pax creationtime",
            make: tar { t in
                t.pax([("LIBARCHIVE.creationtime", Array("1".utf8))])
                t.file("a")
                t.end()
            }, mentions: "creationtime"),
        Attack(
            name: "mode 04755",
            make: tar { t in
                t.file("a", mode: 0o4755)
                t.end()
            }, mentions: "mode"),
        Attack(
            name: "mode 02755",
            make: tar { t in
                t.file("a", mode: 0o2755)
                t.end()
            }, mentions: "mode"),
        Attack(
            name: "mode 01777",
            make: tar { t in
                t.file("a", mode: 0o1777)
                t.end()
            }, mentions: "mode"),
        Attack(
            name: "uid 0 with uname root",
            make: tar { t in
                t.header(.init(name: "a", size: 0, uname: "root"))
                t.end()
            }, mentions: "owner"),
        Attack(
            name: "nonzero uid",
            make: tar { t in
                t.header(.init(name: "a", uid: 501, size: 0))
                t.end()
            }, mentions: "owner"),
        Attack(
            name: "nonzero mtime",
            make: tar { t in
                t.header(.init(name: "a", size: 0, mtime: 1_700_000_000))
                t.end()
            }, mentions: "mtime"),
        Attack(
            name: "AppleDouble ._x",
            make: tar { t in
                t.header(.init(name: "._x", size: 4))
                t.data([0, 5, 0x16, 7])
                t.end()
            }, mentions: "AppleDouble"),
        // 25: bombs and limits
        Attack(
            name: "declared size 2^60 (base-256)",
            make: tar { t in
                var h = RawTar()
                h.header(.init(name: "a", size: 0))
                var b = h.bytes
                b[124] = 0x80
                for i in 125..<136 { b[i] = 0 }
                b[128] = 0x10
                for i in 148..<156 { b[i] = 32 }
                let sum = b.reduce(0) { $0 + Int($1) }
                let s = Array(String(sum, radix: 8).utf8)
                for (i, c) in (Array(repeating: UInt8(48), count: 6 - s.count) + s + [0, 32]).enumerated() {
                    b[148 + i] = c
                }
                t.bytes += b
                t.end()
            }, mentions: "base-256"),
        Attack(
            name: "1 MiB pax path",
            make: tar { t in
                t.pax([("path", [UInt8](repeating: 97, count: 1 << 20))])
                t.file("a")
                t.end()
            }, mentions: "pax header"),
        Attack(
            name: "zstd window 2^31",
            make: { [0x28, 0xB5, 0x2F, 0xFD, 0x00, 21 << 3, 0x01 | (0 << 1) | (4 << 3), 0, 0, 0, 0, 0, 0] },
            mentions: "window"),
        Attack(
            name: "concatenated frames",
            make: {
                var t = RawTar()
                t.file("a")
                t.end()
                let one = try t.zstd()
                return one + one
            }, mentions: "after the zstd frame"),
        Attack(
            name: "trailing garbage after the frame",
            make: {
                var t = RawTar()
                t.file("a")
                t.end()
                return try t.zstd() + [1, 2, 3]
            }, mentions: "after the zstd frame"),
        Attack(
            name: "trailing data after the end blocks",
            make: tar { t in
                t.file("a")
                t.end()
                t.bytes += [UInt8](repeating: 0, count: 512) + [UInt8](repeating: 1, count: 512)
            }, mentions: "after the end-of-archive"),
        Attack(
            name: "truncated frame",
            make: {
                var t = RawTar()
                t.file("a")
                t.end()
                let z = try t.zstd()
                return Array(z.prefix(z.count - 5))
            }, mentions: "truncated"),
        Attack(name: "no end blocks", make: tar { t in t.file("a") }, mentions: "truncated"),
        Attack(
            name: "bad header checksum",
            make: tar { t in
                t.file("a")
                t.bytes[0] = UInt8(ascii: "b")
                t.end()
            }, mentions: "checksum"),
        Attack(name: "not zstd at all", make: { Array("hello world, not a bundle".utf8) }, mentions: "zstd"),
        Attack(name: "empty file", make: { [] }, mentions: "truncated"),
    ]

    @Test(arguments: attacks)
    func attack(_ a: Attack) throws {
        let d = TempDir()
        write(try a.make(), to: d.sub("evil.tar.zst"))
        let e = bundleError { try Extractor().extract(bundle: d.sub("evil.tar.zst"), into: d.sub("out")) }
        #expect(e != nil, "accepted a malicious archive")
        #expect(e?.failureKind == .bundler)
        #expect(e?.description.contains(a.mentions) == true, "\(e?.description ?? "nil")")
        #expect(
            try FileManager.default.contentsOfDirectory(atPath: d.path) == ["evil.tar.zst"], "something was written")
    }

    @Test("entry count, total size and ratio limits")
    func limits() throws {
        let d = TempDir()
        var t = RawTar()
        for i in 0..<50 { t.file(String(format: "f%03d", i)) }
        t.end()
        write(try t.zstd(), to: d.sub("many.tar.zst"))
        var l = ExtractLimits()
        l.maxEntries = 49
        #expect(
            bundleError { try Extractor(limits: l).verify(bundle: d.sub("many.tar.zst")) }?.failureSubkind
                == "LIMIT_EXCEEDED")
        l = ExtractLimits()
        l.maxTarBytes = 20_000
        #expect(
            bundleError { try Extractor(limits: l).verify(bundle: d.sub("many.tar.zst")) }?.failureSubkind
                == "LIMIT_EXCEEDED")
        var z = RawTar()
        z.header(.init(name: "zeros", size: 4 << 20))
        z.data([UInt8](repeating: 0, count: 4 << 20))
        z.end()
        write(try z.zstd(level: 19), to: d.sub("bomb.tar.zst"))
        l = ExtractLimits()
        l.ratioFloorBytes = 1 << 20
        l.maxRatio = 100
        #expect(
            bundleError { try Extractor(limits: l).verify(bundle: d.sub("bomb.tar.zst")) }?.description.contains(
                "ratio") == true)
        #expect(try Extractor().verify(bundle: d.sub("bomb.tar.zst")).entryCount == 1)
    }

    @Test("destination hazards: non-empty, a symlink, a file")
    func destinations() throws {
        let d = TempDir()
        Tree(d.sub("t")).file("a")
        try Fixtures.bundle(d.sub("t"), to: d.sub("b.tar.zst"))
        Tree(d.sub("full")).file("x")
        #expect(
            bundleError { try Extractor().extract(bundle: d.sub("b.tar.zst"), into: d.sub("full")) }?.description
                .contains("not empty") == true)
        symlink(d.sub("elsewhere"), d.sub("link"))
        #expect(
            bundleError { try Extractor().extract(bundle: d.sub("b.tar.zst"), into: d.sub("link")) }?.description
                .contains("symlink") == true)
        Tree(d.path).file("plain")
        #expect(bundleError { try Extractor().extract(bundle: d.sub("b.tar.zst"), into: d.sub("plain")) } != nil)
        try FileManager.default.createDirectory(atPath: d.sub("emptydir"), withIntermediateDirectories: false)
        try Extractor().extract(bundle: d.sub("b.tar.zst"), into: d.sub("emptydir"))
        #expect(FileManager.default.fileExists(atPath: d.sub("emptydir/a")))
    }

    @Test("libarchive's own zstd output (another compressor) verifies to the same digest")
    func foreignCompressor() throws {
        let d = TempDir()
        try XcodeTreeGen(seed: 9, scale: 0.02).makeTree(at: d.sub("t"), clean: true)
        let r = try Fixtures.bundle(d.sub("t"), to: d.sub("b.tar.zst"))
        #expect(try Run.shell("zstd -dc '\(d.sub("b.tar.zst"))' | zstd -19 -q -o '\(d.sub("c.tar.zst"))'").status == 0)
        #expect(
            try Extractor().verify(bundle: d.sub("c.tar.zst"), expected: r.sourceSHA256).sourceSHA256 == r.sourceSHA256)
    }
}
