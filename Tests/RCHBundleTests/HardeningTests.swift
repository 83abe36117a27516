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

/// The bundler faults found by black-box probes (issue 13), each shown failing before its fix.
@Suite("Bundler hardening")
struct HardeningTests {
    static let unnamable: [(String, [UInt8])] = [
        ("backslash", Array("win\\name.txt".utf8)),
        ("control character", Array("bell\u{07}.txt".utf8)),
        ("invalid UTF-8", [0x66, 0xFF, 0x66]),
    ]

    @Test(".rchignore can exclude a name the path rules refuse (worktree and git_index)", arguments: [0, 1, 2])
    func excludeUnnamable(_ i: Int) throws {
        let (_, name) = Self.unnamable[i]
        let d = TempDir()
        let t = Tree(d.sub("r"))
        t.file("App.swift")
        t.rawName("junk", name)
        var o = BundleOptions()
        // Without a rule the name is refused (exit 92 naming it).
        #expect(bundleError { _ = try Bundler.bundle(root: d.sub("r"), options: o, output: nil) } != nil)
        t.file(".rchignore", "junk/\n")
        var r = try Bundler.bundle(root: d.sub("r"), options: o, output: nil)
        #expect(r.manifest.entries.map(\.path) == [".rchignore", "App.swift"])
        // A pattern that matches the raw name itself (not only its directory).
        t.file(".rchignore", "junk/*\n")
        r = try Bundler.bundle(root: d.sub("r"), options: o, output: nil)
        #expect(r.manifest.entries.map(\.path) == [".rchignore", "App.swift"])
        // git_index mode: the same name tracked by git is excluded by the same rule.
        try GitIndexTests.git(d.sub("r"), "init -q && git add -A && git -c user.name=t -c user.email=t@e commit -qm x")
        o.mode = .gitIndex
        r = try Bundler.bundle(root: d.sub("r"), options: o, output: nil)
        #expect(r.manifest.entries.map(\.path) == [".rchignore", "App.swift"])
    }

    @Test("git_index: a tracked path whose parent became a symlink is refused, never read through")
    func symlinkedParent() throws {
        let d = TempDir()
        let t = Tree(d.sub("r"))
        t.file("App.swift").file("conf/settings.txt", "in the repository")
        try GitIndexTests.git(d.sub("r"), "init -q && git add -A && git -c user.name=t -c user.email=t@e commit -qm x")
        Tree(d.sub("outside")).file("settings.txt", "SECRET from outside the repository")
        try FileManager.default.removeItem(atPath: d.sub("r/conf"))
        symlink(d.sub("outside"), d.sub("r/conf"))
        var o = BundleOptions()
        o.mode = .gitIndex
        let e = bundleError { _ = try Fixtures.bundle(d.sub("r"), to: d.sub("out.tar.zst"), options: o) }
        #expect(
            e?.description.contains("conf") == true && e?.description.contains("not a directory") == true,
            "\(String(describing: e))")
        #expect(!FileManager.default.fileExists(atPath: d.sub("out.tar.zst")))
    }

    @Test(".rch/artifacts is excluded at any depth; .rch/xcode.toml kept")
    func nestedArtifacts() throws {
        let d = TempDir()
        Tree(d.sub("r")).file(".rch/artifacts/a.json").file("Pkg/.rch/artifacts/run/summary.json").file(
            "Pkg/.rch/xcode.toml"
        ).file("x.swift")
        let r = try Bundler.bundle(root: d.sub("r"), output: nil)
        #expect(r.manifest.entries.map(\.path) == ["Pkg/.rch/xcode.toml", "x.swift"])
    }

    @Test(".rchignore lines: trailing spaces trimmed unless escaped, CRLF accepted, tabs significant")
    func lineRules() throws {
        let d = TempDir()
        let t = Tree(d.sub("r"))
        t.file("spaced.txt").file("keep ").file("crlf.txt").file("x.swift")
        t.rawName("", Array("tab\t".utf8))  // a control character: refused unless excluded
        t.file(".rchignore", "spaced.txt   \nkeep\\ \r\ncrlf.txt\r\ntab\t\n")
        let r = try Bundler.bundle(root: d.sub("r"), output: nil)
        #expect(r.manifest.entries.map(\.path) == [".rchignore", "x.swift"])
        // With tab trimming (the old behaviour) "tab" would not match "tab\t" and the bundle would fail.
        let rules = IgnoreRules(rchignore: Array("tab\t\n".utf8))
        #expect(
            rules.excludes(Array("tab\t".utf8), isDirectory: false)
                && !rules.excludes(Array("tab".utf8), isDirectory: false))
    }

    @Test("`**` matching is polynomial: many `**` segments never hang the bundler (found by the FuzzIgnore target)")
    func doubleStar() {
        let rules = IgnoreRules(rchignore: Array((String(repeating: "**/", count: 40) + "x").utf8))
        let deep = Array((0..<60).map { _ in "d" }.joined(separator: "/").utf8)
        let started = Timestamp.nowNanos()
        #expect(!rules.excludes(deep, isDirectory: false))
        #expect(rules.excludes(deep + Array("/x".utf8), isDirectory: false))
        #expect(rules.excludes(Array("x".utf8), isDirectory: false))  // every `**` may match nothing
        // A hang guard, not a performance target: the old backtracking took exponential time here.
        #expect(Timestamp.nowNanos() - started < 5_000_000_000)
    }
}
