import Foundation
import RCHBundle
import RCHCore
import RCHTestSupport
import Testing

/// The strict reader of manifest files: exactly what ``SourceManifest/canonicalBytes()`` writes and a newline;
/// the same manifest as the general parser reads; anything our writer would not produce is refused.
@Suite("Source manifest files: the canonical reader")
struct SourceManifestReaderTests {
    struct Damage: CustomTestStringConvertible, Sendable {
        var name: String
        var from: String
        var to: String
        var testDescription: String { name }
    }

    static func manifest() throws -> SourceManifest {
        let d = TempDir()
        Tree(d.sub("t")).file("a.swift", "let a = 1\n").file("b/c.txt", "c", mode: 0o755).file("b/é.txt", "é")
            .link("b/l", "c.txt")
        return try Bundler.bundle(root: d.sub("t"), output: nil).manifest
    }

    static func file(_ m: SourceManifest) -> String { String(decoding: m.canonicalBytes() + [10], as: UTF8.self) }

    @Test("reads what the writer writes: the same manifest as the general parser, with and without run_id")
    func roundTrip() throws {
        var m = try Self.manifest()
        for runID in [nil, "run_0000000001"] {
            m.runID = runID
            let bytes = m.canonicalBytes() + [10]
            let fast = try SourceManifest(canonicalFile: bytes)
            let general = try SourceManifest(json: try JSONParser().parse(bytes))
            #expect(fast.entries == general.entries && fast.entries.count == 4)
            #expect(fast.canonicalBytes() == m.canonicalBytes() && fast.runID == runID)
        }
    }

    static let damages: [Damage] = [
        .init(name: "no final newline", from: "}\n", to: "}"),
        .init(name: "whitespace", from: #""entries":["#, to: #""entries": ["#),
        .init(name: "members reordered in an entry", from: #"{"executable":false,"path":"#, to: #"{"path":"#),
        .init(name: "an uppercase digest", from: #""sha256":"#, to: #""sha256":"A"#),
        .init(name: "a size with a leading zero", from: #""size":1"#, to: #""size":01"#),
        .init(name: "a file with a symlink target", from: #""symlink_target":null"#, to: #""symlink_target":"x""#),
        .init(name: "an escaped slash", from: #""path":"b/c.txt""#, to: #""path":"b\/c.txt""#),
        .init(name: "a wrong file_count", from: #""file_count":3"#, to: #""file_count":4"#),
        .init(name: "an unknown member", from: #""bundle_format":"v1","#, to: #""bundle_format":"v1","extra":1,"#),
        .init(name: "another schema", from: "source_manifest@1", to: "source_manifest@2"),
        .init(name: "a non-canonical path", from: #""path":"a.swift""#, to: #""path":"./a.swift""#),
    ]

    @Test("a file our writer would not produce is refused", arguments: damages)
    func refused(_ d: Damage) throws {
        let text = Self.file(try Self.manifest())
        #expect(text.contains(d.from), "the damage must apply: \(d.from)")
        let damaged = Array(text.replacingOccurrences(of: d.from, with: d.to).utf8)
        #expect(throws: BundleError.self) { try SourceManifest(canonicalFile: damaged) }
    }
}
