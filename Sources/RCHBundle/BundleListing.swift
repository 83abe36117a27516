import RCHCore

/// `rch-xcode bundle --list`: every path the selection saw, whether it goes into the bundle, and the rule
/// that decided. Excluded directories are one row (ending in `/`): nothing below them was visited.
///
/// Rules: `default: <category>` (the built-in deny-list), `.rchignore:<line>: <pattern>` (the last matching
/// line; for an included path a `!` line that re-included it), `git: ignored` (`git` mode: neither tracked
/// nor untracked-and-not-ignored), `kept` (no rule applies).
public struct BundleListing: Sendable {
    public struct Row: Sendable, Equatable {
        public var path: String
        public var included: Bool
        public var rule: String
    }

    public var root: String
    public var mode: SelectionMode
    public var rows: [Row]

    /// Selects as the bundler would (every path and collision rule applies: a tree the bundler refuses is
    /// refused here with the same error), without reading any content.
    public init(root: String, mode: SelectionMode) throws {
        self.root = root
        self.mode = mode
        let selector = try TreeSelector(root: root, mode: mode)
        let selection = try selector.select()
        var rows = selection.exclusions.map { Row(path: $0.path, included: false, rule: $0.rule) }
        for e in selection.entries {
            var rule = "kept"
            if let r = selector.ignore.decidingRule(e.pathBytes, isDirectory: false), !r.excludes {
                rule = ".rchignore:\(r.line): \(r.text)"
            }
            rows.append(Row(path: e.path, included: true, rule: rule))
        }
        rows.sort { $0.path.utf8.lexicographicallyPrecedes($1.path.utf8) }
        self.rows = rows
    }

    public var json: JSONValue {
        .obj([
            "root": .string(root), "mode": .string(mode.rawValue),
            "included": .int(Int64(rows.filter(\.included).count)),
            "excluded": .int(Int64(rows.filter { !$0.included }.count)),
            "paths": .array(
                rows.map { .obj(["path": .string($0.path), "in": .bool($0.included), "rule": .string($0.rule)]) }),
        ])
    }

    /// `in   path` / `out  path   (rule)` lines and a count.
    public var text: String {
        var lines = rows.map { r in
            r.included
                ? "in   \(r.path)" + (r.rule == "kept" ? "" : "   (\(r.rule))")
                : "out  \(r.path)   (\(r.rule))"
        }
        let n = rows.filter(\.included).count
        lines.append("\(n) in, \(rows.count - n) out (\(mode.rawValue) mode)")
        return lines.joined(separator: "\n")
    }
}
