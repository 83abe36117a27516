import RCHCore

/// `source_manifest.json` (`rch-xcode/source_manifest@1`): what a bundle contains, entry by entry.
///
/// `entries` are in bundle order (ascending bytes of `path`). For a symlink, `size` and `sha256`
/// describe the target string's UTF-8 bytes and `symlink_target` holds it; for a file,
/// `symlink_target` is null.
///
/// `tree_sha256` is a second, encoding-independent identity of the same content: SHA-256 over one
/// line per entry, in bundle order, `"<T> <sha256> <size> <path>\n"` with `T` = `F` (file), `X`
/// (executable file) or `L` (symlink).
public struct SourceManifest: Sendable, Equatable {
    public static let schemaID = "rch-xcode/source_manifest@1"
    public static let bundleFormat = "v1"

    public struct Entry: Sendable, Equatable {
        public enum EntryType: String, Sendable { case file, symlink }
        public var path: String
        public var type: EntryType
        public var size: UInt64
        public var sha256: SHA256Digest
        public var executable: Bool
        public var symlinkTarget: String?

        public init(
            path: String, type: EntryType, size: UInt64, sha256: SHA256Digest, executable: Bool, symlinkTarget: String?
        ) {
            self.path = path
            self.type = type
            self.size = size
            self.sha256 = sha256
            self.executable = executable
            self.symlinkTarget = symlinkTarget
        }

        /// The entry as it appears in `entries[]` of the manifest (and in `upload_tree` payloads).
        public var json: JSONValue {
            .obj([
                "path": .string(path), "type": .string(type.rawValue), "size": .int(Int64(size)),
                "sha256": .string(sha256.hex),
                "executable": .bool(executable), "symlink_target": symlinkTarget.map { .string($0) } ?? .null,
            ])
        }

        /// Reads one `entries[]` item, checking it on its own (``init(checkingPath:type:size:sha256:executable:symlinkTarget:)``).
        public init(json item: JSONValue) throws {
            guard let e = item.objectValue, let path = e["path"]?.stringValue,
                let type = e["type"]?.stringValue.flatMap(EntryType.init(rawValue:)),
                let size = e["size"]?.intValue, size >= 0,
                let sha = e["sha256"]?.stringValue.flatMap({ SHA256Digest(hex: $0) }),
                let x = e["executable"]?.boolValue
            else { throw BundleError.invalidArchive("source manifest: malformed entry") }
            try self.init(
                checkingPath: path, type: type, size: UInt64(size), sha256: sha, executable: x,
                symlinkTarget: type == .symlink ? e["symlink_target"]?.stringValue : nil)
        }

        /// An entry checked on its own: canonical path, and for a symlink a canonical target (required, not
        /// executable) matching `size` and `sha256`.
        public init(
            checkingPath path: String, type: EntryType, size: UInt64, sha256 sha: SHA256Digest, executable x: Bool,
            symlinkTarget: String?
        ) throws {
            func fail(_ m: String) -> BundleError { .invalidArchive("source manifest: \(m)") }
            let canonical = try PathRules.canonicalPath(Array(path.utf8))
            guard canonical.utf8.elementsEqual(path.utf8) else { throw fail("'\(path)' is not canonical") }
            var target: String? = nil
            if type == .symlink {
                guard let t = symlinkTarget, !x else { throw fail("symlink '\(path)' has no target") }
                guard try PathRules.canonicalSymlinkTarget(Array(t.utf8), linkPath: path).utf8.elementsEqual(t.utf8),
                    sha == .of(t.utf8), size == UInt64(t.utf8.count)
                else { throw fail("symlink '\(path)' target is not canonical or does not match its digest") }
                target = t
            }
            self.init(path: path, type: type, size: size, sha256: sha, executable: x, symlinkTarget: target)
        }

        /// Appends `"<T> <sha256> <size> <path>\n"` to `out`.
        func appendTreeLine(to out: inout [UInt8]) {
            let hex: [UInt8] = Array("0123456789abcdef".utf8)
            out.append(type == .symlink ? 76 : (executable ? 88 : 70))
            out.append(32)
            for b in sha256.bytes {
                out.append(hex[Int(b >> 4)])
                out.append(hex[Int(b & 15)])
            }
            out.append(32)
            out.append(contentsOf: String(size).utf8)
            out.append(32)
            out.append(contentsOf: path.utf8)
            out.append(10)
        }
    }

    public var createdAt: String
    public var runID: String?
    public var sourceSHA256: SHA256Digest
    public var treeSHA256: SHA256Digest
    public var tarBytes: UInt64
    public var entries: [Entry]
    public var tarEncoder: String
    public var zstdVersion: String

    public init(
        createdAt: String, runID: String?, sourceSHA256: SHA256Digest, treeSHA256: SHA256Digest, tarBytes: UInt64,
        entries: [Entry], tarEncoder: String, zstdVersion: String
    ) {
        self.createdAt = createdAt
        self.runID = runID
        self.sourceSHA256 = sourceSHA256
        self.treeSHA256 = treeSHA256
        self.tarBytes = tarBytes
        self.entries = entries
        self.tarEncoder = tarEncoder
        self.zstdVersion = zstdVersion
    }

    public var fileCount: Int { entries.lazy.filter { $0.type == .file }.count }
    public var symlinkCount: Int { entries.count - fileCount }
    public var totalBytes: UInt64 { entries.lazy.filter { $0.type == .file }.reduce(0) { $0 + $1.size } }

    /// The tree digest of a list of entries (in bundle order).
    public static func treeDigest(_ entries: [Entry]) -> SHA256Digest {
        var h = StreamingSHA256()
        var line: [UInt8] = []
        line.reserveCapacity(1 << 16)
        for e in entries {
            e.appendTreeLine(to: &line)
            if line.count > 60_000 {
                h.update(line)
                line.removeAll(keepingCapacity: true)
            }
        }
        h.update(line)
        return h.finalize()
    }

    /// The canonical (RFC 8785) bytes of ``json``, written directly without building the value tree
    /// (a large tree's manifest would otherwise cost several times its size in memory). Member names
    /// are ASCII, so their byte order is their UTF-16 order.
    public func canonicalBytes() -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(256 + entries.count * 180)
        func key(_ k: String) {
            JSONStream.string(k, into: &out)
            out.append(58)
        }
        func str(_ k: String, _ v: String) {
            key(k)
            JSONStream.string(v, into: &out)
            out.append(44)
        }
        func int(_ k: String, _ v: UInt64) {
            key(k)
            out.append(contentsOf: String(v).utf8)
            out.append(44)
        }
        out.append(123)
        str("bundle_format", Self.bundleFormat)
        str("created_at", createdAt)
        key("entries")
        out.append(91)
        for (i, e) in entries.enumerated() {
            if i > 0 { out.append(44) }
            out.append(123)
            key("executable")
            out.append(contentsOf: (e.executable ? "true," : "false,").utf8)
            str("path", e.path)
            str("sha256", e.sha256.hex)
            int("size", e.size)
            key("symlink_target")
            if let t = e.symlinkTarget { JSONStream.string(t, into: &out) } else { out.append(contentsOf: "null".utf8) }
            out.append(44)
            key("type")
            JSONStream.string(e.type.rawValue, into: &out)
            out.append(125)
        }
        out.append(93)
        out.append(44)
        int("file_count", UInt64(fileCount))
        if let runID { str("run_id", runID) }
        str("schema_id", Self.schemaID)
        int("schema_version", 1)
        str("source_sha256", sourceSHA256.hex)
        int("symlink_count", UInt64(symlinkCount))
        int("tar_bytes", tarBytes)
        key("tools")
        out.append(123)
        str("tar", tarEncoder)
        key("zstd")
        JSONStream.string(zstdVersion, into: &out)
        out.append(125)
        out.append(44)
        int("total_bytes", totalBytes)
        str("tree_sha256", treeSHA256.hex)
        out.removeLast()  // trailing comma
        out.append(125)
        return out
    }

    /// Reads a manifest written by ``canonicalBytes()`` (or any equivalent JSON), checking every field.
    public init(json v: JSONValue) throws {
        func fail(_ m: String) -> BundleError { .invalidArchive("source manifest: \(m)") }
        guard let o = v.objectValue, o["schema_id"]?.stringValue == Self.schemaID else {
            throw fail("not a \(Self.schemaID) document")
        }
        guard let src = o["source_sha256"]?.stringValue.flatMap({ SHA256Digest(hex: $0) }),
            let tree = o["tree_sha256"]?.stringValue.flatMap({ SHA256Digest(hex: $0) }),
            let tar = o["tar_bytes"]?.intValue, tar >= 1024, let items = o["entries"]?.arrayValue
        else { throw fail("missing or malformed digests, tar_bytes or entries") }
        let tools = o["tools"]?.objectValue
        try self.init(
            validating: try items.map { try Entry(json: $0) }, sourceSHA256: src, treeSHA256: tree,
            tarBytes: UInt64(tar),
            createdAt: o["created_at"]?.stringValue ?? "", runID: o["run_id"]?.stringValue,
            tarEncoder: tools?["tar"]?.stringValue ?? "", zstdVersion: tools?["zstd"]?.stringValue ?? "")
    }

    /// A manifest from entries that are each valid (``Entry/init(json:)``), checking what concerns the
    /// whole list: bundle order, no case/Unicode-fold collisions, and `tree_sha256`.
    public init(
        validating entries: [Entry], sourceSHA256: SHA256Digest, treeSHA256: SHA256Digest, tarBytes: UInt64,
        createdAt: String = "", runID: String? = nil, tarEncoder: String = "", zstdVersion: String = ""
    ) throws {
        func fail(_ m: String) -> BundleError { .invalidArchive("source manifest: \(m)") }
        let paths = entries.map { Array($0.path.utf8) }
        for i in paths.indices.dropFirst() where !paths[i - 1].bytesPrecede(paths[i]) {
            throw fail("entries are not in bundle order at '\(entries[i].path)'")
        }
        try PathRules.checkCollisions(bytes: paths)
        guard Self.treeDigest(entries) == treeSHA256 else { throw fail("tree_sha256 does not match the entries") }
        self.init(
            createdAt: createdAt, runID: runID, sourceSHA256: sourceSHA256, treeSHA256: treeSHA256, tarBytes: tarBytes,
            entries: entries, tarEncoder: tarEncoder, zstdVersion: zstdVersion)
    }

    public var json: JSONValue {
        var o = JSONObject([
            ("schema_version", .int(1)),
            ("schema_id", .string(Self.schemaID)),
            ("created_at", .string(createdAt)),
            ("bundle_format", .string(Self.bundleFormat)),
            ("source_sha256", .string(sourceSHA256.hex)),
            ("tree_sha256", .string(treeSHA256.hex)),
            ("file_count", .int(Int64(fileCount))),
            ("symlink_count", .int(Int64(symlinkCount))),
            ("total_bytes", .int(Int64(totalBytes))),
            ("tar_bytes", .int(Int64(tarBytes))),
            ("tools", .obj(["tar": .string(tarEncoder), "zstd": .string(zstdVersion)])),
            ("entries", .array(entries.map(\.json))),
        ])
        if let runID { o["run_id"] = .string(runID) }
        return .object(o)
    }
}
