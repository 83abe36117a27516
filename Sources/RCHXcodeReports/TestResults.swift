import RCHCore

/// Test results as read from a result bundle, whatever `xcresulttool` produced them: the model behind
/// `test_summary.json` and `junit.xml`.
public struct TestResults: Sendable, Equatable {
    public enum Outcome: String, Sendable {
        case passed, failed, skipped
        case expectedFailure = "expected_failure"
    }

    public struct Case: Sendable, Equatable {
        /// `Target/Class/testName()` as Xcode identifies it.
        public var identifier: String
        public var target: String
        public var suite: String
        public var name: String
        public var outcome: Outcome
        public var durationMs: Int64?
        public var failures: [Failure]
    }

    public struct Failure: Sendable, Equatable {
        public var message: String
        public var file: String?
        public var line: Int64?
    }

    public struct Device: Sendable, Equatable {
        public var name: String
        public var osVersion: String
        public var platform: String?
    }

    public init(
        title: String, result: String, cases: [Case], devices: [Device], durationMs: Int64?, source: String
    ) {
        self.title = title
        self.result = result
        self.cases = cases
        self.devices = devices
        self.durationMs = durationMs
        self.source = source
    }

    public var title: String
    /// `passed` or `failed` (a run with any failed test, or whose tool said so).
    public var result: String
    public var cases: [Case]
    public var devices: [Device]
    public var durationMs: Int64?
    /// Which output the results were read from (`xcresulttool test-results` or `xcresulttool legacy`).
    public var source: String
    /// The tool's own counts, when it reports them (they win over counting ``cases``: parameterised and
    /// repeated tests are counted the tool's way).
    public var counts: Counts?

    public struct Counts: Sendable, Equatable {
        public var total, passed, failed, skipped, expectedFailures: Int64
    }

    func count(_ o: Outcome) -> Int64 { Int64(cases.filter { $0.outcome == o }.count) }

    var effectiveCounts: Counts {
        counts
            ?? Counts(
                total: Int64(cases.count), passed: count(.passed), failed: count(.failed), skipped: count(.skipped),
                expectedFailures: count(.expectedFailure))
    }

    /// `rch-xcode/test_summary@1` members (without the job envelope).
    public var summaryMembers: JSONObject {
        let failing = cases.filter { $0.outcome == .failed }
        return [
            "source": .string(source), "title": .string(title), "result": .string(result),
            "counts": .obj([
                "total": .int(effectiveCounts.total), "passed": .int(effectiveCounts.passed),
                "failed": .int(effectiveCounts.failed), "skipped": .int(effectiveCounts.skipped),
                "expected_failures": .int(effectiveCounts.expectedFailures),
            ]),
            "duration_ms": durationMs.map { .int($0) } ?? .null,
            "failing_tests": .array(failing.map { .string($0.identifier) }),
            "failures": .array(
                failing.flatMap { c in
                    (c.failures.isEmpty ? [Failure(message: "failed", file: nil, line: nil)] : c.failures).map { f in
                        .obj([
                            "test": .string(c.identifier), "target": .string(c.target), "message": .string(f.message),
                            "file": f.file.map { .string($0) } ?? .null, "line": f.line.map { .int($0) } ?? .null,
                        ])
                    }
                }),
            "devices": .array(
                devices.map {
                    .obj([
                        "name": .string($0.name), "os_version": .string($0.osVersion),
                        "platform": $0.platform.map { .string($0) } ?? .null,
                    ])
                }),
        ]
    }

    /// JUnit XML (the common Jenkins/GitLab dialect): one `testsuite` per target and class.
    public var junit: String {
        var groups: [(key: String, cases: [Case])] = []
        for c in cases {
            let key = c.target + "." + c.suite
            if let i = groups.firstIndex(where: { $0.key == key }) {
                groups[i].cases.append(c)
            } else {
                groups.append((key, [c]))
            }
        }
        func seconds(_ ms: Int64?) -> String {
            let v = Double(ms ?? 0) / 1000
            return String(format: "%.3f", v)
        }
        func total(_ cs: [Case]) -> Int64 { cs.reduce(0) { $0 + ($1.durationMs ?? 0) } }
        var x = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
        x +=
            "<testsuites name=\"\(XML.escape(title))\" tests=\"\(cases.count)\" failures=\"\(count(.failed))\" "
            + "skipped=\"\(count(.skipped))\" time=\"\(seconds(durationMs ?? total(cases)))\">\n"
        for g in groups {
            let fails = g.cases.filter { $0.outcome == .failed }.count
            let skips = g.cases.filter { $0.outcome == .skipped }.count
            x +=
                "  <testsuite name=\"\(XML.escape(g.key))\" tests=\"\(g.cases.count)\" failures=\"\(fails)\" "
                + "skipped=\"\(skips)\" time=\"\(seconds(total(g.cases)))\">\n"
            for c in g.cases {
                x +=
                    "    <testcase classname=\"\(XML.escape(g.key))\" name=\"\(XML.escape(c.name))\" "
                    + "time=\"\(seconds(c.durationMs))\""
                switch c.outcome {
                case .passed, .expectedFailure: x += "/>\n"
                case .skipped: x += ">\n      <skipped/>\n    </testcase>\n"
                case .failed:
                    x += ">\n"
                    for f in c.failures.isEmpty ? [Failure(message: "failed", file: nil, line: nil)] : c.failures {
                        let at = f.file.map { "\($0):\(f.line ?? 0): " } ?? ""
                        x +=
                            "      <failure message=\"\(XML.escape(f.message))\">\(XML.escape(at + f.message))</failure>\n"
                    }
                    x += "    </testcase>\n"
                }
            }
            x += "  </testsuite>\n"
        }
        return x + "</testsuites>\n"
    }
}

/// XML text and attribute escaping; characters XML 1.0 cannot carry become U+FFFD.
enum XML {
    static func escape(_ s: String) -> String {
        var out = ""
        for u in s.unicodeScalars {
            switch u {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&apos;"
            case "\t", "\n", "\r": out.unicodeScalars.append(u)
            default:
                if u.value < 0x20 || (0xFFFE...0xFFFF).contains(u.value) {
                    out += "\u{FFFD}"
                } else {
                    out.unicodeScalars.append(u)
                }
            }
        }
        return out
    }
}
