import RCHBundle
import RCHCore
import Testing

@testable import RCHWorker

/// `upload_tree` deltas: the worker merges `{upsert, remove}` into the base's entries in bundle order.
@Suite("upload_tree delta merge")
struct DeltaTests {
    static func file(_ path: String, _ content: String = "x") -> SourceManifest.Entry {
        .init(
            path: path, type: .file, size: UInt64(content.utf8.count), sha256: .of(content.utf8), executable: false,
            symlinkTarget: nil)
    }

    static let base = ["App/a.swift", "App/b.swift", "README.md"].map { file($0) }

    struct Case: CustomStringConvertible, Sendable {
        var description: String
        var upsert: [SourceManifest.Entry]
        var remove: [String]
        /// Expected paths, or nil when the delta must be refused.
        var expected: [String]?
    }

    static let cases: [Case] = [
        Case(
            description: "empty delta keeps the base", upsert: [], remove: [],
            expected: ["App/a.swift", "App/b.swift", "README.md"]),
        Case(
            description: "changed file replaced in place", upsert: [file("App/b.swift", "new")], remove: [],
            expected: ["App/a.swift", "App/b.swift", "README.md"]),
        Case(
            description: "new files before, between and after",
            upsert: [file("Z.txt"), file("App/ab.swift"), file(".rch/xcode.toml")], remove: [],
            expected: [".rch/xcode.toml", "App/a.swift", "App/ab.swift", "App/b.swift", "README.md", "Z.txt"]),
        Case(description: "removal", upsert: [], remove: ["App/a.swift"], expected: ["App/b.swift", "README.md"]),
        Case(
            description: "removed then re-added (upsert wins)", upsert: [file("README.md", "v2")],
            remove: ["README.md"],
            expected: ["App/a.swift", "App/b.swift", "README.md"]),
        Case(description: "removing a path the base lacks", upsert: [], remove: ["nope"], expected: nil),
        Case(
            description: "the same path removed twice", upsert: [], remove: ["README.md", "README.md"], expected: nil),
        Case(
            description: "the same path upserted twice", upsert: [file("N.swift"), file("N.swift", "y")], remove: [],
            expected: nil),
    ]

    @Test("merge", arguments: cases)
    func merge(_ c: Case) throws {
        let delta: JSONObject = [
            "upsert": .array(c.upsert.map(\.json)), "remove": .array(c.remove.map { .string($0) }),
        ]
        guard let expected = c.expected else {
            #expect(throws: (any Error).self) { try WorkerServer.apply(delta, to: Self.base) }
            return
        }
        let merged = try WorkerServer.apply(delta, to: Self.base)
        #expect(merged.map(\.path) == expected)
        for u in c.upsert { #expect(merged.first { $0.path == u.path } == u) }
    }

    @Test("an upserted entry is checked on its own (non-canonical path refused)")
    func invalidUpsert() {
        var bad = Self.file("App/../etc/passwd").json.objectValue!
        bad["path"] = .string("App/../etc/passwd")
        #expect(throws: (any Error).self) { try WorkerServer.apply(["upsert": .array([.object(bad)])], to: Self.base) }
    }
}
