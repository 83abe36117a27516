import Foundation
import RCHCore
import RCHTestSupport
import Testing
import XcodeTreeGen

/// The output rules every command follows (PLAN §16): text by default, `--json` everywhere with one compact
/// document (errors too), `--version`, `-q`/`-v`, and progress only on a terminal.
@Suite("output: --json, --version, -q/-v, progress")
struct OutputTests {
    static let xcode = Fixtures.executable("rch-xcode")
    static let worker = Fixtures.executable("rch-worker")

    /// Every (sub)command path of a binary, from its own help.
    static func commands(_ exe: String, _ prefix: [String] = []) throws -> [[String]] {
        let r = try Run.process(exe, prefix + ["--help"])
        #expect(r.status == 0, "\(prefix)")
        guard r.status == 0, prefix.count < 3, let start = r.stdout.range(of: "SUBCOMMANDS:\n") else { return [prefix] }
        let block = String(r.stdout[start.upperBound...]).components(separatedBy: "\n\n")[0]
        let names = block.split(separator: "\n").compactMap { line -> String? in
            let w = line.split(separator: " ").first.map(String.init) ?? ""
            return line.hasPrefix("  ") && !line.hasPrefix("   ") && w.allSatisfy({ $0.isLowercase || $0 == "-" })
                ? w : nil
        }
        return try names.filter { $0 != "help" }.flatMap { try commands(exe, prefix + [$0]) }
    }

    /// Commands whose stdout is a byte stream (the RPC forced command, a source export) take no `--json`.
    static let streams: Set<[String]> = [["rpc"], ["store", "export-source"]]

    @Test("every command answers --help with --json, -q and -v; both binaries answer --version")
    func everyCommand() throws {
        for exe in [Self.xcode, Self.worker] {
            let all = try Self.commands(exe)
            #expect(all.count >= 12, "\(all)")
            for c in all where !Self.streams.contains(c) {
                let help = try Run.process(exe, c + ["--help"])
                #expect(help.status == 0, "\(c)")
                for flag in ["--json", "-q, --quiet", "-v, --verbose"] {
                    #expect(help.stdout.contains(flag), "\(exe) \(c) lacks \(flag)")
                }
            }
            let v = try Run.process(exe, ["--version"])
            #expect(v.status == 0 && v.stdout.contains("protocol") && v.stdout.contains("bundle format v1"))
        }
    }

    @Test("usage and run-time errors under --json are one {ok:false,error} document on stdout")
    func jsonErrors() throws {
        let d = TempDir()
        Tree(d.path).file("empty.json", "")
        for (exe, args, code) in [
            (Self.xcode, ["bundle", "--level", "99", "--json"], Int32(64)),
            (Self.xcode, ["bundle", d.sub("missing"), "--store", d.sub("s"), "--json"], 92),
            (Self.worker, ["stats", "--store", d.sub("nostore"), "--json"], 78),
            (Self.xcode, ["canonicalize", "--json", d.sub("empty.json")], 65),
            (Self.xcode, ["key", "--json", d.sub("missing.json")], 66),
            (Self.xcode, ["bundle", "-q", "-v", "--json"], 64),
        ] {
            let r = try Run.process(exe, args)
            #expect(r.status == code, "\(args): \(r.status) \(r.stderr)")
            let lines = r.stdout.split(separator: "\n")
            #expect(lines.count == 1, "\(args): \(r.stdout)")
            let v = try JSONParser().parse(Array(r.stdout.utf8))
            #expect(v["ok"]?.boolValue == false && v["error"]?["exit_code"]?.intValue == Int64(code), "\(args)")
            #expect(v["error"]?["message"]?.stringValue?.isEmpty == false)
        }
    }

    @Test("worker stats prints text by default and the same numbers with --json")
    func statsText() throws {
        let d = TempDir()
        #expect(try Run.process(Self.worker, ["init", "--store", d.sub("s")]).status == 0)
        let text = try Run.process(Self.worker, ["stats", "--store", d.sub("s")])
        #expect(text.status == 0 && text.stdout.hasPrefix("store \(d.sub("s"))") && text.stdout.contains("jobs: 0"))
        let json = try Run.process(Self.worker, ["stats", "--store", d.sub("s"), "--json"])
        #expect(try JSONParser().parse(Array(json.stdout.utf8))["blobs"]?.intValue == 0)
    }

    @Test("-q drops notices and warnings, -v adds details, the result stays on stdout")
    func quietAndVerbose() throws {
        let d = TempDir()
        Tree(d.sub("repo")).file(".git/HEAD", "ref").file("sub/a.txt").link("sub/dangling", "nothing")
        let base = ["bundle", "--store", d.sub("s"), "--no-stat-cache"]
        let normal = try Run.process(Self.xcode, base + [d.sub("repo")])
        #expect(normal.status == 0 && normal.stderr.contains("warning:"), "\(normal.stderr)")
        let quiet = try Run.process(Self.xcode, base + ["-q", d.sub("repo")])
        #expect(quiet.status == 0 && quiet.stderr.isEmpty && quiet.stdout == normal.stdout, "\(quiet.stderr)")
        let verbose = try Run.process(Self.xcode, base + ["-v", d.sub("repo")])
        #expect(verbose.stderr.contains("rch-xcode: bundled 2 entries") && verbose.stdout == normal.stdout)
    }

    @Test("progress goes to a terminal only, and never with -q or when piped")
    func progressOnTerminal() throws {
        let d = TempDir()
        try XcodeTreeGen(seed: 3, scale: 0.08).makeTree(at: d.sub("t"))
        var env = ProcessInfo.processInfo.environment
        env["RCH_PROGRESS_DELAY_MS"] = "0"
        env["TERM"] = "xterm"
        let args = ["bundle", d.sub("t"), "--store", d.sub("s"), "--no-stat-cache", "--level", "19", "--threads", "0"]
        let tty = try PseudoTerminal.run(Self.xcode, args, environment: env)
        #expect(tty.status == 0)
        #expect(tty.terminal.contains("\r\u{1B}[Kbundling:") && tty.terminal.contains(" files, "), "\(tty.terminal)")
        #expect(tty.terminal.contains("MB/s") && tty.stdout.count == 65)
        let quiet = try PseudoTerminal.run(Self.xcode, args + ["-q"], environment: env)
        #expect(quiet.status == 0 && !quiet.terminal.contains("bundling"), "\(quiet.terminal)")
        let piped = try Run.process(Self.xcode, args, env: env)
        #expect(piped.status == 0 && !piped.stderr.contains("bundling"))
    }
}
