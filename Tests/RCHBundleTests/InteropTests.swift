import Foundation
import RCHCore
import RCHTestSupport
import Testing
import XcodeTreeGen

@testable import RCHBundle

@Suite("Bundles are ordinary tar.zst files")
struct InteropTests {
    @Test("zstd CLI, GNU tar and bsdtar read them; extracted trees match ours")
    func readers() throws {
        let d = TempDir()
        try XcodeTreeGen(seed: 4, scale: 0.02).makeTree(at: d.sub("t"))
        let r = try Fixtures.bundle(d.sub("t"), to: d.sub("b.tar.zst"))
        let b = d.sub("b.tar.zst")
        #expect(try Run.shell("zstd -t -q '\(b)'").status == 0)
        let sum = try Run.shell("zstd -dc '\(b)' | sha256sum")
        #expect(sum.stdout.hasPrefix(r.sourceSHA256.hex))
        try Extractor().extract(bundle: b, into: d.sub("ours"))
        for (name, cmd) in [
            ("gnu", "mkdir gnu && zstd -dc '\(b)' | tar -x -C gnu"), ("bsd", "mkdir bsd && bsdtar -xf '\(b)' -C bsd"),
        ] {
            let x = try Run.shell(cmd, cwd: d.path)
            #expect(x.status == 0, "\(x.stderr)")
            #expect(x.stderr.isEmpty, "\(name): \(x.stderr)")
            let diff = try Run.shell("diff -r --no-dereference ours \(name)", cwd: d.path)
            #expect(diff.status == 0, "\(diff.stdout)")
        }
        let list = try Run.shell("zstd -dc '\(b)' | tar -tv --numeric-owner | head -3")
        #expect(list.stdout.contains(" 0/0 "))
        #expect(list.stdout.contains("1970-01-01"))
    }
}
