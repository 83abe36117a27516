import Foundation
import RCHCore
import RCHTestSupport
import Testing

@testable import RCHBundle

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

@Suite("Bundler rejections: BUNDLER (92), path named, nothing written")
struct RejectionTests {
    struct Case: CustomTestStringConvertible, Sendable {
        let name: String
        let build: @Sendable (Tree) -> Void
        let mentions: String
        var testDescription: String { name }
    }

    static let cases: [Case] = [
        Case(name: "absolute symlink", build: { $0.link("abs", "/etc/passwd") }, mentions: "abs"),
        Case(name: "escaping symlink", build: { $0.link("a/b/esc", "../../../x") }, mentions: "escapes"),
        Case(name: "symlink with .. after a name", build: { $0.link("d/s", "x/../../..") }, mentions: "d/s"),
        Case(name: "symlink with //", build: { $0.link("s", "a//b") }, mentions: "empty component"),
        Case(name: "symlink with ./", build: { $0.link("s", "./a") }, mentions: "'.'"),
        Case(name: "invalid UTF-8 name", build: { $0.rawName("dir", [0x66, 0xFF, 0x6F]) }, mentions: "UTF-8"),
        Case(name: "newline in name", build: { $0.file("a\nb") }, mentions: "control character"),
        Case(name: "carriage return in name", build: { $0.file("a\rb") }, mentions: "control character"),
        Case(name: "tab in name", build: { $0.file("a\tb") }, mentions: "control character"),
        Case(name: "backslash in name", build: { $0.file("a\\b") }, mentions: "'\\'"),
        // Linux refuses to create a 256-byte name; U+0958 is 3 bytes on disk and 6 in NFC (a composition exclusion).
        Case(
            name: "component over 255 bytes after NFC", build: { $0.file(String(repeating: "\u{0958}", count: 43)) },
            mentions: "255-byte"),
        Case(
            name: "1024-byte path",
            build: { t in
                t.file(
                    (0..<8).map { _ in String(repeating: "d", count: 120) }.joined(separator: "/") + "/"
                        + String(repeating: "f", count: 63))
            }, mentions: "1023-byte"),
        Case(name: "case collision", build: { $0.file("Foo.swift").file("foo.swift") }, mentions: "case-insensitive"),
        Case(
            name: "directory case collision", build: { $0.file("Assets/x").file("assets/y") },
            mentions: "case-insensitive"),
        Case(name: "Kelvin sign", build: { $0.file("K").file("\u{212A}") }, mentions: "case-insensitive"),
        Case(name: "sharp s", build: { $0.file("stra\u{DF}e").file("strasse") }, mentions: "case-insensitive"),
        Case(name: "file vs directory", build: { $0.file("A").file("a/b") }, mentions: "needs a directory"),
        Case(name: "FIFO", build: { t in mkfifo(t.root + "/pipe", 0o644) }, mentions: "FIFO"),
        Case(
            name: "socket",
            build: { t in
                #if canImport(Darwin)
                    let fd = socket(AF_UNIX, SOCK_STREAM, 0)
                #else
                    let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
                #endif
                var addr = sockaddr_un()
                addr.sun_family = sa_family_t(AF_UNIX)
                let path = t.root + "/sock"
                withUnsafeMutableBytes(of: &addr.sun_path) { p in for (i, c) in path.utf8.enumerated() { p[i] = c } }
                _ = withUnsafePointer(to: &addr) {
                    $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                        bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
                    }
                }
                close(fd)
            }, mentions: "socket"),
    ]

    @Test(arguments: cases)
    func rejected(_ c: Case) throws {
        let d = TempDir()
        let t = Tree(d.sub("t"))
        t.file("ok.swift")
        c.build(t)
        let e = bundleError { try Fixtures.bundle(d.sub("t"), to: d.sub("out.tar.zst")) }
        #expect(e != nil, "expected a rejection")
        #expect(e?.failureKind == .bundler)
        #expect(e?.failureKind.exitCode == 92)
        #expect(e?.description.contains(c.mentions) == true, "\(e?.description ?? "")")
        // Nothing written: no output, no temp file.
        let left = try FileManager.default.contentsOfDirectory(atPath: d.path).filter { $0 != "t" }
        #expect(left.isEmpty, "left behind: \(left)")
    }

    @Test("length limits on canonical names", arguments: [(255, true), (256, false)])
    func componentLength(length: Int, ok: Bool) {
        let name = try? PathRules.canonicalPath(Array(String(repeating: "x", count: length).utf8))
        #expect((name != nil) == ok)
        let path =
            (0..<8).map { _ in String(repeating: "d", count: 126) }.joined(separator: "/") + "/"
            + String(repeating: "f", count: ok ? 7 : 8)
        #expect(path.utf8.count == (ok ? 1023 : 1024))
        let full = try? PathRules.canonicalPath(Array(path.utf8))
        #expect((full != nil) == ok)
    }

    @Test(
        "a file changed after selection is detected (grown, truncated, replaced)",
        arguments: ["grow", "truncate", "replace", "touch"])
    func fileChanged(how: String) throws {
        let d = TempDir()
        let t = Tree(d.sub("t")).file("a.swift", "original content\n").file("b.swift", "b")
        let selection = try TreeSelector(root: d.sub("t")).select()
        let p = d.sub("t/a.swift")
        switch how {
        case "grow": t.file("a.swift", "original content\n plus more\n")
        case "truncate": #expect(truncate(p, 3) == 0)
        case "replace":
            unlink(p)
            t.file("a.swift", "original content\n")
        default: #expect(chmod(p, 0o600) == 0)  // same bytes, same size: only ctime tells
        }
        let tmp = try TempFile(directory: d.path)
        let e = bundleError {
            _ = try Bundler.write(selection: selection, root: d.sub("t"), options: BundleOptions(), output: tmp)
        }
        tmp.discard()
        #expect(e == .fileChanged(path: "a.swift"))
    }

    @Test("bundle over --max-bytes: SIZE_EXCEEDED before and while writing")
    func sizeLimit() throws {
        let d = TempDir()
        Tree(d.sub("t")).bytes("big", [UInt8](repeating: 7, count: 100_000))
        var o = BundleOptions()
        o.maxBytes = 50_000
        #expect(
            bundleError { try Fixtures.bundle(d.sub("t"), to: d.sub("o.tar.zst"), options: o) }?.failureSubkind
                == "SIZE_EXCEEDED")
        o.maxBytes = 100_500  // content fits, the tar (headers + padding + end blocks) does not
        #expect(
            bundleError { try Fixtures.bundle(d.sub("t"), to: d.sub("o.tar.zst"), options: o) }?.failureSubkind
                == "SIZE_EXCEEDED")
        #expect(!FileManager.default.fileExists(atPath: d.sub("o.tar.zst")))
    }

    @Test("an unreadable file is an error, not a skip")
    func unreadable() throws {
        guard getuid() != 0 else { return }  // root reads everything; the rule is exercised elsewhere
        let d = TempDir()
        Tree(d.sub("t")).file("secret", "x", mode: 0o000)
        #expect(bundleError { _ = try Fixtures.digest(d.sub("t")) } != nil)
    }

    @Test("symlinks: loops and directories are not followed; dangling internal links warn")
    func symlinkEdgeCases() throws {
        let d = TempDir()
        Tree(d.sub("t")).file("real/f").link("loop1", "loop2").link("loop2", "loop1").link("dirlink", "real").link(
            "dangling", "nowhere/x"
        )
        .link("real/up", "../real/f")
        let r = try Bundler.bundle(root: d.sub("t"), output: nil)
        #expect(r.manifest.entries.map(\.path) == ["dangling", "dirlink", "loop1", "loop2", "real/f", "real/up"])
        #expect(r.warnings.contains { $0.contains("dangling") })
        #expect(r.warnings.contains { $0.contains("loop1") })
        #expect(!r.warnings.contains { $0.contains("dirlink") || $0.contains("real/up") })
    }
}
