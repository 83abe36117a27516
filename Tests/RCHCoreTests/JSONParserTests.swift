import Foundation
import Testing

@testable import RCHCore

@Suite("RFC 8785 canonical JSON")
struct CanonicalJSONTests {
    @Test("the RFC's worked example (3.2.4)")
    func rfcExample() throws {
        let input =
            #"{ "numbers": [333333333.33333329, 1E30, 4.50, 2e-3, 0.000000000000000000000000001], "string": "\u20ac$\u000F\u000aA'\u0042\u0022\u005c\\\"\/", "literals": [null, true, false] }"#
        let v = try JSONParser().parse(input)
        #expect(
            v.canonicalString
                == #"{"literals":[null,true,false],"numbers":[333333333.3333333,1e+30,4.5,0.002,1e-27],"string":"€$\u000f\nA'B\"\\\\\"/"}"#
        )
    }

    @Test("the RFC's sorting example (3.2.3): UTF-16 code unit order")
    func rfcSorting() throws {
        let input =
            #"{"\u20ac":"Euro Sign","\r":"Carriage Return","\ufb33":"Hebrew Letter Dalet With Dagesh","1":"One","\ud83d\ude00":"Emoji: Grinning Face","\u0080":"Control","\u00f6":"Latin Small Letter O With Diaeresis"}"#
        let v = try JSONParser().parse(input)
        let keys = v.canonicalString.split(separator: ",").map { $0.split(separator: ":")[0] }
        #expect(
            keys.map { String($0).replacingOccurrences(of: "{", with: "") } == [
                "\"\\r\"", "\"1\"", "\"\u{80}\"", "\"\u{F6}\"", "\"\u{20AC}\"", "\"\u{1F600}\"", "\"\u{FB33}\"",
            ])
    }

    @Test(
        "IEEE-754 values from the RFC's appendix B",
        arguments: [
            (0x0000000000000000 as UInt64, "0"), (0x8000000000000000, "0"), (0x0000000000000001, "5e-324"),
            (0x8000000000000001, "-5e-324"),
            (0x7fefffffffffffff, "1.7976931348623157e+308"), (0xffefffffffffffff, "-1.7976931348623157e+308"),
            (0x4340000000000000, "9007199254740992"), (0xc340000000000000, "-9007199254740992"),
            (0x4430000000000000, "295147905179352830000"),
            (0x44b52d02c7e14af5, "9.999999999999997e+22"), (0x44b52d02c7e14af6, "1e+23"),
            (0x44b52d02c7e14af7, "1.0000000000000001e+23"),
            (0x444b1ae4d6e2ef4e, "999999999999999700000"), (0x444b1ae4d6e2ef4f, "999999999999999900000"),
            (0x444b1ae4d6e2ef50, "1e+21"),
            (0x3eb0c6f7a0b5ed8c, "9.999999999999997e-7"), (0x3eb0c6f7a0b5ed8d, "0.000001"),
            (0x41b3de4355555553, "333333333.3333332"),
            (0x41b3de4355555554, "333333333.33333325"), (0x41b3de4355555555, "333333333.3333333"),
            (0x41b3de4355555556, "333333333.3333334"),
            (0x41b3de4355555557, "333333333.33333343"), (0xbecbf647612f3696, "-0.0000033333333333333333"),
            (0x43143ff3c1cb0959, "1424953923781206.2"),
        ])
    func rfcNumbers(bits: UInt64, expected: String) throws {
        let d = Double(bitPattern: bits)
        #expect(JSONValue.double(d).canonicalString == expected)
        // And the canonical text parses back to the same double.
        if case .double(let back) = try JSONParser().parse(expected) { #expect(back == d || (back == 0 && d == 0)) }
    }

    @Test(
        "strict parsing refuses",
        arguments: [
            (#"{"a":1,"a":2}"#, JSONParseError.Reason.duplicateKey), (#"{"é":1,"é":2}"#, .duplicateKey),
            (#""\ud800""#, .loneSurrogate), (#""\udc00""#, .loneSurrogate), (#""\ud800\u0041""#, .loneSurrogate),
            (#""\ud800x""#, .loneSurrogate),
            ("NaN", .unexpectedCharacter), ("Infinity", .unexpectedCharacter), ("-Infinity", .invalidNumber),
            ("1e400", .numberOutOfRange),
            ("-1e400", .numberOutOfRange), ("{} x", .trailingGarbage), ("1 2", .trailingGarbage),
            ("01", .invalidNumber), ("1.", .invalidNumber),
            (".5", .unexpectedCharacter), ("+1", .unexpectedCharacter), ("1e", .invalidNumber),
            ("\"a\u{1}b\"", .controlCharacter),
            ("\"abc", .unexpectedEnd), ("[1,]", .unexpectedCharacter), ("{\"a\" 1}", .unexpectedCharacter),
            ("", .unexpectedEnd),
            (#""\x""#, .invalidEscape), ("tru", .unexpectedCharacter), ("[", .unexpectedEnd),
        ])
    func refusals(text: String, reason: JSONParseError.Reason) {
        #expect(throws: JSONParseError.self) { try JSONParser().parse(text) }
        do { _ = try JSONParser().parse(text) } catch { #expect(error.reason == reason, "\(error)") }
    }

    @Test("NFC and NFD member names are different keys, kept apart")
    func normalisationDistinct() throws {
        let v = try JSONParser().parse("{\"Caf\u{E9}\":1,\"Cafe\u{301}\":2}")
        #expect(v.objectValue?.count == 2)
    }

    static let utf8Cases: [[UInt8]] = [
        [0xC3, 0xA9], [0xC0, 0xAF], [0xC1, 0xBF], [0xE0, 0x80, 0xAF], [0xE0, 0xA0, 0x80], [0xED, 0x9F, 0xBF],
        [0xED, 0xA0, 0x80],
        [0xEF, 0xBF, 0xBF], [0xF0, 0x8F, 0xBF, 0xBF], [0xF0, 0x90, 0x80, 0x80], [0xF4, 0x8F, 0xBF, 0xBF],
        [0xF4, 0x90, 0x80, 0x80],
        [0xF5, 0x80, 0x80, 0x80], [0xE2, 0x82], [0x80], [0xFF], [0xE2, 0x28, 0xA1],
    ]

    @Test(
        "the UTF-8 check agrees with Swift's validation, also after long ASCII runs", arguments: utf8Cases,
        [0, 7, 8, 17])
    func utf8(_ seq: [UInt8], asciiPrefix: Int) {
        let text = [0x22] + [UInt8](repeating: 0x61, count: asciiPrefix) + seq + [0x22]
        let valid = String(validating: text, as: UTF8.self) != nil
        do {
            _ = try JSONParser().parse(text)
            #expect(valid)
        } catch {
            #expect(!valid && error.reason == .invalidUTF8 && error.offset == 1 + asciiPrefix, "\(error)")
        }
    }

    @Test("invalid UTF-8, depth and size limits")
    func limits() {
        #expect(throws: JSONParseError.self) { try JSONParser().parse([0x22, 0xFF, 0x22]) }
        do { _ = try JSONParser().parse([0x22, 0x61, 0xC3, 0x28, 0x22]) } catch {
            #expect(error.reason == .invalidUTF8 && error.offset == 2)
        }
        let deep = String(repeating: "[", count: 200) + String(repeating: "]", count: 200)
        do {
            _ = try JSONParser().parse(deep)
            Issue.record("accepted")
        } catch { #expect(error.reason == .tooDeep) }
        var p = JSONParser()
        p.maxBytes = 10
        do {
            _ = try p.parse("[1,2,3,4,5,6]")
            Issue.record("accepted")
        } catch { #expect(error.reason == .tooLarge) }
        #expect(
            (try? JSONParser().parse(String(repeating: "[", count: 100) + String(repeating: "]", count: 100))) != nil)
    }

    /// Random documents with hard numbers and strings, canonicalised by us and by Python's `rfc8785`.
    @Test(
        "differential: 600 generated documents per seed against the rfc8785 Python package",
        arguments: [1, 2, 3, 0xDEAD_BEEF] as [UInt64])
    func differential(seed start: UInt64) throws {
        var seed = start
        func next() -> UInt64 {
            seed &+= 0x9E3779B97F4A7C15
            var z = seed
            z = (z ^ (z >> 30)) &* 0xBF58476D1CE4E5B9
            z = (z ^ (z >> 27)) &* 0x94D049BB133111EB
            return z ^ (z >> 31)
        }
        let hard: [String] = [
            "1e21", "1e-7", "-0", "-0.0", "5e-324", "9007199254740993", "9007199254740991", "-9007199254740992", "0.1",
            "0.30000000000000004",
            "1E30", "4.50", "2e-3", "1.7976931348623157e308", "123456789012345680000", "1e+22", "1e-6", "0.000001",
            "1.5e-9", "100", "1e2",
        ]
        let strings: [String] = [
            "", "a", "é", "e\u{301}", "\u{1F600}", "\u{FB33}", "\u{20AC}", "\\", "\"", "/", "\u{7F}", "\u{2028}",
            "tab\there", "\u{1}", "ß", "日本語",
        ]
        func literalString(_ s: String) -> String {
            // Mix raw characters and \u escapes (including surrogate pairs) so the parser is exercised too.
            var out = "\""
            for u in s.unicodeScalars {
                if u == "\"" || u == "\\" || u.value < 0x20 || next() % 3 == 0 {
                    for cu in String(u).utf16 { out += String(format: "\\u%04x", cu) }
                } else {
                    out.unicodeScalars.append(u)
                }
            }
            return out + "\""
        }
        func gen(_ depth: Int) -> String {
            switch next() % (depth > 3 ? 3 : 6) {
            case 0: return hard[Int(next() % UInt64(hard.count))]
            case 1:
                return literalString(
                    strings[Int(next() % UInt64(strings.count))] + strings[Int(next() % UInt64(strings.count))])
            case 2:
                let d = Double(bitPattern: next())
                if d.isFinite { return "\(d)" }
                return "\(Int64(bitPattern: next()) % 9_007_199_254_740_992)"
            case 3: return ["null", "true", "false"][Int(next() % 3)]
            case 4: return "[" + (0..<Int(next() % 4)).map { _ in gen(depth + 1) }.joined(separator: " , ") + "]"
            default:
                var used = Set<[UInt8]>()
                var members: [String] = []
                for _ in 0..<Int(next() % 5) {
                    let k = strings[Int(next() % UInt64(strings.count))] + String(next() % 4)
                    guard used.insert(Array(k.utf8)).inserted else { continue }
                    members.append(literalString(k) + ":" + gen(depth + 1))
                }
                return "{" + members.joined(separator: ",") + "}"
            }
        }
        let docs = (0..<600).map { _ in gen(0) }
        let dir = NSTemporaryDirectory() + "/rch-jcs-\(next())"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try Data(docs.joined(separator: "\n").utf8).write(to: URL(fileURLWithPath: dir + "/in.jsonl"))
        let script = """
            import base64, json, sys, rfc8785
            for line in open(sys.argv[1], encoding='utf-8'):
                print(base64.b64encode(rfc8785.dumps(json.loads(line, parse_int=float))).decode())
            """
        try Data(script.utf8).write(to: URL(fileURLWithPath: dir + "/jcs.py"))
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = ["python3", dir + "/jcs.py", dir + "/in.jsonl"]
        let out = Pipe()
        p.standardOutput = out
        try p.run()
        let data = out.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        try #require(
            p.terminationStatus == 0, "python3 with rfc8785 is required (scripts/ensure-deps --test installs it)")
        let theirs = String(decoding: data, as: UTF8.self).split(separator: "\n").map {
            Array(Data(base64Encoded: String($0))!)
        }
        #expect(theirs.count == docs.count)
        for (doc, expected) in zip(docs, theirs) {
            let ours = try JSONParser().parse(doc).canonicalBytes
            #expect(
                ours == expected,
                "\(doc)\nours:   \(String(decoding: ours, as: UTF8.self))\ntheirs: \(String(decoding: expected, as: UTF8.self))"
            )
        }
    }
}

@Suite struct IdentifierTests {
    @Test(
        "id and namespace rules",
        arguments: [
            ("run_0123456789", Identifier.Kind.runID, true), ("01J0000000000000000000000A", .jobID, true),
            ("short", .runID, false),
            ("_leading_underscore", .runID, false), ("has space 12345", .runID, false),
            ("../../etc/passwd", .jobID, false),
            ("a" + String(repeating: "b", count: 63), .requestID, true),
            ("a" + String(repeating: "b", count: 64), .requestID, false),
            ("x.y-1234567", .jobID, false), ("myapp", .namespace, true), ("my.app_v2-x", .namespace, true),
            (".hidden", .namespace, false),
            ("a..b", .namespace, false), ("a/b", .namespace, false), ("", .namespace, false), ("a", .namespace, true),
            (String(repeating: "n", count: 65), .namespace, false), ("caf\u{E9}", .namespace, false),
        ])
    func rules(value: String, kind: Identifier.Kind, valid: Bool) {
        #expect(Identifier.isValid(value, kind) == valid)
    }

    @Test("generated ids are valid, unique and sortable by time")
    func generated() {
        var seen = Set<String>()
        var previous = ""
        for i in 0..<2000 {
            let id = Identifier.generate(nowMillis: 1_700_000_000_000 + UInt64(i))
            #expect(Identifier.isValid(id, .jobID) && id.count == 26)
            #expect(seen.insert(id).inserted)
            #expect(previous < id)
            previous = id
        }
        #expect(Identifier.isValid(Identifier.generate(), .runID))
    }
}
