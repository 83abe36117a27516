import RCHCore

/// Strict readers of `xcrun xcresulttool` JSON (the formats Apple's tools print; fixtures in the tests).
///
/// Xcode 16+ (`get test-results summary` and `get test-results tests`): the members read must be present and
/// typed — summary: `title`, `result`, `totalTestCount`, `passedTests`, `failedTests`, `skippedTests`,
/// `expectedFailures`, optional `startTime`/`finishTime` (seconds), `devicesAndConfigurations[].device`
/// (`deviceName`, `osVersion`, optional `platform`); tests: `testNodes`, each node `name` and `nodeType`,
/// optional `result`, `nodeIdentifier`, `durationInSeconds`, `children`. `Unit test bundle` nodes name the
/// target, `Test Suite` nodes the class, `Test Case` nodes the tests, `Failure Message` nodes under a case
/// (`File.swift:LINE: message`) its failures. Members Apple adds are ignored; anything else is a
/// ``XCResultFormatError`` naming the member (the caller then degrades to the minimal profile).
///
/// Before Xcode 16 (`get --format json`, and the `--id` of its `testsRef`): the `_type`/`_value` encoding of
/// `ActionsInvocationRecord` → `ActionTestPlanRunSummaries` → `ActionTestableSummary` →
/// `ActionTestSummaryGroup` (`subtests`) → `ActionTestMetadata` (`identifier`, `name`, `testStatus`,
/// `duration`), failures from `issues.testFailureSummaries` (`testCaseName`, `message`,
/// `documentLocationInCreatingWorkspace.url` with `#…LineNumber=N`).
public enum XCResultParser {
    static let outcomes: [String: TestResults.Outcome] = [
        "Passed": .passed, "Failed": .failed, "Skipped": .skipped, "Expected Failure": .expectedFailure,
    ]

    /// Xcode 16+: the summary and the test tree.
    public static func testResults(summary: [UInt8], tests: [UInt8]) throws -> TestResults {
        let s = try parse(summary, "get test-results summary")
        let title = try string(s, "title")
        let result = try string(s, "result")
        guard outcomes[result] != nil || result == "unknown" else { throw XCResultFormatError("result '\(result)'") }
        var counts = [String: Int64]()
        for k in ["totalTestCount", "passedTests", "failedTests", "skippedTests", "expectedFailures"] {
            guard let n = s[k]?.intValue, n >= 0 else { throw XCResultFormatError("\(k) must be a count") }
            counts[k] = n
        }
        var devices: [TestResults.Device] = []
        for (i, d) in (try array(s, "devicesAndConfigurations")).enumerated() {
            guard let dev = d["device"] else { throw XCResultFormatError("devicesAndConfigurations[\(i)].device") }
            devices.append(
                .init(
                    name: try string(dev, "deviceName"), osVersion: try string(dev, "osVersion"),
                    platform: dev["platform"]?.stringValue))
        }
        var duration: Int64? = nil
        if let a = number(s["startTime"]), let b = number(s["finishTime"]), b >= a { duration = Int64((b - a) * 1000) }
        let t = try parse(tests, "get test-results tests")
        var cases: [TestResults.Case] = []
        for node in try array(t, "testNodes") { try walk(node, target: "", suite: "", into: &cases) }
        var r = TestResults(
            title: title, result: result == "Failed" || counts["failedTests"]! > 0 ? "failed" : "passed", cases: cases,
            devices: devices, durationMs: duration, source: "xcresulttool test-results")
        r.counts = TestResults.Counts(
            total: counts["totalTestCount"]!, passed: counts["passedTests"]!, failed: counts["failedTests"]!,
            skipped: counts["skippedTests"]!, expectedFailures: counts["expectedFailures"]!)
        return r
    }

    static func walk(_ n: JSONValue, target: String, suite: String, into cases: inout [TestResults.Case]) throws {
        let name = try string(n, "name")
        let type = try string(n, "nodeType")
        let children = n["children"] == nil ? [] : try array(n, "children")
        switch type {
        case "Unit test bundle", "UI test bundle":
            for c in children { try walk(c, target: name, suite: suite, into: &cases) }
        case "Test Suite":
            for c in children {
                try walk(c, target: target, suite: suite.isEmpty ? name : suite + "/" + name, into: &cases)
            }
        case "Test Case":
            let result = try string(n, "result")
            guard let outcome = outcomes[result] else {
                throw XCResultFormatError("test case '\(name)' result '\(result)'")
            }
            var failures: [TestResults.Failure] = []
            collectFailures(children, into: &failures)
            let id =
                n["nodeIdentifier"]?.stringValue ?? [target, suite, name].filter { !$0.isEmpty }.joined(separator: "/")
            cases.append(
                .init(
                    identifier: id, target: target, suite: suite, name: name, outcome: outcome,
                    durationMs: number(n["durationInSeconds"]).map { Int64(($0 * 1000).rounded()) },
                    failures: failures))
        default:  // Test Plan, Device, Repetition, Arguments, Runtime Warning … : look inside
            for c in children { try walk(c, target: target, suite: suite, into: &cases) }
        }
    }

    static func collectFailures(_ nodes: [JSONValue], into out: inout [TestResults.Failure]) {
        for n in nodes {
            if n["nodeType"]?.stringValue == "Failure Message", let text = n["name"]?.stringValue {
                out.append(failure(text))
            }
            collectFailures(n["children"]?.arrayValue ?? [], into: &out)
        }
    }

    /// `AppTests.swift:14: XCTAssertEqual failed: …` → file, line, message (no location: the whole text).
    static func failure(_ text: String) -> TestResults.Failure {
        let parts = text.split(separator: ":", maxSplits: 2, omittingEmptySubsequences: false)
        if parts.count == 3, let line = Int64(parts[1]), !parts[0].isEmpty, !parts[0].contains(" ") {
            return .init(
                message: String(parts[2]).trimmingPrefixSpaces, file: String(parts[0]), line: line)
        }
        return .init(message: text, file: nil, line: nil)
    }

    // MARK: strict member access

    static func parse(_ bytes: [UInt8], _ command: String) throws -> JSONValue {
        do { return try JSONParser().parse(bytes) } catch {
            throw XCResultFormatError("`xcresulttool \(command)` did not print JSON: \(error)")
        }
    }

    static func string(_ o: JSONValue, _ k: String) throws -> String {
        guard let s = o[k]?.stringValue else { throw XCResultFormatError("\(k) must be a string") }
        return s
    }

    static func array(_ o: JSONValue, _ k: String) throws -> [JSONValue] {
        guard let a = o[k]?.arrayValue else { throw XCResultFormatError("\(k) must be an array") }
        return a
    }

    static func number(_ v: JSONValue?) -> Double? {
        switch v {
        case .double(let d)?: d
        case .int(let i)?: Double(i)
        default: nil
        }
    }
}

/// An `xcresulttool` output we do not accept (the member or value that is wrong).
public struct XCResultFormatError: Error, CustomStringConvertible, Sendable {
    public var description: String
    public init(_ d: String) { description = "unexpected xcresulttool output: " + d }
}

extension String {
    var trimmingPrefixSpaces: String { String(drop { $0 == " " }) }
}
