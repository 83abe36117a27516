import Foundation
import Testing

@testable import RCHCore

@Suite struct DigestTests {
    @Test("known vectors")
    func vectors() {
        #expect(SHA256Digest.empty.hex == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        #expect(
            SHA256Digest.of(Array("abc".utf8)).hex == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        )
    }

    @Test(
        "only 64 lowercase hex characters parse",
        arguments: [
            ("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855", true),
            ("E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855", false),
            ("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b85", false),
            ("../../etc/passwd", false), ("", false),
            ("g3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855", false),
        ])
    func parsing(text: String, valid: Bool) {
        #expect((SHA256Digest(hex: text) != nil) == valid)
        if valid { #expect(SHA256Digest(hex: text)?.hex == text) }
    }
}

@Suite struct JCSWriterTests {
    @Test(
        "ECMAScript number formatting",
        arguments: [
            (0.0, "0"), (-0.0, "0"), (1.0, "1"), (-1.5, "-1.5"), (100.0, "100"), (0.1 + 0.2, "0.30000000000000004"),
            (1e21, "1e+21"), (1e20, "100000000000000000000"), (1e-7, "1e-7"), (1e-6, "0.000001"), (5e-324, "5e-324"),
            (1.7976931348623157e308, "1.7976931348623157e+308"), (9007199254740993.0, "9007199254740992"),
            (123456789.125, "123456789.125"),
            (4.5e-5, "0.000045"), (1.23e-10, "1.23e-10"), (2.5e25, "2.5e+25"),
        ])
    func numbers(value: Double, expected: String) {
        #expect(JSONValue.double(value).canonicalString == expected)
    }

    @Test("string escaping and key order")
    func strings() {
        let v = JSONValue.obj([
            "b": .string("\u{8}\t\n\u{C}\r\"\\/\u{1F}\u{7F}é\u{2028}"), "a": .int(1), "\u{E9}": .null,
            "\u{1F600}": .bool(true), "\u{FB33}": .bool(false),
        ])
        // U+1F600 is a surrogate pair (D83D...) and sorts before U+FB33 in UTF-16 order, after it in code points.
        #expect(
            v.canonicalString
                == "{\"a\":1,\"b\":\"\\b\\t\\n\\f\\r\\\"\\\\/\\u001f\u{7F}é\u{2028}\",\"\u{E9}\":null,\"\u{1F600}\":true,\"\u{FB33}\":false}"
        )
        #expect(JSONValue.array([.int(Int64.max), .int(-3)]).canonicalString == "[9223372036854776000,-3]")
    }

    @Test("NFC and NFD keys stay distinct")
    func keys() {
        var o = JSONObject()
        o["Caf\u{E9}"] = .int(1)
        o["Cafe\u{301}"] = .int(2)
        #expect(o.count == 2)
    }
}

@Suite struct DurableFileTests {
    @Test("no-replace publish reports an existing name; temp files never linger")
    func publish() throws {
        let dir = NSTemporaryDirectory() + "/rch-core-\(UInt32.random(in: 0...UInt32.max))"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        #expect(try DurableFile.write(Array("one".utf8), to: dir + "/f", replace: false))
        #expect(try !DurableFile.write(Array("two".utf8), to: dir + "/f", replace: false))
        #expect(try DurableFile.read(dir + "/f") == Array("one".utf8))
        #expect(try DurableFile.write(Array("three".utf8), to: dir + "/f", replace: true))
        #expect(try DurableFile.read(dir + "/f") == Array("three".utf8))
        do {
            let t = try TempFile(directory: dir)
            try t.write([1, 2, 3])
        }  // discarded in deinit
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir) == ["f"])
    }

    @Test func timestamps() {
        #expect(Timestamp.format(nanosSinceEpoch: 0) == "1970-01-01T00:00:00.000Z")
        #expect(Timestamp.format(nanosSinceEpoch: 1_795_312_350_123_000_000) == "2026-11-22T01:52:30.123Z")
    }

    @Test("failure kinds map to the stable exit codes")
    func exitCodes() {
        let table: [FailureKind: Int32] = [
            .classifierRejected: 10, .ssh: 20, .transfer: 30, .executor: 40, .xcodebuild: 50, .mcp: 60,
            .artifacts: 70, .cancelled: 80, .workerBusy: 90, .workerIncompatible: 91, .bundler: 92, .attestation: 93,
        ]
        for k in FailureKind.allCases { #expect(k.exitCode == table[k]) }
    }
}
