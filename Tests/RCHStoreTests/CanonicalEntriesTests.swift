import Foundation
import RCHCore
import RCHStore
import RCHTestSupport
import Testing

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// The fast reader of result entries accepts exactly what the writer writes, and the direct writers of
/// manifests and reference records write exactly the JCS bytes of the equivalent values.
@Suite("Result entries: canonical fast paths")
struct CanonicalEntriesTests {
    static let key = SHA256Digest.of(Array("canonical".utf8))
    /// Names that need JCS escapes or are not ASCII.
    static let oddNames = [
        "quote\"d.txt", "back\\slash.txt", "tab\there.txt", "new\nline.txt", "é-ü.txt", "ctl\u{1}.bin",
    ]

    static func recorded(_ d: TempDir) throws -> (LocalStore, String) {
        let store = try LocalStore(root: d.sub("store"))
        try StoreFixtures.artifacts(d.sub("a"), action: "test", rich: true, jobKey: key)
        let t = Tree(d.sub("a"))
        for (i, n) in oddNames.enumerated() {
            t.bytes("result.xcresult/odd/" + n, [UInt8](repeating: UInt8(i), count: i))
        }
        t.bytes("result.xcresult/Data/large.bin", [UInt8](repeating: 1, count: 123_456))
        try ResultStore(store: store).record(d.sub("a"), jobKey: key, namespace: "app", producer: .recording)
        return (store, ResultStore(store: store).entryPath(namespace: "app", jobKey: key))
    }

    @Test("an entry reads the same through the fast reader as through the general parser")
    func sameAnswer() throws {
        let d = TempDir()
        let (store, path) = try Self.recorded(d)
        let fast = try #require(try ResultStore(store: store).entry(namespace: "app", jobKey: Self.key))
        let general = try ResultEntry(json: try JSONParser().parse(try DurableFile.read(path)))
        #expect(fast == general)
        let paths = Set(fast.entries.map(\.path))
        for n in Self.oddNames { #expect(paths.contains("result.xcresult/odd/" + n), "\(n)") }
        // The direct writers give the JCS bytes of the equivalent values.
        #expect(
            ArtifactManifest.entriesCanonicalBytes(fast.entries)
                == ArtifactManifest.entriesJSON(fast.entries).canonicalBytes)
        let doc = ArtifactManifest.documentBytes(
            fast.entries, runID: "run_0000000007", jobID: "job_0000000007", jobKey: Self.key,
            createdAt: "2026-11-30T00:00:00.000Z")
        #expect(
            doc.bytes
                == ArtifactManifest.document(
                    fast.entries, runID: "run_0000000007", jobID: "job_0000000007", jobKey: Self.key,
                    createdAt: "2026-11-30T00:00:00.000Z"
                ).canonicalBytes)
        #expect(doc.root == ArtifactManifest.rootDigest(fast.entries))
    }

    struct Damage: Sendable, CustomTestStringConvertible {
        var name: String
        var from: String
        var to: String
        var testDescription: String { name }
    }

    static let damages: [Damage] = [
        Damage(name: "whitespace inside an entry", from: #"{"path":"build.log","#, to: #"{"path": "build.log","#),
        Damage(
            name: "members of an entry reordered", from: #"{"path":"build.log","#,
            to: #"{"type":"file","path":"build.log","#),
        Damage(name: "an uppercase digest", from: #","sha256":"#, to: #","sha256":"A"#),
        Damage(name: "a size with a leading zero", from: #","size":1"#, to: #","size":01"#),
        Damage(
            name: "an escaped slash", from: #"result.xcresult/Data/large.bin"#, to: #"result.xcresult\/Data/large.bin"#),
        Damage(name: "a \\u escape JCS does not write", from: "é-ü.txt", to: #"\u00e9-ü.txt"#),
        Damage(
            name: "a directory with a digest", from: #""sha256":null,"size":0,"type":"directory""#,
            to: #""sha256":null,"size":0,"type":"file""#),
        Damage(name: "no final newline", from: "}\n", to: "}"),
        Damage(name: "an unknown member in an entry", from: #","type":"file"}"#, to: #","type":"file","x":1}"#),
    ]

    @Test("an entry our writer would not produce is refused (a miss, never a hit)", arguments: damages)
    func refused(_ damage: Damage) throws {
        let d = TempDir()
        let (store, path) = try Self.recorded(d)
        var text = try String(contentsOfFile: path, encoding: .utf8)
        #expect(text.contains(damage.from), "fixture lacks \(damage.from)")
        if let r = text.range(of: damage.from) { text.replaceSubrange(r, with: damage.to) }
        chmod(path, 0o644)
        try Data(text.utf8).write(to: URL(fileURLWithPath: path))
        #expect(throws: StoreError.self) { _ = try ResultStore(store: store).entry(namespace: "app", jobKey: Self.key) }
        let r = ResultStore(store: store).lookup(
            jobKey: Self.key, namespace: "app", profile: .minimal, executorClass: "recording")
        guard case .miss(let why) = r else {
            Issue.record("a damaged entry was a hit")
            return
        }
        #expect(why.hasPrefix("entry is unreadable"), "\(why)")
    }
}
