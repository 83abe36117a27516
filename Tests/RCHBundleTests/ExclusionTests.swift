import Foundation
import RCHCore
import RCHTestSupport
import Testing
import XcodeTreeGen

@testable import RCHBundle

@Suite("What goes in and what stays out")
struct ExclusionTests {
    @Test("default excludes and keeps")
    func defaults() throws {
        let d = TempDir()
        let t = Tree(d.sub("t"))
        let excluded = [
            ".git/HEAD", "sub/.git", ".DS_Store", "App/.DS_Store", "App/._Info.plist", "DerivedData/x.o",
            ".build/debug/x.o",
            "App.xcodeproj/xcuserdata/me.xcuserdatad/x.xcscheme",
            "Foo.xcworkspace/xcuserdata/u/UserInterfaceState.xcuserstate",
            "App.xcodeproj/project.xcworkspace/me.xcuserstate", ".swiftpm/xcode/xcuserdata/me/state.plist",
            "Tests.xcresult/Info.plist", "__MACOSX/x", ".rch/artifacts/run/summary.json", ".svn/entries",
            "Pkg/.build/x",
        ]
        let kept = [
            "App.xcodeproj/project.pbxproj", "App.xcodeproj/xcshareddata/xcschemes/App.xcscheme",
            "App.xcodeproj/project.xcworkspace/xcshareddata/swiftpm/Package.resolved", "Package.resolved",
            ".swiftpm/configuration/mirrors.json", ".rch/xcode.toml", ".rchignore", "Sources/DerivedDataHelper.swift",
            "build.xcresult.txt",
        ]
        for p in excluded + kept { t.file(p) }
        let r = try Bundler.bundle(root: d.sub("t"), output: nil)
        #expect(Set(r.manifest.entries.map(\.path)) == Set(kept))
    }

    @Test(
        ".rchignore: globs, anchoring, directories, negation, comments",
        arguments: [
            ("*.tmp", ["a.tmp", "x/b.tmp"], ["a.tmpl", "c.swift"]),
            ("LocalNotes/", ["LocalNotes/todo.md", "x/LocalNotes/y"], ["LocalNotes.md"]),
            ("/top.txt", ["top.txt"], ["sub/top.txt"]),
            ("docs/*.md", ["docs/a.md"], ["docs/sub/b.md", "x/docs/a.md"]),
            ("**/gen/**", ["gen/a", "x/gen/y/z"], ["generated/a"]),
            ("*.log\n!keep.log", ["a.log"], ["keep.log"]),
            ("# comment\n\n  \nFile[0-9].txt", ["File3.txt"], ["FileX.txt", "# comment"]),
            ("a?c", ["abc"], ["ac", "abbc"]),
        ])
    func rchignore(patterns: String, excluded: [String], kept: [String]) throws {
        let d = TempDir()
        let t = Tree(d.sub("t"))
        for p in excluded + kept { t.file(p) }
        t.file(".rchignore", patterns)
        let r = try Bundler.bundle(root: d.sub("t"), output: nil)
        #expect(Set(r.manifest.entries.map(\.path)) == Set(kept + [".rchignore"]))
    }

    @Test("the generator's tree: debris out, everything else in")
    func generatedTree() throws {
        let d = TempDir()
        try XcodeTreeGen(seed: 1, scale: 0.02).makeTree(at: d.sub("t"))
        let r = try Bundler.bundle(root: d.sub("t"), output: nil)
        let paths = Set(r.manifest.entries.map(\.path))
        #expect(paths.contains("App.xcodeproj/xcshareddata/xcschemes/App.xcscheme"))
        #expect(
            paths.contains(".rch/xcode.toml") && paths.contains("Package.resolved")
                && paths.contains("Vendor/Foo.framework/Foo"))
        #expect(
            !paths.contains {
                $0.contains("DerivedData") || $0.contains(".DS_Store") || $0.contains("xcuserdata")
                    || $0.hasSuffix(".tmp") || $0.hasPrefix("LocalNotes")
            })
        #expect(r.warnings.isEmpty, "\(r.warnings)")
    }

    @Test("the generator matches the shared reference generator's selection, when it is beside the clone")
    func crossCheckWithReferenceGenerator() throws {
        let reference = Fixtures.packageRoot + "/../shared/corpus/make-xcode-tree"
        guard FileManager.default.fileExists(atPath: reference) else { return }
        let d = TempDir()
        #expect(try Run.process("/usr/bin/env", ["python3", reference, d.sub("ref"), "--scale", "0.02"]).status == 0)
        try XcodeTreeGen(seed: 1, scale: 0.02).makeTree(at: d.sub("ours"))
        let ref = try Bundler.bundle(root: d.sub("ref"), output: nil)
        let ours = try Bundler.bundle(root: d.sub("ours"), output: nil)
        // Same shape (the generators' random streams differ, so contents differ).
        #expect(ref.manifest.entries.map(\.path) == ours.manifest.entries.map(\.path))
        #expect(ref.manifest.entries.map(\.type) == ours.manifest.entries.map(\.type))
        #expect(ref.excluded.count == ours.excluded.count)
    }
}

@Suite("git_index mode")
struct GitIndexTests {
    static func git(_ dir: String, _ args: String) throws {
        let r = try Run.shell(
            "cd '\(dir)' && git -c user.name=t -c user.email=t@example.invalid -c commit.gpgsign=false \(args)")
        #expect(r.status == 0, "\(r.stderr)")
    }

    @Test("tracked files only; type and exec bit from the index; ignored-but-tracked kept")
    func trackedOnly() throws {
        let d = TempDir()
        let t = Tree(d.sub("r"))
        t.file("a.swift").file("run.sh", "#!/bin/sh\n", mode: 0o755).file(".gitignore", "*.log\nuntracked-dir/\n").link(
            "l", "a.swift")
        t.file("forced.log")
        try Self.git(
            d.sub("r"),
            "init -q && git add a.swift run.sh .gitignore l && git add -f forced.log && git -c user.name=t -c user.email=t@e commit -qm x"
        )
        t.file("untracked.swift").file("ignored.log").file("untracked-dir/x")
        var o = BundleOptions()
        o.mode = .gitIndex
        let r = try Bundler.bundle(root: d.sub("r"), options: o, output: nil)
        #expect(r.manifest.entries.map(\.path) == [".gitignore", "a.swift", "forced.log", "l", "run.sh"])
        #expect(r.manifest.entries.first { $0.path == "run.sh" }?.executable == true)
        #expect(r.manifest.entries.first { $0.path == "l" }?.symlinkTarget == "a.swift")
        // core.fileMode=false checkouts lose the bit on disk; the index keeps it.
        chmod(d.sub("r/run.sh"), 0o644)
        let r2 = try Bundler.bundle(root: d.sub("r"), options: o, output: nil)
        #expect(r2.manifest.entries.first { $0.path == "run.sh" }?.executable == true)
    }

    @Test("a symlink checked out as a file (core.symlinks=false) keeps its index type")
    func symlinkAsFile() throws {
        let d = TempDir()
        Tree(d.sub("r")).file("target.txt").link("l", "target.txt")
        try Self.git(d.sub("r"), "init -q && git add -A && git -c user.name=t -c user.email=t@e commit -qm x")
        unlink(d.sub("r/l"))
        Tree(d.sub("r")).file("l", "target.txt")
        var o = BundleOptions()
        o.mode = .gitIndex
        let r = try Bundler.bundle(root: d.sub("r"), options: o, output: nil)
        #expect(r.manifest.entries.first { $0.path == "l" }?.type == .symlink)
    }

    @Test("missing file, submodule and non-repository are clear errors")
    func errors() throws {
        let d = TempDir()
        Tree(d.sub("r")).file("a").file("b")
        try Self.git(d.sub("r"), "init -q && git add -A && git -c user.name=t -c user.email=t@e commit -qm x")
        unlink(d.sub("r/b"))
        var o = BundleOptions()
        o.mode = .gitIndex
        #expect(
            bundleError { _ = try Bundler.bundle(root: d.sub("r"), options: o, output: nil) }?.description.contains(
                "missing from the worktree") == true)
        Tree(d.sub("s")).file("x")
        try Self.git(d.sub("s"), "init -q && git add -A && git -c user.name=t -c user.email=t@e commit -qm x")
        try Self.git(d.sub("r"), "checkout -q -- b && git -c protocol.file.allow=always submodule -q add ../s sub")
        #expect(
            bundleError { _ = try Bundler.bundle(root: d.sub("r"), options: o, output: nil) }?.description.contains(
                "submodule") == true)
        Tree(d.sub("plain")).file("x")
        #expect(
            bundleError { _ = try Bundler.bundle(root: d.sub("plain"), options: o, output: nil) }?.description.contains(
                "git") == true)
    }

    @Test("git_index and worktree agree on a clean repository")
    func agreesWithWorktree() throws {
        let d = TempDir()
        try XcodeTreeGen(seed: 2, scale: 0.02).makeTree(at: d.sub("r"), clean: true)
        try XcodeTreeGen.gitInit(at: d.sub("r"))
        var o = BundleOptions()
        o.mode = .gitIndex
        let viaIndex = try Bundler.bundle(root: d.sub("r"), options: o, output: nil)
        let viaWalk = try Bundler.bundle(root: d.sub("r"), output: nil)
        // The walk also sees the untracked files .gitignore hides; the generator's clean tree has none
        // except what .rchignore already drops, so both selections coincide.
        #expect(viaIndex.sourceSHA256 == viaWalk.sourceSHA256)
    }
}
