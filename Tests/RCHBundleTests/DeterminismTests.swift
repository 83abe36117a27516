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

@Suite("Determinism: same content, same source_sha256")
struct DeterminismTests {
    static func sample(_ root: String, order: [Int] = [0, 1, 2, 3, 4], modes: (mode_t, mode_t) = (0o644, 0o755)) {
        let t = Tree(root)
        let steps: [() -> Void] = [
            { t.file("App/Sources/Main.swift", "print(1)\n", mode: modes.0) },
            { t.file("Scripts/run.sh", "#!/bin/sh\n", mode: modes.1) },
            { t.file("Ünïcödé/Café.swift", "// café\n", mode: modes.0) },
            {
                t.link("Vendor/Foo.framework/Versions/Current", "A")
                t.file("Vendor/Foo.framework/Versions/A/Foo", "bin", mode: modes.1)
            },
            { t.file("Empty.txt", "", mode: modes.0) },
        ]
        for i in order { steps[i]() }
    }

    @Test("two locations, creation order, umask and permission variations")
    func orderAndPermissions() throws {
        let d = TempDir()
        Self.sample(d.sub("a"))
        Self.sample(d.sub("b"), order: [4, 3, 2, 1, 0], modes: (0o600, 0o700))
        Self.sample(d.sub("c"), order: [2, 0, 4, 1, 3], modes: (0o664, 0o775))
        let old = umask(0o077)
        Self.sample(d.sub("e"), order: [1, 2, 3, 4, 0], modes: (0o666, 0o750))
        umask(old)
        let a = try Fixtures.digest(d.sub("a"))
        #expect(try Fixtures.digest(d.sub("b")) == a)
        #expect(try Fixtures.digest(d.sub("c")) == a)
        #expect(try Fixtures.digest(d.sub("e")) == a)
    }

    @Test("mtimes and atimes do not matter")
    func mtimes() throws {
        let d = TempDir()
        Self.sample(d.sub("a"))
        let before = try Fixtures.digest(d.sub("a"))
        var times = [timespec(tv_sec: 12345, tv_nsec: 0), timespec(tv_sec: 999_999_999, tv_nsec: 5)]
        for p in ["App/Sources/Main.swift", "Scripts/run.sh", "Ünïcödé/Café.swift", "Empty.txt"] {
            #expect(utimensat(AT_FDCWD, d.sub("a/" + p), &times, 0) == 0)
        }
        #expect(try Fixtures.digest(d.sub("a")) == before)
    }

    @Test(
        "exec bits fold to 0755, everything else to 0644",
        arguments: [
            (0o700 as mode_t, true), (0o750, true), (0o775, true), (0o4755, true), (0o100, true),
            (0o600, false), (0o666, false), (0o2644, false), (0o400, false),
        ])
    func execBits(mode: mode_t, executable: Bool) throws {
        let d = TempDir()
        Tree(d.sub("a")).file("f", "x", mode: mode)
        Tree(d.sub("b")).file("f", "x", mode: executable ? 0o755 : 0o644)
        #expect(try Fixtures.digest(d.sub("a")) == (try Fixtures.digest(d.sub("b"))))
        let r = try Bundler.bundle(root: d.sub("a"), output: nil)
        #expect(r.manifest.entries[0].executable == executable)
    }

    @Test("NFD names on disk bundle as NFC; both at once collide")
    func normalisation() throws {
        let d = TempDir()
        Tree(d.sub("nfc")).file("Caf\u{E9}.swift", "x")
        Tree(d.sub("nfd")).bytes("dummy", [])
        try FileManager.default.removeItem(atPath: d.sub("nfd/dummy"))
        Tree(d.sub("nfd")).rawName("", Array("Cafe\u{301}.swift".utf8))
        #expect(try Fixtures.digest(d.sub("nfc")) == (try Fixtures.digest(d.sub("nfd"))))
        let r = try Bundler.bundle(root: d.sub("nfd"), output: nil)
        #expect(Array(r.manifest.entries[0].path.utf8) == Array("Caf\u{E9}.swift".utf8))
        Tree(d.sub("nfd")).rawName("", Array("Caf\u{E9}.swift".utf8))
        #expect(bundleError { _ = try Fixtures.digest(d.sub("nfd")) }?.failureSubkind == "PATH_COLLISION")
    }

    @Test("a hardlinked pair bundles like two copies")
    func hardlinks() throws {
        let d = TempDir()
        Tree(d.sub("a")).file("x", "same").file("y", "same")
        Tree(d.sub("b")).file("x", "same")
        #expect(link(d.sub("b/x"), d.sub("b/y")) == 0)
        #expect(try Fixtures.digest(d.sub("a")) == (try Fixtures.digest(d.sub("b"))))
    }

    @Test("empty directories are dropped; the empty tree is 1024 zero bytes")
    func emptyDirectories() throws {
        let d = TempDir()
        Tree(d.sub("a")).file("x")
        Tree(d.sub("b")).file("x")
        try FileManager.default.createDirectory(atPath: d.sub("b/empty/deeper"), withIntermediateDirectories: true)
        #expect(try Fixtures.digest(d.sub("a")) == (try Fixtures.digest(d.sub("b"))))
        try FileManager.default.createDirectory(atPath: d.sub("c/only-dirs"), withIntermediateDirectories: true)
        #expect(try Fixtures.digest(d.sub("c")) == SHA256Digest.of([UInt8](repeating: 0, count: 1024)).hex)
    }

    @Test("xattrs are never bundled")
    func xattrs() throws {
        let d = TempDir()
        Self.sample(d.sub("a"))
        let before = try Fixtures.digest(d.sub("a"))
        let set = try Run.process(
            "/usr/bin/env",
            [
                "python3", "-c", "import os,sys; os.setxattr(sys.argv[1], 'user.com.apple.quarantine', b'0081;x')",
                d.sub("a/Empty.txt"),
            ])
        #expect(set.status == 0, "\(set.stderr)")
        #expect(try Fixtures.digest(d.sub("a")) == before)
    }

    @Test(
        "zstd level and threads change the .zst bytes, never the digest",
        arguments: [(1, 0), (3, 0), (3, 2), (19, 0), (9, 4)])
    func compressionIndependence(level: Int, workers: Int) throws {
        let d = TempDir()
        try XcodeTreeGen(seed: 3, scale: 0.02).makeTree(at: d.sub("t"), clean: true)
        var o = BundleOptions()
        o.compressionLevel = level
        o.compressionWorkers = workers
        let r = try Fixtures.bundle(d.sub("t"), to: d.sub("b.tar.zst"), options: o)
        let v = try Extractor().verify(bundle: d.sub("b.tar.zst"), expected: r.sourceSHA256)
        #expect(v.sourceSHA256 == (try Bundler.bundle(root: d.sub("t"), output: nil).sourceSHA256))
        #expect(v.treeSHA256 == r.manifest.treeSHA256)
    }

    @Test("the process locale does not matter (LANG/LC_ALL unset, C, POSIX, C.UTF-8)")
    func locales() throws {
        let d = TempDir()
        Self.sample(d.sub("a"))
        let exe = Fixtures.executable("rch-xcode")
        var base = ProcessInfo.processInfo.environment
        base["LANG"] = nil
        base["LC_ALL"] = nil
        base["LC_CTYPE"] = nil
        var digests = Set<String>()
        for (k, v) in [("", ""), ("LANG", "C"), ("LC_ALL", "POSIX"), ("LC_ALL", "C.UTF-8"), ("LANG", "en_US.UTF-8")] {
            var env = base
            if !k.isEmpty { env[k] = v }
            env["TZ"] = "Pacific/Kiritimati"
            let r = try Run.process(
                exe, ["bundle", d.sub("a"), "--store", d.sub("store"), "--no-stat-cache"], env: env)
            #expect(r.status == 0, "\(r.stderr)")
            digests.insert(r.stdout.trimmingCharacters(in: .whitespacesAndNewlines))
        }
        #expect(digests.count == 1)
        #expect(digests.first == (try Fixtures.digest(d.sub("a"))))
    }

    @Test("sort order is bytewise on the NFC path")
    func sortOrder() throws {
        let d = TempDir()
        let names = ["a-b/x", "a/b", "a.b", "a0", "B", "\u{E9}", "e\u{301}z", "Z", "a b"]
        for n in names { Tree(d.sub("t")).file(n) }
        let r = try Bundler.bundle(root: d.sub("t"), output: nil)
        #expect(r.manifest.entries.map(\.path) == ["B", "Z", "a b", "a-b/x", "a.b", "a/b", "a0", "\u{E9}", "\u{E9}z"])
        #expect(
            r.manifest.entries.map { Array($0.path.utf8) }
                == r.manifest.entries.map { Array($0.path.utf8) }.sorted { $0.lexicographicallyPrecedes($1) })
    }
}
