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

@Suite("rch-xcode bundle / extract as a user runs them")
struct CLITests {
    let exe = Fixtures.executable("rch-xcode")

    @Test("bundle into the store, JSON report, extract with --expect")
    func bundleAndExtract() throws {
        let d = TempDir()
        try XcodeTreeGen(seed: 6, scale: 0.02).makeTree(at: d.sub("t"))
        let r = try Run.process(exe, ["bundle", d.sub("t"), "--store", d.sub("store"), "--json"])
        #expect(r.status == 0, "\(r.stderr)")
        let j = try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as! [String: Any]
        let sha = j["source_sha256"] as! String
        for k in ["source_sha256", "tree_sha256", "file_count", "total_bytes", "bundle_bytes"] {
            #expect(j[k] != nil, "missing \(k)")
        }
        #expect(FileManager.default.fileExists(atPath: d.sub("store/bundles/\(sha).tar.zst")))
        #expect(FileManager.default.fileExists(atPath: d.sub("store/bundles/\(sha).manifest.json")))
        let x = try Run.process(
            exe, ["extract", d.sub("store/bundles/\(sha).tar.zst"), "--into", d.sub("out"), "--expect", sha])
        #expect(x.status == 0, "\(x.stderr)")
        #expect(x.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == sha)
        let plain = try Run.process(exe, ["bundle", d.sub("out"), "--store", d.sub("store")])
        #expect(plain.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == sha)
    }

    @Test("--output and --manifest write files; the manifest validates against its JSON Schema")
    func outputAndManifest() throws {
        let d = TempDir()
        try XcodeTreeGen(seed: 6, scale: 0.02).makeTree(at: d.sub("t"))
        let r = try Run.process(
            exe,
            [
                "bundle", d.sub("t"), "--store", d.sub("store"), "--output", d.sub("b.tar.zst"), "--manifest",
                d.sub("m.json"), "--run-id", "run_0123456789",
            ])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(FileManager.default.fileExists(atPath: d.sub("b.tar.zst")))
        let m =
            try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: d.sub("m.json"))))
            as! [String: Any]
        #expect(m["schema_id"] as? String == "rch-xcode/source_manifest@1")
        #expect(m["run_id"] as? String == "run_0123456789")
        let schema = Fixtures.packageRoot + "/schemas/rch-xcode/source_manifest.schema.json"
        let v = try Run.shell("check-jsonschema --schemafile '\(schema)' '\(d.sub("m.json"))'")
        #expect(v.status == 0, "\(v.stdout)\(v.stderr)")
        let storeSchema = Fixtures.packageRoot + "/schemas/rch-xcode/store.schema.json"
        let s = try Run.shell("check-jsonschema --schemafile '\(storeSchema)' '\(d.sub("store/store.json"))'")
        #expect(s.status == 0, "\(s.stdout)\(s.stderr)")
        // A schema that rejects nothing would prove nothing: a broken manifest must fail.
        try Data("{\"schema_version\":1}".utf8).write(to: URL(fileURLWithPath: d.sub("bad.json")))
        #expect(try Run.shell("check-jsonschema --schemafile '\(schema)' '\(d.sub("bad.json"))'").status != 0)
    }

    @Test("rejections exit 92 with the failure kind in --json", arguments: [true, false])
    func exitCodes(json: Bool) throws {
        let d = TempDir()
        Tree(d.sub("t")).file("ok").link("bad", "/etc/passwd")
        let r = try Run.process(exe, ["bundle", d.sub("t"), "--store", d.sub("store")] + (json ? ["--json"] : []))
        #expect(r.status == 92)
        #expect(r.stderr.contains("bad") && r.stderr.contains("absolute"))
        if json { #expect(r.stdout.contains("\"failure_kind\":\"BUNDLER\"")) }
        let big = try Run.process(
            exe, ["bundle", d.sub("t"), "--store", d.sub("store"), "--max-bytes", "1K", "--json"])
        #expect(big.status == 92)
        let bad = try Run.process(exe, ["extract", "/nonexistent.tar.zst", "--into", d.sub("x")])
        #expect(bad.status == 92)
        let usage = try Run.process(exe, ["bundle", "--mode", "nope"])
        #expect(usage.status == 64)
    }
}

@Suite("Stat cache: fast re-bundle that is never wrong")
struct StatCacheTests {
    /// Pretends the last run happened `seconds` later, so that files are no longer "racily clean".
    static func age(_ store: String, by seconds: Int64) throws {
        let dir = store + "/cache/statcache"
        for f in try FileManager.default.contentsOfDirectory(atPath: dir) {
            var c = StatCache(decoding: Array(try Data(contentsOf: URL(fileURLWithPath: dir + "/" + f))))!
            c.recordedAtNanos += seconds * 1_000_000_000
            try Data(c.encoded()).write(to: URL(fileURLWithPath: dir + "/" + f))
        }
    }

    static func bundle(_ root: String, _ store: String) throws -> (sha: String, reused: Bool, tree: String) {
        let r = try Run.process(Fixtures.executable("rch-xcode"), ["bundle", root, "--store", store, "--json"])
        #expect(r.status == 0, "\(r.stderr)")
        let j = try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as! [String: Any]
        return (j["source_sha256"] as! String, j["reused"] as! Bool, j["tree_sha256"] as! String)
    }

    /// What a bundle without any cache gives: (source_sha256, tree_sha256).
    static func fresh(_ root: String) throws -> (sha: String, tree: String) {
        let m = try Bundler.bundle(root: root, output: nil).manifest
        return (m.sourceSHA256.hex, m.treeSHA256.hex)
    }

    @Test("unchanged → reused; edits, renames, chmod, same-size rewrites → re-read")
    func reuseAndInvalidation() throws {
        let d = TempDir()
        try XcodeTreeGen(seed: 8, scale: 0.02).makeTree(at: d.sub("t"))
        let store = d.sub("store")
        let first = try Self.bundle(d.sub("t"), store)
        #expect(!first.reused)
        // Files written less than the racy window before the run are not trusted yet.
        #expect(try Self.bundle(d.sub("t"), store).reused == false)
        try Self.age(store, by: 60)
        let warm = try Self.bundle(d.sub("t"), store)
        #expect(warm.reused && warm.sha == first.sha)

        // Same size, same mtime, different bytes: only ctime (and the inode, for a rewrite) tells.
        let p = d.sub("t/App/Sources/Empty.swift")
        var st = stat()
        let victim = d.sub("t/Package.resolved")
        stat(victim, &st)
        var data = Array(try Data(contentsOf: URL(fileURLWithPath: victim)))
        data[0] = data[0] == 65 ? 66 : 65
        let fd = open(victim, O_WRONLY)
        _ = data.withUnsafeBytes { pwrite(fd, $0.baseAddress, $0.count, 0) }
        close(fd)
        let mt = FileIdentity(st).mtimeNanos
        var times = [
            timespec(tv_sec: Int(mt / 1_000_000_000), tv_nsec: Int(mt % 1_000_000_000)),
            timespec(tv_sec: Int(mt / 1_000_000_000), tv_nsec: Int(mt % 1_000_000_000)),
        ]
        utimensat(AT_FDCWD, victim, &times, 0)
        try Self.age(store, by: 60)
        let edited = try Self.bundle(d.sub("t"), store)
        #expect(!edited.reused && edited.sha != first.sha)
        // The unchanged files kept their cached digests, the edited one was hashed again.
        let editedFresh = try Self.fresh(d.sub("t"))
        #expect(edited.sha == editedFresh.sha && edited.tree == editedFresh.tree)

        for change in [
            "chmod +x '\(p)'", "mv '\(p)' '\(p).moved.swift'", "echo new > '\(d.sub("t/New.swift"))'",
            "rm '\(d.sub("t/New.swift"))'",
        ] {
            try Self.age(store, by: 60)
            let before = try Self.bundle(d.sub("t"), store)
            #expect(try Run.shell(change).status == 0)
            try Self.age(store, by: 60)
            let after = try Self.bundle(d.sub("t"), store)
            #expect(!after.reused, "\(change)")
            let afterFresh = try Self.fresh(d.sub("t"))
            #expect(after.sha == afterFresh.sha && after.tree == afterFresh.tree, "\(change)")
            _ = before
        }
    }

    @Test("a cache hit never hides a rule: a collision added after a cached run is refused")
    func validationAfterHit() throws {
        let d = TempDir()
        Tree(d.sub("t")).file("Foo.swift", "1").file("b", "2")
        let store = d.sub("store")
        _ = try Self.bundle(d.sub("t"), store)
        try Self.age(store, by: 60)
        #expect(try Self.bundle(d.sub("t"), store).reused)
        Tree(d.sub("t")).file("foo.swift", "3")
        let r = try Run.process(Fixtures.executable("rch-xcode"), ["bundle", d.sub("t"), "--store", store])
        #expect(r.status == 92)
        #expect(r.stderr.contains("case-insensitive"))
    }

    @Test("a missing stored bundle or a corrupt cache file falls back to a full bundle")
    func fallbacks() throws {
        let d = TempDir()
        Tree(d.sub("t")).file("a", "1").file("b", "2")
        let store = d.sub("store")
        let first = try Self.bundle(d.sub("t"), store)
        try Self.age(store, by: 60)
        try FileManager.default.removeItem(atPath: store + "/bundles/\(first.sha).tar.zst")
        let again = try Self.bundle(d.sub("t"), store)
        #expect(!again.reused && again.sha == first.sha)
        for f in try FileManager.default.contentsOfDirectory(atPath: store + "/cache/statcache") {
            try Data([1, 2, 3]).write(to: URL(fileURLWithPath: store + "/cache/statcache/" + f))
        }
        #expect(try Self.bundle(d.sub("t"), store).sha == first.sha)
    }

    @Test("racy entries are never trusted")
    func racy() throws {
        let id = FileIdentity(
            device: 1, inode: 2, size: 3, mtimeNanos: 10_000_000_000, ctimeNanos: 10_000_000_000, mode: 0o100644)
        var c = StatCache(recordedAtNanos: 11_000_000_000, formatTag: StatCache.currentFormatTag)
        c.records["a"] = .init(identity: id, sha256: .empty)
        let e = SelectedEntry(
            path: "a", pathBytes: Array("a".utf8), diskPath: Array("a".utf8), kind: .file(executable: false),
            identity: id)
        #expect(c.digest(for: e) == nil)
        c.recordedAtNanos = 13_000_000_000
        #expect(c.digest(for: e) == .empty)
        var other = e
        other.identity.ctimeNanos += 1
        #expect(c.digest(for: other) == nil)
        #expect(StatCache(decoding: c.encoded())?.records == c.records)
    }
}
