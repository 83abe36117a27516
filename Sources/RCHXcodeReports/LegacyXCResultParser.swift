import RCHCore

/// `xcresulttool get --format json` before Xcode 16 (see ``XCResultParser``): values are wrapped as
/// `{"_type":{"_name":T},"_value":"…"}` and arrays as `{"_values":[…]}`.
public enum LegacyXCResultParser {
    /// The `testsRef` id of the invocation record's first test action, or nil (no tests ran).
    public static func testsRef(_ root: [UInt8]) throws -> String? {
        let r = try XCResultParser.parse(root, "get --format json")
        guard r["_type"]?["_name"]?.stringValue == "ActionsInvocationRecord" else {
            throw XCResultFormatError("the root is not an ActionsInvocationRecord")
        }
        for a in values(r["actions"]) {
            if let id = a["actionResult"]?["testsRef"]?["id"]?["_value"]?.stringValue { return id }
        }
        return nil
    }

    /// The invocation record (counts, failures) and the `testsRef` object (the test tree).
    public static func testResults(root: [UInt8], tests: [UInt8]) throws -> TestResults {
        let r = try XCResultParser.parse(root, "get --format json")
        let t = try XCResultParser.parse(tests, "get --format json --id")
        guard t["_type"]?["_name"]?.stringValue == "ActionTestPlanRunSummaries" else {
            throw XCResultFormatError("the testsRef object is not an ActionTestPlanRunSummaries")
        }
        var failuresByTest: [String: [TestResults.Failure]] = [:]
        for f in values(r["issues"]?["testFailureSummaries"]) {
            guard let test = value(f["testCaseName"]), let message = value(f["message"]) else {
                throw XCResultFormatError("testFailureSummaries[] needs testCaseName and message")
            }
            var failure = TestResults.Failure(message: message, file: nil, line: nil)
            if let url = value(f["documentLocationInCreatingWorkspace"]?["url"]) {
                let (file, line) = location(url)
                failure.file = file
                failure.line = line
            }
            failuresByTest[test, default: []].append(failure)
        }
        var cases: [TestResults.Case] = []
        for run in values(t["summaries"]) {
            for testable in values(run["testableSummaries"]) {
                let target = value(testable["name"]) ?? ""
                for g in values(testable["tests"]) {
                    try walk(g, target: target, suite: "", failures: failuresByTest, into: &cases)
                }
            }
        }
        var counts: TestResults.Counts? = nil
        if let total = int(r["metrics"]?["testsCount"]) {
            let failed = int(r["metrics"]?["testsFailedCount"]) ?? 0
            let skipped = int(r["metrics"]?["testsSkippedCount"]) ?? 0
            let expected = Int64(cases.filter { $0.outcome == .expectedFailure }.count)
            counts = .init(
                total: total, passed: max(0, total - failed - skipped - expected), failed: failed, skipped: skipped,
                expectedFailures: expected)
        }
        var out = TestResults(
            title: value(values(r["actions"]).first?["title"]) ?? "Test",
            result: cases.contains { $0.outcome == .failed } || (counts?.failed ?? 0) > 0 ? "failed" : "passed",
            cases: cases, devices: [], durationMs: nil, source: "xcresulttool legacy")
        out.counts = counts
        return out
    }

    static func walk(
        _ n: JSONValue, target: String, suite: String, failures: [String: [TestResults.Failure]],
        into cases: inout [TestResults.Case]
    ) throws {
        switch n["_type"]?["_name"]?.stringValue {
        case "ActionTestSummaryGroup":
            for c in values(n["subtests"]) {
                try walk(c, target: target, suite: suite, failures: failures, into: &cases)
            }
        case "ActionTestMetadata":
            guard let name = value(n["name"]), let status = value(n["testStatus"]) else {
                throw XCResultFormatError("ActionTestMetadata needs name and testStatus")
            }
            let outcome: TestResults.Outcome
            switch status {
            case "Success": outcome = .passed
            case "Failure": outcome = .failed
            case "Skipped": outcome = .skipped
            case "Expected Failure": outcome = .expectedFailure
            default: throw XCResultFormatError("testStatus '\(status)'")
            }
            // `Class/method()`, as Xcode 16 identifies tests too; the class is the suite.
            let identifier = value(n["identifier"]) ?? name
            let dotted = identifier.replacingOccurrences(of: "/", with: ".")
            let suite = identifier.contains("/") ? String(identifier.split(separator: "/")[0]) : suite
            cases.append(
                .init(
                    identifier: identifier, target: target, suite: suite,
                    name: name, outcome: outcome,
                    durationMs: value(n["duration"]).flatMap(Double.init).map { Int64(($0 * 1000).rounded()) },
                    failures: failures[dotted] ?? failures[identifier] ?? []))
        default:
            throw XCResultFormatError("unexpected test node type '\(n["_type"]?["_name"]?.stringValue ?? "none")'")
        }
    }

    static func values(_ v: JSONValue?) -> [JSONValue] { v?["_values"]?.arrayValue ?? [] }
    static func value(_ v: JSONValue?) -> String? { v?["_value"]?.stringValue }
    static func int(_ v: JSONValue?) -> Int64? { value(v).flatMap { Int64($0) } }

    /// `file:///…/AppTests.swift#EndingLineNumber=13&StartingLineNumber=13` → (`AppTests.swift`, 14): the
    /// record's line numbers count from 0.
    static func location(_ url: String) -> (String?, Int64?) {
        let parts = url.split(separator: "#", maxSplits: 1)
        let file = parts.first.flatMap { $0.split(separator: "/").last.map(String.init) }
        var line: Int64? = nil
        if parts.count == 2 {
            for kv in parts[1].split(separator: "&") where kv.hasPrefix("StartingLineNumber=") {
                line = Int64(kv.dropFirst("StartingLineNumber=".count)).map { $0 + 1 }
            }
        }
        return (file, line)
    }
}
