import RCHCore

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// The rich profile's files from what a real `xcodebuild` run leaves (PLAN §13.4): `build_summary.json` from
/// `build.log`, and for tests `test_summary.json` and `junit.xml` from the result bundle through
/// `xcrun xcresulttool` — Xcode 16's `get test-results summary|tests` first, the pre-16 `get --format json`
/// (with and without `--legacy`) when that subcommand does not exist. The one entry point of this module.
///
/// Never fatal: a missing bundle, a failing tool or an output the parsers refuse leaves the rich files
/// unwritten and returns the reason, so the job's profile is `minimal` and the reason is recorded.
public enum RichArtifacts {
    /// Runs `xcrun ARGS`; nil when the tool exits non-zero.
    public typealias Xcrun = ([String]) throws -> [UInt8]?

    /// The job envelope of the files written (PLAN §6).
    public typealias Envelope = JobEnvelope

    /// Writes what can be derived into `dir`; returns the files written and, if the test files could not be
    /// made, why.
    public static func write(action: String, into dir: String, envelope: Envelope, xcrun: Xcrun) -> (
        files: [String], degraded: String?
    ) {
        var files: [String] = []
        let log = (try? DurableFile.read(dir + "/build.log")).map { String(decoding: $0, as: UTF8.self) } ?? ""
        let build = BuildSummary(log: log)
        if (try? DurableFile.write(
            envelope.document("build_summary", build.members).canonicalBytes, to: dir + "/build_summary.json",
            durable: false)) != nil
        {
            files.append("build_summary.json")
        }
        guard action == "test" else { return (files, nil) }
        let bundle = dir + "/result.xcresult"
        guard access(bundle, F_OK) == 0 else { return (files, "no result bundle (result.xcresult) was written") }
        do {
            let results = try testResults(bundle, xcrun: xcrun)
            _ = try DurableFile.write(
                envelope.document("test_summary", results.summaryMembers).canonicalBytes,
                to: dir + "/test_summary.json", durable: false)
            _ = try DurableFile.write(Array(results.junit.utf8), to: dir + "/junit.xml", durable: false)
            files += ["test_summary.json", "junit.xml"]
            return (files, nil)
        } catch {
            unlink(dir + "/test_summary.json")
            return (files, "\(error)")
        }
    }

    static func testResults(_ bundle: String, xcrun: Xcrun) throws -> TestResults {
        if let summary = try xcrun(["xcresulttool", "get", "test-results", "summary", "--path", bundle]) {
            guard let tests = try xcrun(["xcresulttool", "get", "test-results", "tests", "--path", bundle]) else {
                throw XCResultFormatError("`xcresulttool get test-results tests` failed")
            }
            return try XCResultParser.testResults(summary: summary, tests: tests)
        }
        // Before Xcode 16 there is no `test-results`; Xcode 16 wants `--legacy` for the old commands.
        for legacy in [[], ["--legacy"]] {
            let get = ["xcresulttool", "get"] + legacy + ["--format", "json", "--path", bundle]
            guard let root = try xcrun(get) else { continue }
            guard let id = try LegacyXCResultParser.testsRef(root) else {
                throw XCResultFormatError("the result bundle has no test results (no testsRef)")
            }
            guard let tests = try xcrun(get + ["--id", id]) else {
                throw XCResultFormatError("`xcresulttool get --id \(id)` failed")
            }
            return try LegacyXCResultParser.testResults(root: root, tests: tests)
        }
        throw XCResultFormatError("no form of `xcrun xcresulttool get` could read the result bundle")
    }
}
