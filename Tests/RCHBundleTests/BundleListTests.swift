import Foundation
import RCHCore
import RCHTestSupport
import Testing

@testable import RCHBundle

/// `bundle --list` and the `git` selection mode (PLAN §2.2).
@Suite("bundle --list and --mode git")
struct BundleListTests {
    let exe = Fixtures.executable("rch-xcode")

    /// A repository with each kind of rule: deny-list, `.rchignore` (with a `!` line), `.gitignore`.
    func repo(_ d: TempDir) throws -> String {
        let root = d.sub("repo")
        Tree(root).file("Sources/App.swift").file(".env", "SECRET=1").file("Pods/big.bin").file("keep.env")
            .file(".DS_Store").file("build.log").file("untracked.txt").file("tracked-but-ignored.log")
            .file(".rchignore", "# secrets\n.env\nPods/\n!keep.env\n").file(".gitignore", "*.log\n")
        try FileManager.default.createDirectory(atPath: root + "/DerivedData/x", withIntermediateDirectories: true)
        let git = "git -c user.email=t@t -c user.name=t"
        let r = try Run.shell(
            "git init -q && git add Sources .rchignore .gitignore && git add -f tracked-but-ignored.log && \(git) commit -qm x",
            cwd: root)
        #expect(r.status == 0, "\(r.stderr)")
        return root
    }

    @Test("every path with in/out and the deciding rule; the listing agrees with what is bundled")
    func listing() throws {
        let d = TempDir()
        let root = try repo(d)
        let r = try Run.process(exe, ["bundle", root, "--list", "--json"])
        #expect(r.status == 0, "\(r.stderr)")
        let v = try JSONParser().parse(Array(r.stdout.utf8))
        var rules: [String: (Bool, String)] = [:]
        for p in v["paths"]?.arrayValue ?? [] {
            rules[p["path"]!.stringValue!] = (p["in"]!.boolValue!, p["rule"]!.stringValue!)
        }
        #expect(rules[".env"]! == (false, ".rchignore:2: .env"))
        #expect(rules["Pods/"]! == (false, ".rchignore:3: Pods/"))
        #expect(rules["keep.env"]! == (true, ".rchignore:4: !keep.env"))
        #expect(rules[".DS_Store"]! == (false, "default: Finder debris"))
        #expect(rules["DerivedData/"]! == (false, "default: build output"))
        #expect(rules[".git/"]! == (false, "default: version control"))
        #expect(rules["build.log"]! == (true, "kept"))  // worktree mode: .gitignore plays no part
        // What the listing calls "in" is exactly what the bundler selects.
        let selected = try TreeSelector(root: root).select().entries.map(\.path)
        #expect(rules.filter { $0.value.0 }.keys.sorted() == selected.sorted())
        let text = try Run.process(exe, ["bundle", root, "--list"])
        #expect(text.stdout.contains("out  .env   (.rchignore:2: .env)"))
        #expect(text.stdout.hasSuffix("7 in, 5 out (worktree mode)\n"), "\(text.stdout)")
    }

    @Test("--mode git keeps tracked files and untracked files git does not ignore")
    func gitMode() throws {
        let d = TempDir()
        let root = try repo(d)
        let r = try Run.process(exe, ["bundle", root, "--list", "--mode", "git", "--json"])
        #expect(r.status == 0, "\(r.stderr)")
        let v = try JSONParser().parse(Array(r.stdout.utf8))
        let included = Set(
            (v["paths"]?.arrayValue ?? []).filter { $0["in"]?.boolValue == true }.map { $0["path"]!.stringValue! })
        #expect(
            included == [
                ".gitignore", ".rchignore", "Sources/App.swift", "keep.env", "untracked.txt", "tracked-but-ignored.log",
            ])
        #expect(r.stdout.contains("{\"in\":false,\"path\":\"build.log\",\"rule\":\"git: ignored\"}"))
        // .rchignore still applies on top of git's view.
        #expect(r.stdout.contains("{\"in\":false,\"path\":\".env\",\"rule\":\".rchignore:2: .env\"}"))
        // The digest rules are those of the other modes: the same files give the same source_sha256.
        let git = try Run.process(exe, ["bundle", root, "--mode", "git", "--store", d.sub("s")])
        try FileManager.default.removeItem(atPath: root + "/build.log")
        try FileManager.default.removeItem(atPath: root + "/.env")
        try FileManager.default.removeItem(atPath: root + "/Pods")
        let tree = try Run.process(exe, ["bundle", root, "--store", d.sub("s2")])
        #expect(git.status == 0 && git.stdout == tree.stdout, "\(git.stderr)")
    }

    @Test("--mode git refuses what git_index refuses, outside a repository too")
    func gitModeRefusals() throws {
        let d = TempDir()
        Tree(d.sub("plain")).file("a")
        let r = try Run.process(exe, ["bundle", d.sub("plain"), "--mode", "git", "--store", d.sub("s")])
        #expect(r.status == 92 && r.stderr.lowercased().contains("not a git repository"), "\(r.stderr)")
        let root = try repo(d)
        Tree(root + "/nested").file("x")
        #expect(try Run.shell("git init -q", cwd: root + "/nested").status == 0)
        let nested = try Run.process(exe, ["bundle", root, "--mode", "git", "--list"])
        #expect(
            nested.status == 92 && nested.stderr.contains("'nested/' is a nested git repository"), "\(nested.stderr)")
        let bad = try Run.process(exe, ["bundle", root, "--mode", "svn"])
        #expect(bad.status == 64 && bad.stderr.contains("worktree, git_index, git"))
    }
}
