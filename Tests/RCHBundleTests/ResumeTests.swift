import Foundation
import RCHBundle
import RCHCore
import RCHStore
import RCHTestSupport
import Testing
import XcodeTreeGen

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// A digest-only bundle resumes the tar hash after the unchanged first entries (stat cache checkpoints): its
/// `source_sha256`, `tree_sha256` and size are always those of a bundle made from nothing.
@Suite("Stat cache checkpoints: resumed digests equal full ones")
struct ResumeTests {
    struct Case: CustomStringConvertible, Sendable {
        var description: String
        /// Changes the tree; returns the path of the first entry (bundle order) whose tar bytes changed.
        var change: @Sendable (String) throws -> String
    }

    static func write(_ path: String, _ text: String) throws {
        try Data(text.utf8).write(to: URL(fileURLWithPath: path))
    }

    static let cases: [Case] = [
        Case(description: "edit of the last file") { root in
            let last = try Self.paths(root).last!
            try Self.write(root + "/" + last, "changed\n")
            return last
        },
        Case(description: "edit of a file in the middle") { root in
            let p = try Self.paths(root)
            let mid = p[p.count / 2]
            try Self.write(root + "/" + mid, "changed in the middle\n")
            return mid
        },
        Case(description: "a file added in the middle") { root in
            let p = try Self.paths(root)
            let added = p[p.count / 2] + "-added"
            try Self.write(root + "/" + added, "new\n")
            return added
        },
        Case(description: "a file removed") { root in
            let p = try Self.paths(root)
            unlink(root + "/" + p[p.count / 2])
            return p[p.count / 2 + 1]
        },
        Case(description: "chmod +x") { root in
            let p = try Self.paths(root)
            chmod(root + "/" + p[p.count / 3], 0o755)
            return p[p.count / 3]
        },
        Case(description: "a symlink retargeted") { root in
            let now = (try? FileManager.default.destinationOfSymbolicLink(atPath: root + "/zz-link")) ?? ""
            unlink(root + "/zz-link")
            symlink(now + "x", root + "/zz-link")
            return "zz-link"
        },
        Case(description: "same size and mtime, other bytes (only ctime tells)") { root in
            let p = try Self.paths(root)
            let victim = root + "/" + p[p.count / 4]
            var st = stat()
            stat(victim, &st)
            var data = Array(try Data(contentsOf: URL(fileURLWithPath: victim)))
            data[0] ^= 1
            let fd = open(victim, O_WRONLY)
            _ = data.withUnsafeBytes { pwrite(fd, $0.baseAddress, $0.count, 0) }
            close(fd)
            var times = [st.st_atim, st.st_mtim]
            utimensat(AT_FDCWD, victim, &times, 0)
            return p[p.count / 4]
        },
    ]

    /// Entry paths in bundle order.
    static func paths(_ root: String) throws -> [String] {
        try Bundler.bundle(root: root, output: nil).manifest.entries.map(\.path)
    }

    static func age(_ store: LocalStore) throws {
        let dir = store.cacheDirectory + "/statcache"
        for f in try FileManager.default.contentsOfDirectory(atPath: dir) {
            var c = StatCache(decoding: Array(try Data(contentsOf: URL(fileURLWithPath: dir + "/" + f))))!
            c.recordedAtNanos += 60_000_000_000
            try Data(c.encoded()).write(to: URL(fileURLWithPath: dir + "/" + f))
        }
    }

    static func cache(_ store: LocalStore) throws -> StatCache {
        let dir = store.cacheDirectory + "/statcache"
        let f = try FileManager.default.contentsOfDirectory(atPath: dir).first!
        return StatCache(decoding: Array(try Data(contentsOf: URL(fileURLWithPath: dir + "/" + f))))!
    }

    @Test("resumed after the unchanged prefix, twice in a row", arguments: cases)
    func resumed(_ c: Case) throws {
        let d = TempDir()
        let root = d.sub("t")
        try XcodeTreeGen(seed: 3, scale: 0.01).makeTree(at: root)
        symlink("App", root + "/zz-link")
        let store = try LocalStore(root: d.sub("store"))
        let bundler = HostBundler(store: store)
        let options = BundleOptions()
        _ = try bundler.bundle(root: root, options: options, compressed: false)
        for round in 0..<2 {
            try Self.age(store)
            let first = try c.change(root)
            let selection = try TreeSelector(root: root, mode: .worktree, ignore: options.ignore).collect()
            let resume = try Self.cache(store).resume(for: selection)
            let expected = selection.entries.firstIndex { $0.path == first }!
            #expect(
                (resume?.entries.count ?? 0) == expected, "round \(round): prefix \(resume?.entries.count ?? 0)")
            let got = try bundler.bundle(root: root, options: options, compressed: false).manifest
            let fresh = try Bundler.bundle(root: root, options: options, output: nil).manifest
            #expect(got.sourceSHA256 == fresh.sourceSHA256, "round \(round)")
            #expect(got.treeSHA256 == fresh.treeSHA256 && got.tarBytes == fresh.tarBytes)
            #expect(got.entries == fresh.entries)
            #expect(try Self.cache(store).checkpoints.count == fresh.entries.count)
        }
    }

    @Test("a checkpoint that was tampered with gives another digest, never a silent one: consumers refuse it")
    func tampered() throws {
        let d = TempDir()
        let root = d.sub("t")
        try XcodeTreeGen(seed: 3, scale: 0.01).makeTree(at: root)
        let store = try LocalStore(root: d.sub("store"))
        _ = try HostBundler(store: store).bundle(root: root, options: BundleOptions(), compressed: false)
        try Self.age(store)
        let last = try Self.paths(root).last!
        try Self.write(root + "/" + last, "changed\n")
        let selection = try TreeSelector(root: root, mode: .worktree, ignore: nil).collect()
        var resume = try Self.cache(store).resume(for: selection)!
        resume.checkpoints[resume.checkpoints.count - 1].words[0] ^= 1
        let got = try Bundler.write(
            selection: selection, root: root, options: BundleOptions(), output: nil, resume: resume
        ).manifest
        #expect(got.sourceSHA256 != (try Bundler.bundle(root: root, output: nil)).manifest.sourceSHA256)
    }
}
