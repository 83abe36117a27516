import RCHCore

/// `build_summary.json` from an `xcodebuild` log: the targets built, warning and error counts, the first error's
/// location, linker failures.
///
/// Recognised lines: `Target 'X' in project 'P'` (the target dependency graph Xcode 14+ prints) and
/// `=== BUILD TARGET X OF PROJECT P …` (older); diagnostics `PATH:LINE:COL: error|warning: MESSAGE` and
/// `PATH:LINE: …`; tool diagnostics `error: …`, `warning: …`, `ld: …`, `clang: error: linker command failed …`,
/// `Undefined symbols for architecture …`; the verdict `** BUILD SUCCEEDED **`, `** BUILD FAILED **`,
/// `** TEST SUCCEEDED|FAILED **`. The same diagnostic printed twice (Xcode repeats them in its summary) counts
/// once.
public struct BuildSummary: Sendable, Equatable {
    public struct Diagnostic: Sendable, Equatable, Hashable {
        public var kind: String  // compile | linker | tool
        public var severity: String  // error | warning
        public var file: String?
        public var line: Int64?
        public var column: Int64?
        public var message: String
    }

    public var targets: [String] = []
    public var diagnostics: [Diagnostic] = []
    /// `succeeded`, `failed`, or nil when the log has no verdict (the build was interrupted).
    public var verdict: String?

    public init(log: String) {
        var seen = Set<Diagnostic>()
        for raw in log.split(separator: "\n", omittingEmptySubsequences: true) {
            let line = raw.hasSuffix("\r") ? raw.dropLast() : raw[...]
            if let t = Self.target(line), !targets.contains(t) {
                targets.append(t)
                continue
            }
            if line.contains("** BUILD SUCCEEDED **") || line.contains("** TEST SUCCEEDED **") { verdict = "succeeded" }
            if line.contains("** BUILD FAILED **") || line.contains("** TEST FAILED **") { verdict = "failed" }
            if let d = Self.diagnostic(line), seen.insert(d).inserted { diagnostics.append(d) }
        }
    }

    static func target(_ line: Substring) -> String? {
        let t = line.drop { $0 == " " || $0 == "➜" }
        if t.hasPrefix("Target '"), let end = t.dropFirst(8).firstIndex(of: "'"), t[end...].hasPrefix("' in project '")
        {
            return String(t[t.index(t.startIndex, offsetBy: 8)..<end])
        }
        if t.hasPrefix("=== BUILD TARGET ") {
            let rest = t.dropFirst(17)
            if let sp = rest.range(of: " OF PROJECT ") { return String(rest[..<sp.lowerBound]) }
        }
        return nil
    }

    static func diagnostic(_ line: Substring) -> Diagnostic? {
        for severity in ["error", "warning"] {
            guard let r = line.range(of: ": \(severity): ") else { continue }
            let location = line[..<r.lowerBound]
            let message = String(line[r.upperBound...])
            let parts = location.split(separator: ":", omittingEmptySubsequences: false)
            if parts.count >= 2, parts[0].hasPrefix("/") || parts[0].contains("."), let l = Int64(parts[1]) {
                return Diagnostic(
                    kind: "compile", severity: severity, file: String(parts[0]), line: l,
                    column: parts.count >= 3 ? Int64(parts[2]) : nil, message: message)
            }
            if location == "clang" || location == "ld" || location.hasSuffix("/ld") {
                return Diagnostic(
                    kind: "linker", severity: severity, file: nil, line: nil, column: nil, message: message)
            }
        }
        if line.hasPrefix("error: ") || line.hasPrefix("warning: ") {
            let severity = line.hasPrefix("error") ? "error" : "warning"
            return Diagnostic(
                kind: "tool", severity: severity, file: nil, line: nil, column: nil,
                message: String(line.drop { $0 != " " }.dropFirst()))
        }
        if line.hasPrefix("ld: ") || line.hasPrefix("Undefined symbols for architecture ") {
            return Diagnostic(
                kind: "linker", severity: "error", file: nil, line: nil, column: nil,
                message: line.hasPrefix("ld: ") ? String(line.dropFirst(4)) : String(line))
        }
        return nil
    }

    var errors: [Diagnostic] { diagnostics.filter { $0.severity == "error" } }

    /// `rch-xcode/build_summary@1` members (without the job envelope).
    public var members: JSONObject {
        func json(_ d: Diagnostic) -> JSONValue {
            .obj([
                "kind": .string(d.kind), "severity": .string(d.severity), "file": d.file.map { .string($0) } ?? .null,
                "line": d.line.map { .int($0) } ?? .null, "column": d.column.map { .int($0) } ?? .null,
                "message": .string(d.message),
            ])
        }
        return [
            "source": .string("build.log"), "status": verdict.map { .string($0) } ?? .null,
            "targets": .array(targets.map { .string($0) }),
            "warning_count": .int(Int64(diagnostics.count - errors.count)), "error_count": .int(Int64(errors.count)),
            "first_error": errors.first.map(json) ?? .null,
            "errors": .array(errors.prefix(20).map(json)),
            "linker_failed": .bool(errors.contains { $0.kind == "linker" }),
        ]
    }
}
