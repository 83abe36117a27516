import Foundation
import RCHCore
import RCHTestSupport
import Testing

@testable import RCHXcodeReports

#if canImport(FoundationXML)
    import FoundationXML
#endif

/// The rich files from Apple's formats: `xcresulttool` (Xcode 16 and before) and `xcodebuild` logs.
@Suite("Rich artifacts: xcresulttool and build log parsers")
struct XcodeReportsTests {
    static func bytes(_ s: String) -> [UInt8] { Array(s.utf8) }

    @Test("Xcode 16 test-results: counts, passing/failing/skipped/expected/crashed cases, failure locations")
    func xcode16() throws {
        let r = try XCResultParser.testResults(
            summary: Self.bytes(XCResultFixtures.summary), tests: Self.bytes(XCResultFixtures.tests))
        #expect(r.result == "failed" && r.title == "Test - SampleApp" && r.durationMs == 12250)
        #expect(r.effectiveCounts == .init(total: 5, passed: 1, failed: 2, skipped: 1, expectedFailures: 1))
        #expect(r.cases.map(\.outcome) == [.passed, .failed, .skipped, .expectedFailure, .failed])
        let math = r.cases[1]
        #expect(math.identifier == "SampleAppTests/testMath()" && math.target == "SampleAppTests")
        #expect(math.suite == "SampleAppTests" && math.durationMs == 4)
        #expect(
            math.failures == [
                .init(
                    message: #"XCTAssertEqual failed: ("1") is not equal to ("2")"#, file: "SampleAppTests.swift",
                    line: 14)
            ])
        let crash = r.cases[4]
        #expect(
            crash.suite == "NetworkTests"
                && crash.failures == [.init(message: "Test crashed with signal ill.", file: nil, line: nil)])
        #expect(r.devices == [.init(name: "iPhone 16", osVersion: "18.2", platform: "iOS Simulator")])
        let m = JSONValue.object(r.summaryMembers)
        #expect(
            m["failing_tests"] == .array([.string("SampleAppTests/testMath()"), .string("NetworkTests/testCrash()")]))
        #expect(m["failures"]?.arrayValue?.first?["line"]?.intValue == 14)
    }

    @Test("JUnit: well-formed XML, one suite per class, failures and skips, text escaped")
    func junit() throws {
        let r = try XCResultParser.testResults(
            summary: Self.bytes(XCResultFixtures.summary), tests: Self.bytes(XCResultFixtures.tests))
        let xml = r.junit
        #expect(XMLParser(data: Data(xml.utf8)).parse(), "\(xml)")
        #expect(xml.contains(#"<testsuites name="Test - SampleApp" tests="5" failures="2" skipped="1""#))
        #expect(
            xml.contains(
                #"<testsuite name="SampleAppTests.NetworkTests" tests="1" failures="1" skipped="0" time="1.200">"#))
        #expect(xml.contains("&quot;1&quot;) is not equal to (&quot;2&quot;)"))
        #expect(xml.contains("<skipped/>") && xml.contains(">SampleAppTests.swift:14: XCTAssertEqual"))
        #expect(XML.escape("a<b>&\"'\u{1}") == "a&lt;b&gt;&amp;&quot;&apos;\u{FFFD}")
    }

    @Test("before Xcode 16: the legacy record and its testsRef give the same tests, lines counted from 1")
    func legacy() throws {
        #expect(try LegacyXCResultParser.testsRef(Self.bytes(XCResultFixtures.legacyRoot))?.hasPrefix("0~bwDm") == true)
        let r = try LegacyXCResultParser.testResults(
            root: Self.bytes(XCResultFixtures.legacyRoot), tests: Self.bytes(XCResultFixtures.legacyTests))
        #expect(r.source == "xcresulttool legacy" && r.result == "failed")
        #expect(
            r.cases.map(\.identifier) == [
                "SampleAppTests/testAddition()", "SampleAppTests/testMath()", "SampleAppTests/testSkipped()",
            ])
        #expect(r.cases.map(\.outcome) == [.passed, .failed, .skipped])
        #expect(r.cases[1].failures.first?.line == 14 && r.cases[1].failures.first?.file == "SampleAppTests.swift")
        #expect(r.effectiveCounts == .init(total: 3, passed: 1, failed: 1, skipped: 1, expectedFailures: 0))
    }

    /// Outputs we do not accept: each names what is wrong.
    @Test(
        "malformed xcresulttool output is refused, naming the member",
        arguments: [
            ("not JSON", "{", "did not print JSON"),
            ("no title", #"{"result":"Passed"}"#, "title"),
            ("wrong count type", #"{"title":"t","result":"Passed","totalTestCount":"5"}"#, "totalTestCount"),
            ("unknown result", #"{"title":"t","result":"Maybe"}"#, "result 'Maybe'"),
        ])
    func malformedSummary(name: String, summary: String, message: String) throws {
        #expect {
            _ = try XCResultParser.testResults(summary: Self.bytes(summary), tests: Self.bytes(XCResultFixtures.tests))
        } throws: { ($0 as? XCResultFormatError)?.description.contains(message) == true }
    }

    @Test(
        "a malformed test tree is refused",
        arguments: [
            #"{"testNodes":{}}"#, #"{"testNodes":[{"nodeType":"Test Case","result":"Passed"}]}"#,
            #"{"testNodes":[{"name":"t","nodeType":"Test Case"}]}"#,
            #"{"testNodes":[{"name":"t","nodeType":"Test Case","result":"Sort of"}]}"#,
        ])
    func malformedTests(tests: String) throws {
        #expect(throws: XCResultFormatError.self) {
            try XCResultParser.testResults(summary: Self.bytes(XCResultFixtures.summary), tests: Self.bytes(tests))
        }
    }

    @Test("build log: targets, warnings, a compile error printed twice counted once, a linker failure")
    func buildLog() {
        let b = BuildSummary(log: XCResultFixtures.failingBuildLog)
        #expect(b.targets == ["SampleKit", "SampleApp"] && b.verdict == "failed")
        let m = JSONValue.object(b.members)
        #expect(m["warning_count"]?.intValue == 1 && m["error_count"]?.intValue == 4, "\(m.canonicalString)")
        #expect(m["first_error"]?["file"]?.stringValue == "/Users/rch/src/SampleApp/SampleApp/ContentView.swift")
        #expect(m["first_error"]?["line"]?.intValue == 21 && m["first_error"]?["column"]?.intValue == 17)
        #expect(m["linker_failed"]?.boolValue == true)
        let old = BuildSummary(
            log: "=== BUILD TARGET Legacy OF PROJECT App WITH CONFIGURATION Debug ===\n** BUILD SUCCEEDED **\n")
        #expect(old.targets == ["Legacy"] && old.verdict == "succeeded" && old.diagnostics.isEmpty)
    }

    @Test("RichArtifacts: Xcode 16 first, the legacy commands when test-results does not exist, degraded otherwise")
    func orchestration() throws {
        let d = TempDir()
        try FileManager.default.createDirectory(atPath: d.sub("result.xcresult"), withIntermediateDirectories: true)
        try "** TEST FAILED **\n".write(toFile: d.sub("build.log"), atomically: true, encoding: .utf8)
        let env = RichArtifacts.Envelope(
            runID: "run_0000000001", jobID: "job_0000000001", jobKey: String(repeating: "a", count: 64))
        var calls: [[String]] = []
        // An Xcode 15: no `test-results`; `get --format json` works without --legacy.
        let (files, degraded) = RichArtifacts.write(action: "test", into: d.path, envelope: env) { args in
            calls.append(args)
            if args.contains("test-results") { return nil }
            return Self.bytes(args.contains("--id") ? XCResultFixtures.legacyTests : XCResultFixtures.legacyRoot)
        }
        #expect(degraded == nil && files == ["build_summary.json", "test_summary.json", "junit.xml"])
        #expect(
            calls.last?.suffix(2) == [
                "--id", "0~bwDmjnkmpJFCf4ytcJZ-AxQ5pPSM3eLCFzD9hJ0UyXm9p9CIYC8Y3FkW0n2ixt2t0TX5HgGY7kt_4wYwP1C8sA==",
            ])
        for (file, schema) in [("test_summary.json", "test_summary"), ("build_summary.json", "build_summary")] {
            let v = try Run.shell(
                "check-jsonschema --schemafile '\(TestPaths.packageRoot)/schemas/rch-xcode/\(schema).schema.json' '\(d.sub(file))'"
            )
            #expect(v.status == 0, "\(file): \(v.stdout)\(v.stderr)")
        }
        // Every tool fails: the reason is returned and no test files are left.
        unlink(d.sub("test_summary.json"))
        unlink(d.sub("junit.xml"))
        let (_, why) = RichArtifacts.write(action: "test", into: d.path, envelope: env) { _ in nil }
        #expect(why?.contains("no form of `xcrun xcresulttool get`") == true)
        #expect(access(d.sub("test_summary.json"), F_OK) != 0 && access(d.sub("junit.xml"), F_OK) != 0)
        // A garbled summary: degraded with the parser's reason, never a crash.
        let (_, garbled) = RichArtifacts.write(action: "test", into: d.path, envelope: env) { args in
            args.contains("summary") ? Self.bytes(#"{"title":5}"#) : Self.bytes(XCResultFixtures.tests)
        }
        #expect(garbled?.contains("title must be a string") == true)
    }
}
