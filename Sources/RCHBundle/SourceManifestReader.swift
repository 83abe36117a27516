import RCHCore

/// The strict, fast reader of a source manifest *file* as this project writes one — a store's source entry
/// (`sources/<ab>/<sha>.json`) or a host's bundle manifest (`bundles/<sha>.json`): exactly
/// ``SourceManifest/canonicalBytes()`` and one newline. It is read on every delta push (the base, on the
/// host and on the worker) and every source lookup, thousands of entries at a time; scanning the writer's
/// own form (``CanonicalScanner``) costs a fraction of building and walking a ``JSONValue`` per entry.
/// Anything our writer would not produce — whitespace, another member order, a non-canonical escape or
/// number, counts that do not match the entries, a file entry with a symlink target — is refused. The
/// entries then pass the same checks as ``SourceManifest/init(json:)``: canonical paths and targets, bundle
/// order, no case/Unicode-fold collisions, `tree_sha256`.
extension SourceManifest {
    struct NotAsWritten: Error, CustomStringConvertible {
        var offset: Int
        var description: String { "not a source manifest as this project writes one (at byte \(offset))" }
    }

    static let executableTrue = Array(#"{"executable":true,"path":"#.utf8)
    static let executableFalse = Array(#"{"executable":false,"path":"#.utf8)
    static let noTarget = Array(#","symlink_target":null,"type":"file"}"#.utf8)
    static let runIDMember = Array(#","run_id":"#.utf8)

    /// Reads a manifest file (see the extension's rules).
    public init(canonicalFile bytes: [UInt8]) throws {
        func fail(_ m: String) -> BundleError { .invalidArchive("source manifest: \(m)") }
        guard bytes.last == 10 else { throw fail("\(NotAsWritten(offset: bytes.count)) (no final newline)") }
        var s = CanonicalScanner(bytes.dropLast(), malformed: { NotAsWritten(offset: $0) })
        let entries: [Entry]
        let created: String
        let counts: (files: UInt64, symlinks: UInt64, total: UInt64)
        let runID: String?
        let sha: SHA256Digest
        let tree: SHA256Digest
        let tar: UInt64
        let tools: (tar: String, zstd: String)
        do {
            try s.expect(#"{"bundle_format":"#)
            guard try s.string() == Self.bundleFormat else { throw NotAsWritten(offset: s.i) }
            try s.expect(#","created_at":"#)
            created = try s.string()
            try s.expect(#","entries":["#)
            entries = try Self.scanEntries(&s)
            try s.expect(#","file_count":"#)
            let files = try s.integer()
            runID = s.skip(Self.runIDMember) ? try s.string() : nil
            try s.expect(#","schema_id":"#)
            guard try s.string() == Self.schemaID else { throw NotAsWritten(offset: s.i) }
            try s.expect(#","schema_version":1,"source_sha256":""#)
            sha = try s.digest()
            try s.expect(#"","symlink_count":"#)
            let symlinks = try s.integer()
            try s.expect(#","tar_bytes":"#)
            tar = try s.integer()
            try s.expect(#","tools":{"tar":"#)
            let tarTool = try s.string()
            try s.expect(#","zstd":"#)
            tools = (tarTool, try s.string())
            try s.expect(#"},"total_bytes":"#)
            counts = (files, symlinks, try s.integer())
            try s.expect(#","tree_sha256":""#)
            tree = try s.digest()
            try s.expect(#""}"#)
            guard s.i == s.b.endIndex else { throw NotAsWritten(offset: s.i) }
        } catch let e as NotAsWritten {
            throw fail(e.description)
        }
        guard tar >= 1024 else { throw fail("tar_bytes \(tar) is below one tar header and its end") }
        try self.init(
            validating: entries, sourceSHA256: sha, treeSHA256: tree, tarBytes: tar, createdAt: created, runID: runID,
            tarEncoder: tools.tar, zstdVersion: tools.zstd)
        guard UInt64(fileCount) == counts.files, UInt64(symlinkCount) == counts.symlinks, totalBytes == counts.total
        else { throw fail("file_count, symlink_count or total_bytes does not match the entries") }
    }

    /// The entries after `"entries":[`, through the closing `]`.
    static func scanEntries(_ s: inout CanonicalScanner) throws -> [Entry] {
        var entries: [Entry] = []
        if s.peek(UInt8(ascii: "]")) {
            s.i += 1
            return entries
        }
        repeat {
            let executable: Bool
            if s.skip(Self.executableFalse) {
                executable = false
            } else if s.skip(Self.executableTrue) {
                executable = true
            } else {
                throw NotAsWritten(offset: s.i)
            }
            let path = try s.string()
            try s.expect(#","sha256":""#)
            let sha = try s.digest()
            try s.expect(#"","size":"#)
            let size = try s.integer()
            let type: Entry.EntryType
            var target: String? = nil
            if s.skip(Self.noTarget) {
                type = .file
            } else {
                try s.expect(#","symlink_target":"#)
                target = try s.string()
                try s.expect(#","type":"symlink"}"#)
                type = .symlink
            }
            entries.append(
                try Entry(
                    checkingPath: path, type: type, size: size, sha256: sha, executable: executable,
                    symlinkTarget: target))
            if s.peek(UInt8(ascii: "]")) {
                s.i += 1
                return entries
            }
            try s.expect(",")
        } while true
    }
}
