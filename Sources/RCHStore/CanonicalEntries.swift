import RCHCore

/// The fast, strict reader of a result entry file (`results/…/<key>.json`), which is read on every hit.
///
/// Our writer writes an entry as its JCS bytes and a newline. The `entries` array — thousands of members,
/// most of the file — is read by a scanner that accepts exactly what ``ArtifactManifest/entriesCanonicalBytes(_:)``
/// writes (member order, no whitespace, JCS string escapes, integer sizes without leading zeros), so its raw
/// bytes *are* its canonical form: `artifact_root_sha256` is checked by hashing them, with no second
/// serialisation. The other members (a few hundred bytes) go through ``JSONParser`` and
/// ``ResultEntry/init(json:entries:entriesRoot:)`` as before. Anything else — whitespace, another member
/// order, a non-canonical escape — is refused: an entry our writer would not produce is corrupt.
enum CanonicalEntries {
    static let nullDigest = Array(#","sha256":null"#.utf8)
    static let directory = Array(#"directory"}"#.utf8)

    struct Malformed: Error, CustomStringConvertible {
        var offset: Int
        var description: String { "not a result entry as written by this store (at byte \(offset))" }
    }

    /// Parses `bytes` (an entry file) into a ``ResultEntry``.
    static func readEntry(_ bytes: [UInt8]) throws -> ResultEntry {
        guard bytes.last == 10 else { throw StoreError.corrupt("result entry: \(Malformed(offset: bytes.count))") }
        let body = bytes.dropLast()
        let range: Range<Int>
        let entries: [ArtifactManifest.Entry]
        do {
            range = try locateEntries(body)
            entries = try scan(body[range])
        } catch let m as Malformed {
            throw StoreError.corrupt("result entry: \(m)")
        }
        let root = SHA256Digest.of(body[range])
        var rest = Array(body[..<range.lowerBound])
        rest.append(contentsOf: [UInt8(ascii: "["), UInt8(ascii: "]")])
        rest.append(contentsOf: body[range.upperBound...])
        let v: JSONValue
        do { v = try JSONParser().parse(rest) } catch {
            throw StoreError.corrupt("result entry: \(error)")
        }
        return try ResultEntry(json: v, entries: entries, entriesRoot: root)
    }

    /// The byte range of the top-level `entries` member's value (an array), found by walking the members
    /// of the top-level object without building them.
    static func locateEntries(_ b: ArraySlice<UInt8>) throws -> Range<Int> {
        var i = b.startIndex
        func expect(_ c: UInt8) throws {
            guard i < b.endIndex, b[i] == c else { throw Malformed(offset: i) }
            i += 1
        }
        func skipString() throws {
            try expect(UInt8(ascii: "\""))
            while i < b.endIndex {
                switch b[i] {
                case UInt8(ascii: "\""):
                    i += 1
                    return
                case UInt8(ascii: "\\"): i += 2
                default: i += 1
                }
            }
            throw Malformed(offset: i)
        }
        // Leaves `i` just after a string or container, or at the `,`/`}` that ends a scalar.
        func skipValue() throws {
            var depth = 0
            while i < b.endIndex {
                switch b[i] {
                case UInt8(ascii: "\""):
                    try skipString()
                    if depth == 0 { return }
                case UInt8(ascii: "{"), UInt8(ascii: "["):
                    depth += 1
                    i += 1
                case UInt8(ascii: "}"), UInt8(ascii: "]"):
                    if depth == 0 { return }
                    depth -= 1
                    i += 1
                    if depth == 0 { return }
                case UInt8(ascii: ","):
                    if depth == 0 { return }
                    i += 1
                default: i += 1
                }
            }
            throw Malformed(offset: i)
        }
        try expect(UInt8(ascii: "{"))
        let key = Array(#""entries":"#.utf8)
        while i < b.endIndex {
            let isEntries = b[i...].starts(with: key)
            try skipString()
            try expect(UInt8(ascii: ":"))
            let start = i
            try skipValue()
            if isEntries {
                guard b[start] == UInt8(ascii: "[") else { throw Malformed(offset: start) }
                return start..<i
            }
            guard i < b.endIndex, b[i] == UInt8(ascii: ",") else { break }
            i += 1
        }
        throw Malformed(offset: i)
    }

    /// Parses the canonical `entries` array (see the type's rules).
    static func scan(_ b: ArraySlice<UInt8>) throws -> [ArtifactManifest.Entry] {
        var s = CanonicalScanner(b, malformed: { Malformed(offset: $0) })
        var out: [ArtifactManifest.Entry] = []
        try s.expect("[")
        if s.peek(UInt8(ascii: "]")) {
            s.i += 1
        } else {
            repeat {
                try s.expect(#"{"path":"#)
                let path = try s.string()
                let sha: SHA256Digest?
                if s.b[s.i...].starts(with: Self.nullDigest) {
                    s.i += Self.nullDigest.count
                    sha = nil
                } else {
                    try s.expect(#","sha256":""#)
                    sha = try s.digest()
                    try s.expect("\"")
                }
                try s.expect(#","size":"#)
                let size = try s.integer()
                try s.expect(#","type":""#)
                let isDirectory: Bool
                if s.b[s.i...].starts(with: Self.directory) {
                    s.i += Self.directory.count
                    isDirectory = true
                } else {
                    try s.expect(#"file"}"#)
                    isDirectory = false
                }
                out.append(.init(path: path, isDirectory: isDirectory, size: size, sha256: sha))
                if s.peek(UInt8(ascii: "]")) {
                    s.i += 1
                    break
                }
                try s.expect(",")
            } while true
        }
        guard s.i == b.endIndex else { throw Malformed(offset: s.i) }
        return out
    }
}
