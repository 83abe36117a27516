/// What the bundler leaves out.
///
/// Two layers, applied in both selection modes:
/// 1. the built-in deny-list (``defaultExcluded(name:isDirectory:parent:)``): VCS state, per-user Xcode
///    state, build outputs and Finder debris — never wanted on a worker;
/// 2. the repository's `.rchignore` at the root: gitignore-style patterns (`#` comments, `!` negation,
///    trailing `/` for directories only, a `/` anywhere but the end anchors to the root, `*`, `?`, `[…]`,
///    `**`). The last matching pattern wins; a file below an excluded directory cannot be re-included.
/// Kept on purpose: shared schemes (`xcshareddata/`), `Package.resolved`, `.swiftpm/configuration/`,
/// `.rch/xcode.toml` and `.rchignore` itself.
public struct IgnoreRules: Sendable {
    struct Pattern: Sendable {
        var segments: [[UInt8]]  // split on '/', "**" kept as a segment
        var negated: Bool
        var directoryOnly: Bool
        var anchored: Bool
        /// 1-based line of `.rchignore` and the line as written (for `bundle --list`).
        var line: Int
        var text: String
    }

    var patterns: [Pattern] = []

    public init() {}

    /// Parses `.rchignore` text.
    public init(rchignore text: [UInt8]) {
        for (index, rawLine) in text.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false)
            .enumerated()
        {
            var line = Array(rawLine)
            if line.last == UInt8(ascii: "\r") { line.removeLast() }
            // As git: trailing unescaped spaces are trimmed (tabs are part of the pattern); CRLF endings are accepted.
            while let last = line.last, last == UInt8(ascii: " ") {
                if line.count >= 2 && line[line.count - 2] == UInt8(ascii: "\\") { break }
                line.removeLast()
            }
            if line.isEmpty || line.first == UInt8(ascii: "#") { continue }
            let written = String(decoding: line, as: UTF8.self)
            var negated = false
            if line.first == UInt8(ascii: "!") {
                negated = true
                line.removeFirst()
            } else if line.starts(with: [UInt8(ascii: "\\"), UInt8(ascii: "#")])
                || line.starts(with: [UInt8(ascii: "\\"), UInt8(ascii: "!")])
            {
                line.removeFirst()
            }
            var directoryOnly = false
            while line.last == UInt8(ascii: "/") {
                directoryOnly = true
                line.removeLast()
            }
            if line.isEmpty { continue }
            var anchored = line.contains(UInt8(ascii: "/"))
            if line.first == UInt8(ascii: "/") {
                line.removeFirst()
                anchored = true
            }
            var segments = line.split(separator: UInt8(ascii: "/"), omittingEmptySubsequences: true).map(Array.init)
            if !anchored { segments = [Array("**".utf8)] + segments }
            patterns.append(
                Pattern(
                    segments: segments, negated: negated, directoryOnly: directoryOnly, anchored: anchored,
                    line: index + 1, text: written))
        }
    }

    /// Whether `.rchignore` excludes the (canonical, root-relative) path.
    public func excludes(_ path: [UInt8], isDirectory: Bool) -> Bool {
        guard let i = lastMatch(path, isDirectory: isDirectory) else { return false }
        return !patterns[i].negated
    }

    /// The `.rchignore` rule that decides the path, if any: its line, the line as written, and whether it
    /// excludes (a `!` line that matched last re-includes).
    public func decidingRule(_ path: [UInt8], isDirectory: Bool) -> (line: Int, text: String, excludes: Bool)? {
        guard let i = lastMatch(path, isDirectory: isDirectory) else { return nil }
        return (patterns[i].line, patterns[i].text, !patterns[i].negated)
    }

    /// The index of the last pattern matching the path (the one that wins), or nil.
    func lastMatch(_ path: [UInt8], isDirectory: Bool) -> Int? {
        if patterns.isEmpty { return nil }
        let base = path[(path.lastIndex(of: UInt8(ascii: "/")).map { $0 + 1 } ?? 0)...]
        var parts: [ArraySlice<UInt8>]? = nil
        var last: Int? = nil
        for (i, p) in patterns.enumerated() where !(p.directoryOnly && !isDirectory) {
            let hit: Bool
            if !p.anchored && p.segments.count == 2 {
                hit = Glob.match(p.segments[1][...], base)  // `**/name`: only the last component matters
            } else {
                if parts == nil { parts = path.split(separator: UInt8(ascii: "/")) }
                hit = Self.match(p.segments[...], parts![...])
            }
            if hit { last = i }
        }
        return last
    }

    /// Whether the segments of a pattern match the parts of a path. Dynamic programming over (pattern
    /// segment, path part): `**` matches zero or more parts, any other segment exactly one (``Glob``). Time is
    /// O(segments × parts) — a pattern such as `**/**/**/…` cannot make it backtrack exponentially (found
    /// by the FuzzIgnore target: a hostile `.rchignore` must not hang the bundler).
    static func match(_ pat: ArraySlice<[UInt8]>, _ parts: ArraySlice<ArraySlice<UInt8>>) -> Bool {
        let names = Array(parts)
        let doubleStar = Array("**".utf8)
        // reach[j]: the segments so far match the first j parts exactly.
        var reach = [Bool](repeating: false, count: names.count + 1)
        reach[0] = true
        for segment in pat {
            var next = [Bool](repeating: false, count: names.count + 1)
            if segment == doubleStar {
                var seen = false
                for j in 0...names.count {
                    seen = seen || reach[j]
                    next[j] = seen
                }
            } else {
                for j in 0..<names.count where reach[j] && Glob.match(segment[...], names[j]) {
                    next[j + 1] = true
                }
            }
            reach = next
            if !reach.contains(true) { return false }
        }
        return reach[names.count]
    }

    /// The built-in deny-list, applied to one name. `parent` is the canonical parent path ("" at the root).
    public static func defaultExcluded(name: String, isDirectory: Bool, parent: String) -> Bool {
        defaultExclusion(name: name, isDirectory: isDirectory, parent: parent) != nil
    }

    /// Why the built-in deny-list leaves a name out (a short category for `bundle --list`), or nil.
    public static func defaultExclusion(name: String, isDirectory: Bool, parent: String) -> String? {
        switch name {
        case ".git", ".hg", ".svn", ".bzr":  // directories, and `.git` files of worktrees/submodules
            return "version control"
        case ".DS_Store", "__MACOSX", ".AppleDouble", "Icon\r", ".Spotlight-V100", ".Trashes", ".fseventsd":
            return "Finder debris"
        case "xcuserdata" where isDirectory:  // per-user Xcode state anywhere, including .swiftpm/**/xcuserdata
            return "per-user Xcode state"
        case "DerivedData" where isDirectory, ".build" where isDirectory:
            return "build output"
        case "artifacts" where parent == ".rch" || parent.hasSuffix("/.rch"):  // host-local RCH artifacts, any depth
            return "host-local RCH artifacts"
        default:
            break
        }
        if name.hasPrefix("._") { return "Finder debris" }  // AppleDouble
        if isDirectory && name.hasSuffix(".xcresult") { return "build output" }
        if !isDirectory
            && (name.hasSuffix(".xcuserstate") || name.hasSuffix(".xcscmblueprint") || name.hasSuffix(".xccheckout"))
        {
            return "per-user Xcode state"
        }
        return nil
    }
}

/// fnmatch-style matching of one path segment: `*`, `?`, `[...]` (with `!`/`^` negation and ranges), `\` escapes.
enum Glob {
    static func match(_ pattern: ArraySlice<UInt8>, _ name: ArraySlice<UInt8>) -> Bool {
        var p = pattern.startIndex
        var n = name.startIndex
        var starP: Int? = nil
        var starN = 0
        while n < name.endIndex {
            if p < pattern.endIndex {
                let c = pattern[p]
                if c == UInt8(ascii: "*") {
                    starP = p
                    starN = n
                    p += 1
                    continue
                }
                if c == UInt8(ascii: "?") {
                    p += 1
                    n += 1
                    continue
                }
                if c == UInt8(ascii: "["), let (ok, next) = matchClass(pattern, p, name[n]) {
                    if ok {
                        p = next
                        n += 1
                        continue
                    }
                } else {
                    var lit = c
                    var next = p + 1
                    if c == UInt8(ascii: "\\") && p + 1 < pattern.endIndex {
                        lit = pattern[p + 1]
                        next = p + 2
                    }
                    if lit == name[n] {
                        p = next
                        n += 1
                        continue
                    }
                }
            }
            guard let sp = starP else { return false }
            p = sp + 1
            starN += 1
            n = starN
        }
        while p < pattern.endIndex && pattern[p] == UInt8(ascii: "*") { p += 1 }
        return p == pattern.endIndex
    }

    /// Returns (matched, index after the class), or nil if `[` does not start a well-formed class.
    static func matchClass(_ pattern: ArraySlice<UInt8>, _ start: Int, _ c: UInt8) -> (Bool, Int)? {
        var i = start + 1
        var negate = false
        if i < pattern.endIndex && (pattern[i] == UInt8(ascii: "!") || pattern[i] == UInt8(ascii: "^")) {
            negate = true
            i += 1
        }
        var matched = false
        var first = true
        while i < pattern.endIndex {
            let ch = pattern[i]
            if ch == UInt8(ascii: "]") && !first { return (matched != negate, i + 1) }
            first = false
            if i + 2 < pattern.endIndex && pattern[i + 1] == UInt8(ascii: "-") && pattern[i + 2] != UInt8(ascii: "]") {
                if ch <= c && c <= pattern[i + 2] { matched = true }
                i += 3
            } else {
                if ch == c { matched = true }
                i += 1
            }
        }
        return nil
    }
}
