import Foundation

/// The path and symlink rules of the canonical bundle format (v1).
///
/// Invariants (checked after NFC conversion; nothing is rewritten except the NFC conversion itself):
/// - a path is relative, `/`-separated, valid UTF-8, in Unicode NFC;
/// - no component is empty, `.` or `..`; none contains NUL, a C0 control character, DEL or `\`;
/// - a component is at most 255 bytes, a path at most 1023 bytes;
/// - paths are unique under the collision key `upper(lower(NFKD(path)))`, and no entry's key is a
///   directory prefix of another entry's key (APFS is case- and normalisation-insensitive);
/// - a symlink target is non-empty, relative, NFC, of the form `../`* followed by normal components
///   (no `.`, no empty component, no trailing `/`, no `..` after a normal component), and
///   `dirname(path)/target` stays inside the root. Because every link is checked this way and no entry
///   lives below a symlink, resolving any chain of links physically never leaves the root.
public enum PathRules {
    public static let maxComponentBytes = 255
    public static let maxPathBytes = 1023

    /// Validates one raw path component and returns it in NFC.
    public static func canonicalComponent(_ raw: some Collection<UInt8>, parent: String) throws(BundleError) -> String {
        var shown: String { parent.isEmpty ? display(raw) : parent + "/" + display(raw) }
        if raw.isEmpty { throw .invalidPath(path: shown, reason: "empty path component") }
        var ascii = true
        for b in raw {
            if b < 0x20 || b == 0x7F {
                throw .invalidPath(
                    path: shown, reason: "the name contains a control character (0x\(String(b, radix: 16)))")
            }
            if b == UInt8(ascii: "\\") {
                throw .invalidPath(path: shown, reason: "the name contains '\\' (a separator on some systems)")
            }
            if b == UInt8(ascii: "/") { throw .invalidPath(path: shown, reason: "the name contains '/'") }
            if b >= 0x80 { ascii = false }
        }
        let name: String
        if ascii {
            name = String(decoding: raw, as: UTF8.self)
        } else {
            guard let s = String(validating: raw, as: UTF8.self) else {
                throw .invalidPath(path: shown, reason: "the name is not valid UTF-8")
            }
            name = s.precomposedStringWithCanonicalMapping
        }
        if name == "." || name == ".." { throw .invalidPath(path: shown, reason: "'.' and '..' cannot be names") }
        if name.utf8.count > maxComponentBytes {
            throw .invalidPath(
                path: shown,
                reason: "the name is \(name.utf8.count) bytes, over the \(maxComponentBytes)-byte limit of macOS")
        }
        return name
    }

    /// Validates a full relative path (e.g. from `git ls-files` or an archive) and returns it in NFC.
    public static func canonicalPath(_ raw: [UInt8]) throws(BundleError) -> String {
        if raw.isEmpty { throw .invalidPath(path: "", reason: "empty path") }
        if raw.first == UInt8(ascii: "/") { throw .invalidPath(path: display(raw), reason: "absolute path") }
        var parts: [String] = []
        var parent = ""
        for comp in raw.split(separator: UInt8(ascii: "/"), omittingEmptySubsequences: false) {
            let c = try canonicalComponent(comp, parent: parent)
            parts.append(c)
            parent = parent.isEmpty ? c : parent + "/" + c
        }
        try checkLength(parent)
        return parent
    }

    public static func checkLength(_ path: String) throws(BundleError) {
        if path.utf8.count > maxPathBytes {
            throw .invalidPath(
                path: path, reason: "the path is \(path.utf8.count) bytes, over the \(maxPathBytes)-byte limit")
        }
    }

    /// The collision key: `upper(lower(NFKD(path)))`, as bytes. ASCII paths take a fast path.
    public static func collisionKey(_ path: String) -> [UInt8] { collisionKey(Array(path.utf8)[...]) }

    static func collisionKey(_ path: ArraySlice<UInt8>) -> [UInt8] {
        if path.allSatisfy({ $0 < 0x80 }) {
            return path.map { ($0 >= 97 && $0 <= 122) ? $0 - 32 : $0 }
        }
        return Array(
            String(decoding: path, as: UTF8.self).decomposedStringWithCompatibilityMapping.lowercased().uppercased()
                .utf8)
    }

    /// Rejects paths that collide under ``PathRules/collisionKey(_:)``, file-vs-directory conflicts
    /// (including entries below a symlink) and directories that differ only by case/normalisation.
    public static func checkCollisions(_ paths: [String]) throws(BundleError) {
        try checkCollisions(bytes: paths.map { Array($0.utf8) })
    }

    /// ``checkCollisions(_:)`` over UTF-8 paths sorted in bundle order.
    public static func checkCollisions(bytes paths: [[UInt8]]) throws(BundleError) {
        func text(_ b: ArraySlice<UInt8>) -> String { String(decoding: b, as: UTF8.self) }
        var keys: [ByteKey: Int] = [:]
        keys.reserveCapacity(paths.count)
        for (i, p) in paths.enumerated() {
            let k = ByteKey(collisionKey(p[...]))
            if let other = keys[k] { throw BundleError.collision(path: text(paths[other][...]), other: text(p[...])) }
            keys[k] = i
        }
        var dirs: [ByteKey: ArraySlice<UInt8>] = [:]
        var previousParent: ArraySlice<UInt8> = []
        for p in paths {
            guard let slash = p.lastIndex(of: 47) else { continue }
            let parent = p[..<slash]
            if parent.elementsEqual(previousParent) { continue }  // sorted input: siblings share their ancestors
            previousParent = parent
            var end = parent.endIndex
            while true {
                let dir = p[..<end]
                let k = ByteKey(collisionKey(dir))
                if let existing = dirs[k] {
                    if !existing.elementsEqual(dir) {
                        throw BundleError.collision(path: text(existing) + "/", other: text(dir) + "/")
                    }
                    break  // this directory and its ancestors were checked already
                }
                if let file = keys[k] {
                    throw BundleError.pathConflict(path: text(paths[file][...]), below: text(p[...]))
                }
                dirs[k] = dir
                guard let up = p[..<end].lastIndex(of: 47) else { break }
                end = up
            }
        }
    }

    /// Validates a symlink target for the link at `path` and returns it in NFC.
    public static func canonicalSymlinkTarget(_ raw: [UInt8], linkPath path: String) throws(BundleError) -> String {
        let shown = display(raw)
        func reject(_ why: String) -> BundleError { .unsafeSymlink(path: path, target: shown, reason: why) }
        if raw.isEmpty { throw reject("the target is empty") }
        if raw.first == UInt8(ascii: "/") { throw reject("the target is absolute") }
        if raw.contains(where: { $0 < 0x20 || $0 == 0x7F }) { throw reject("the target contains a control character") }
        if raw.contains(UInt8(ascii: "\\")) { throw reject("the target contains '\\'") }
        guard let s = String(validating: raw, as: UTF8.self) else { throw reject("the target is not valid UTF-8") }
        let target = s.precomposedStringWithCanonicalMapping
        if target.utf8.count > maxPathBytes { throw reject("the target is longer than \(maxPathBytes) bytes") }
        var depth = path.split(separator: "/").count - 1  // directories above the link
        var seenNormal = false
        for comp in target.split(separator: "/", omittingEmptySubsequences: false) {
            switch comp {
            case "": throw reject("the target has an empty component ('//' or a trailing '/')")
            case ".": throw reject("the target has a '.' component; write it without './'")
            case "..":
                if seenNormal { throw reject("the target has '..' after a name; write the shortest relative form") }
                depth -= 1
                if depth < 0 { throw reject("the target escapes the repository root") }
            default:
                seenNormal = true
            }
        }
        return target
    }

    /// A printable rendering of raw bytes for messages (invalid UTF-8 and controls escaped).
    public static func display(_ raw: some Collection<UInt8>) -> String {
        var out = ""
        if let s = String(validating: raw, as: UTF8.self) {
            for u in s.unicodeScalars {
                if u.value < 0x20 || u.value == 0x7F {
                    out += "\\x" + String(format: "%02x", u.value)
                } else {
                    out.unicodeScalars.append(u)
                }
            }
            return out
        }
        for b in raw {
            if b >= 0x20 && b < 0x7F {
                out.unicodeScalars.append(Unicode.Scalar(b))
            } else {
                out += "\\x" + String(format: "%02x", b)
            }
        }
        return out
    }
}

/// A byte string with fast hashing (Swift hashes `[UInt8]` element by element).
public struct ByteKey: Hashable, Sendable {
    public let bytes: [UInt8]
    public init(_ b: [UInt8]) { bytes = b }
    public func hash(into h: inout Hasher) { bytes.withUnsafeBytes { h.combine(bytes: $0) } }
    public static func == (a: ByteKey, b: ByteKey) -> Bool { a.bytes == b.bytes }
}
