import Foundation

/// Deterministic generator of Xcode-shaped source trees and result artifact sets, for tests and
/// benchmarks (the project's own counterpart of `shared/corpus/make-xcode-tree`, same shape).
///
/// The same seed and scale always give the same names, contents, modes and symlinks; timestamps are
/// whatever the filesystem gives (a canonical bundler must not care). `scale` 1.0 is about 120 MB in
/// about 3,900 files; tests want 0.02–0.05.
public struct XcodeTreeGen {
    public var seed: UInt64
    public var scale: Double

    public init(seed: UInt64 = 1, scale: Double = 0.05) {
        self.seed = seed
        self.scale = scale
    }

    static let words =
        ("let var func struct class enum protocol extension return guard if else for in "
        + "while switch case default self Self init deinit throws try await async actor "
        + "public private internal fileprivate static final override mutating view body "
        + "state binding model store item value count index result error data string "
        + "number array dictionary optional closure handler completion request response").split(separator: " ").map(
            String.init)

    /// Writes a source tree at `out`. Unless `clean`, adds the debris a bundle must leave out.
    public func makeTree(at out: String, clean: Bool = false) throws {
        var rng = SplitMix64(seed: seed)
        let w = Writer(root: out)
        let nSwift = max(5, Int(2600 * scale))
        let nImages = max(2, Int(600 * scale))
        let nSounds = max(1, Int(60 * scale))
        let modules = (0..<max(2, Int(40 * scale))).map { String(format: "Feature%02d", $0) }
        for i in 0..<nSwift {
            let mod = modules[i % modules.count]
            let sub = ["Views", "Models", "Services", "Helpers"][i % 4]
            let name = "\(mod)\(sub)\(String(format: "%05d", i))"
            try w.file("App/Sources/\(mod)/\(sub)/\(name).swift", swiftFile(&rng, name))
        }
        for i in 0..<nImages {
            let d = "App/Resources/Assets.xcassets/image\(String(format: "%04d", i)).imageset"
            let size = Int(Double([2, 8, 30, 60, 120][rng.int(5)] * 1024) * (0.5 + rng.unit()))
            try w.file(
                "\(d)/image\(String(format: "%04d", i))@2x.png",
                [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A] + rng.bytes(size))
            try w.file(
                "\(d)/Contents.json",
                Array(
                    "{\n  \"images\" : [ { \"filename\" : \"image\(String(format: "%04d", i))@2x.png\", \"idiom\" : \"universal\", \"scale\" : \"2x\" } ],\n  \"info\" : { \"author\" : \"xcode\", \"version\" : 1 }\n}\n"
                        .utf8))
        }
        try w.file(
            "App/Resources/Assets.xcassets/Contents.json",
            Array("{\n  \"info\" : { \"author\" : \"xcode\", \"version\" : 1 }\n}\n".utf8))
        for loc in ["Base", "en", "de", "fr", "ja", "zh-Hans", "pt-BR", "es", "ko", "ru"] {
            var s = ""
            for k in 0..<(Int(400 * scale) + 20) { s += "\"key.\(k)\" = \"\(words(&rng, 6))\";\n" }
            try w.file("App/Resources/\(loc).lproj/Localizable.strings", Array(s.utf8))
            if loc == "Base" {
                let body = textLines(&rng, Int(3000 * scale) + 50, prefix: "  <!-- ")
                try w.file(
                    "App/Resources/Base.lproj/Main.storyboard",
                    Array(
                        ("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<document type=\"com.apple.InterfaceBuilder3.CocoaTouch.Storyboard.XIB\">\n"
                            + body + "</document>\n").utf8))
            }
        }
        for i in 0..<nSounds {
            let size = Int((200 + 1600 * rng.unit()) * 1024)
            try w.file(
                "App/Resources/Sounds/sound\(String(format: "%03d", i)).wav", Array("RIFF".utf8) + rng.bytes(size))
        }
        var pbx = ["// !$*UTF8*$!", "{", "\tarchiveVersion = 1;", "\tobjects = {"]
        for i in 0..<nSwift {
            pbx.append(
                "\t\t\(String(format: "%016llX%08X", rng.next(), UInt32(truncatingIfNeeded: rng.next()))) /* file\(i).swift in Sources */ = {isa = PBXBuildFile; };"
            )
        }
        pbx += ["\t};", "}"]
        try w.file("App.xcodeproj/project.pbxproj", Array((pbx.joined(separator: "\n") + "\n").utf8))
        try w.file(
            "App.xcodeproj/project.xcworkspace/contents.xcworkspacedata",
            Array("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Workspace version = \"1.0\">\n</Workspace>\n".utf8))
        try w.file(
            "App.xcodeproj/xcshareddata/xcschemes/App.xcscheme",
            Array("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Scheme version = \"1.7\">\n</Scheme>\n".utf8))
        try w.file(
            "Package.resolved",
            Array(
                "{\n  \"pins\" : [ { \"identity\" : \"swift-log\", \"kind\" : \"remoteSourceControl\", \"state\" : { \"version\" : \"1.6.0\" } } ],\n  \"version\" : 2\n}\n"
                    .utf8))
        try w.file(
            ".rch/xcode.toml",
            Array(
                "[destination]\nmode = \"constraints\"\nvalue = \"platform=iOS Simulator,name=iPhone 16,OS=latest\"\n\n[cache]\nnamespace = \"corpus-app\"\n"
                    .utf8))
        try w.file(".rchignore", Array("# extra excludes\n*.tmp\nLocalNotes/\n".utf8))
        try w.file("LocalNotes/todo.md", Array("excluded by .rchignore\n".utf8))
        try w.file("App/scratch.tmp", Array("excluded by .rchignore\n".utf8))
        let fw = "Vendor/Foo.framework"
        try w.file("\(fw)/Versions/A/Foo", rng.bytes(Int(200 * 1024 * max(scale, 0.1))), mode: 0o755)
        try w.file("\(fw)/Versions/A/Headers/Foo.h", Array("#import <Foundation/Foundation.h>\n".utf8))
        try w.symlink("\(fw)/Versions/Current", "A")
        try w.symlink("\(fw)/Foo", "Versions/Current/Foo")
        try w.symlink("\(fw)/Headers", "Versions/Current/Headers")
        for i in 0..<3 {
            try w.file("Scripts/build-phase-\(i).sh", Array("#!/bin/sh\nset -eu\necho phase \(i)\n".utf8), mode: 0o755)
        }
        try w.file("Ünïcödé/Café.swift", swiftFile(&rng, "Cafe"))
        try w.file("Ünïcödé/日本語.strings", Array("\"hello\" = \"こんにちは\";\n".utf8))
        try w.file("App/Sources/Empty.swift", [])
        if !clean {
            try w.file("DerivedData/Build/Intermediates/junk.o", rng.bytes(4096))
            try w.file(".build/debug/junk.o", rng.bytes(4096))
            try w.file(".DS_Store", rng.bytes(6148))
            try w.file("App/.DS_Store", rng.bytes(6148))
            try w.file("App/._Info.plist", [0, 5, 0x16, 7] + rng.bytes(60))
            try w.file("App.xcodeproj/xcuserdata/me.xcuserdatad/xcschemes/x.xcscheme", Array("user\n".utf8))
            try w.file(
                "App.xcodeproj/project.xcworkspace/xcuserdata/me.xcuserdatad/UserInterfaceState.xcuserstate",
                rng.bytes(2048))
            try w.file(".swiftpm/xcode/xcuserdata/me.xcuserdatad/state.plist", Array("user\n".utf8))
        }
    }

    /// Deterministically appends a line to `k` existing `.swift` files; returns their relative paths.
    @discardableResult
    public func editTree(at out: String, count k: Int) throws -> [String] {
        var files: [String] = []
        let fm = FileManager.default
        guard let e = fm.enumerator(atPath: out) else { return [] }
        while let p = e.nextObject() as? String {
            let first = p.split(separator: "/").first.map(String.init) ?? p
            if [".git", "DerivedData", ".build"].contains(first) { continue }
            let attrs = e.fileAttributes
            if p.hasSuffix(".swift"), attrs?[.type] as? FileAttributeType == .typeRegular { files.append(p) }
        }
        files.sort { $0.utf8.lexicographicallyPrecedes($1.utf8) }
        var rng = SplitMix64(seed: seed &* 7919 &+ UInt64(k))
        var chosen: [String] = []
        var pool = files
        for _ in 0..<min(k, pool.count) { chosen.append(pool.remove(at: rng.int(pool.count))) }
        for p in chosen {
            let h = try FileHandle(forWritingTo: URL(fileURLWithPath: out + "/" + p))
            h.seekToEndOfFile()
            h.write(Data("// edited \(String(format: "%016llx", rng.next()))\n".utf8))
            try h.close()
        }
        return chosen
    }

    /// Writes an artifact set shaped like a test job's: `build.log`, `junit.xml`, `result.xcresult/`.
    public func makeResults(at out: String) throws {
        var rng = SplitMix64(seed: seed)
        let w = Writer(root: out)
        try w.file("build.log", Array(textLines(&rng, Int(60000 * scale) + 100).utf8))
        var junit = "<?xml version=\"1.0\"?>\n<testsuites>\n"
        for i in 0..<(Int(2000 * scale) + 5) {
            junit += "  <testcase classname=\"AppTests\" name=\"test\(i)\" time=\"0.\(i % 10)\"/>\n"
        }
        try w.file("junit.xml", Array((junit + "</testsuites>\n").utf8))
        try w.file(
            "result.xcresult/Info.plist",
            Array("<?xml version=\"1.0\"?>\n<plist version=\"1.0\"><dict/></plist>\n".utf8))
        try w.file("result.xcresult/database.sqlite3", rng.bytes(Int(4 * 1024 * 1024 * scale) + 1024))
        for i in 0..<(Int(3000 * scale) + 3) {
            let size = Int(Double([1, 4, 16, 64, 256][rng.int(5)] * 1024) * (0.5 + rng.unit()))
            let blob = i % 3 != 0 ? rng.bytes(size) : Array(textLines(&rng, size / 40 + 1).utf8)
            try w.file("result.xcresult/Data/data.\(String(format: "%016llx%016llx", rng.next(), rng.next()))", blob)
        }
    }

    /// Makes `out` a git repository with one commit (fixed author and dates, no global excludes).
    public static func gitInit(at out: String) throws {
        try Data("DerivedData/\n.build/\n.DS_Store\nxcuserdata/\n*.xcuserstate\n".utf8).write(
            to: URL(fileURLWithPath: out + "/.gitignore"))
        let env = [
            "GIT_AUTHOR_NAME": "corpus", "GIT_AUTHOR_EMAIL": "corpus@example.invalid", "GIT_COMMITTER_NAME": "corpus",
            "GIT_COMMITTER_EMAIL": "corpus@example.invalid", "GIT_AUTHOR_DATE": "2026-01-01T00:00:00Z",
            "GIT_COMMITTER_DATE": "2026-01-01T00:00:00Z",
        ]
        // Independent of the machine's global git config (e.g. a global excludes file).
        let isolate = ["-c", "core.excludesFile=/dev/null", "-c", "commit.gpgsign=false"]
        for args in [
            ["init", "-q", out], isolate + ["-C", out, "add", "-A"],
            isolate + ["-C", out, "commit", "-q", "-m", "corpus"],
        ] {
            let p = Process()
            p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
            p.arguments = ["git"] + args
            p.environment = ProcessInfo.processInfo.environment.merging(env) { $1 }
            try p.run()
            p.waitUntilExit()
            guard p.terminationStatus == 0 else { throw CocoaError(.fileWriteUnknown) }
        }
    }

    // MARK: content

    func words(_ rng: inout SplitMix64, _ n: Int) -> String {
        (0..<n).map { _ in Self.words[rng.int(Self.words.count)] }.joined(separator: " ")
    }

    func textLines(_ rng: inout SplitMix64, _ n: Int, prefix: String = "") -> String {
        var out = ""
        for _ in 0..<n { out += prefix + words(&rng, 3 + rng.int(10)) + "\n" }
        return out
    }

    func swiftFile(_ rng: inout SplitMix64, _ name: String) -> [UInt8] {
        var body = ["// \(name).swift", "import Foundation", "import SwiftUI", ""]
        for t in 0..<(1 + rng.int(4)) {
            body.append("struct \(name)Part\(t): View {")
            body.append(textLines(&rng, 10 + rng.int(111), prefix: "    "))
            body.append("}")
        }
        return Array(body.joined(separator: "\n").utf8)
    }
}

/// SplitMix64: tiny, fast, and the same on every platform.
public struct SplitMix64 {
    var state: UInt64
    public init(seed: UInt64) { state = seed }
    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
    mutating func int(_ n: Int) -> Int { Int(next() % UInt64(n)) }
    mutating func unit() -> Double { Double(next() >> 11) / Double(1 << 53) }
    mutating func bytes(_ n: Int) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: n)
        out.withUnsafeMutableBytes { p in
            var i = 0
            while i + 8 <= n {
                p.storeBytes(of: next(), toByteOffset: i, as: UInt64.self)
                i += 8
            }
            if i < n {
                let v = next()
                for j in i..<n { p[j] = UInt8(truncatingIfNeeded: v >> (8 * UInt64(j - i))) }
            }
        }
        return out
    }
}

struct Writer {
    let root: String
    func file(_ rel: String, _ bytes: [UInt8], mode: Int = 0o644) throws {
        let url = URL(fileURLWithPath: root + "/" + rel)
        try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        try Data(bytes).write(to: url)
        try FileManager.default.setAttributes([.posixPermissions: mode], ofItemAtPath: url.path)
    }
    func symlink(_ rel: String, _ target: String) throws {
        let path = root + "/" + rel
        try FileManager.default.createDirectory(
            atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        try? FileManager.default.removeItem(atPath: path)
        try FileManager.default.createSymbolicLink(atPath: path, withDestinationPath: target)
    }
}
