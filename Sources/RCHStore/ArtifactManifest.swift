import RCHCore
import SystemPackage

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// `manifest.json` of a job's artifact directory (`rch-xcode/manifest@1`) and its verification.
///
/// Invariants: entries cover every file and directory of the artifact directory except `manifest.json`,
/// `attestation.json` and `job_index.json`; sorted by the bytes of `path`; `type` is `file` or
/// `directory`; directories have `size` 0 and `sha256` null; `artifact_root_sha256` =
/// SHA-256(JCS(entries)) of exactly the array written. Symlinks and special files are not artifacts.
public enum ArtifactManifest {
    public static let schemaID = "rch-xcode/manifest@1"
    public static let excluded: Set<String> = ["manifest.json", "attestation.json", "job_index.json"]
    /// Written by the host next to fetched artifacts (never part of a worker's manifest).
    public static let hostFiles: Set<String> = ["attestation_verification.json"]

    public struct Entry: Sendable, Equatable {
        public var path: String
        public var isDirectory: Bool
        public var size: UInt64
        public var sha256: SHA256Digest?

        public init(path: String, isDirectory: Bool, size: UInt64, sha256: SHA256Digest?) {
            self.path = path
            self.isDirectory = isDirectory
            self.size = size
            self.sha256 = sha256
        }

        public var json: JSONValue {
            .obj([
                "path": .string(path), "type": .string(isDirectory ? "directory" : "file"), "size": .int(Int64(size)),
                "sha256": sha256.map { .string($0.hex) } ?? .null,
            ])
        }
    }

    /// Lists a directory: (relative path, isDirectory, size), in path byte order, excluding the three
    /// commit files at the top level. Symlinks, FIFOs, devices and sockets are refused.
    public static func walk(_ root: String) throws -> [(path: String, isDirectory: Bool, size: UInt64)] {
        var out: [(String, Bool, UInt64)] = []
        func visit(_ rel: String) throws {
            let dir = rel.isEmpty ? root : root + "/" + rel
            guard let names = try? Directory.list(dir), access(dir, R_OK) == 0 else {
                throw StoreError.invalid("cannot read '\(dir)': \(String(cString: strerror(errno)))")
            }
            for n in names {
                let p = rel.isEmpty ? n : rel + "/" + n
                if rel.isEmpty && excluded.contains(n) { continue }
                var st = stat()
                guard lstat(root + "/" + p, &st) == 0 else { throw StoreError.invalid("cannot stat '\(p)'") }
                switch st.st_mode & S_IFMT {
                case S_IFDIR:
                    out.append((p, true, 0))
                    try visit(p)
                case S_IFREG: out.append((p, false, UInt64(st.st_size)))
                default: throw StoreError.notCacheable("'\(p)' is not a regular file or directory")
                }
            }
        }
        try visit("")
        return out.sorted { Array($0.0.utf8).bytesPrecede(Array($1.0.utf8)) }
    }

    /// Walks and hashes an artifact directory.
    public static func scan(_ root: String) throws -> [Entry] {
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 1 << 20, alignment: 16)
        defer { buffer.deallocate() }
        return try walk(root).map { item in
            Entry(
                path: item.path, isDirectory: item.isDirectory, size: item.size,
                sha256: item.isDirectory ? nil : try hashFile(root + "/" + item.path, buffer: buffer))
        }
    }

    public static func entriesJSON(_ entries: [Entry]) -> JSONValue { .array(entries.map(\.json)) }

    /// JCS(entries), written directly: the same bytes as `entriesJSON(entries).canonicalBytes` (members in
    /// key order `path`, `sha256`, `size`, `type`), without building a value per entry (tested equal).
    public static func entriesCanonicalBytes(_ entries: [Entry]) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(entries.reduce(2) { $0 + $1.path.utf8.count + 140 })
        out.append(UInt8(ascii: "["))
        for (i, e) in entries.enumerated() {
            if i > 0 { out.append(UInt8(ascii: ",")) }
            out.append(contentsOf: JCSPieces.path)
            JCS.writeString(e.path, into: &out)
            if let d = e.sha256 {
                out.append(contentsOf: JCSPieces.sha256)
                d.appendHex(to: &out)
                out.append(UInt8(ascii: "\""))
            } else {
                out.append(contentsOf: JCSPieces.sha256Null)
            }
            out.append(contentsOf: JCSPieces.size)
            out.append(contentsOf: String(e.size).utf8)
            out.append(contentsOf: e.isDirectory ? JCSPieces.directory : JCSPieces.file)
        }
        out.append(UInt8(ascii: "]"))
        return out
    }

    /// The fixed bytes of an entry's JCS text.
    private enum JCSPieces {
        static let path = Array(#"{"path":"#.utf8)
        static let sha256 = Array(#","sha256":""#.utf8)
        static let sha256Null = Array(#","sha256":null"#.utf8)
        static let size = Array(#","size":"#.utf8)
        static let directory = Array(#","type":"directory"}"#.utf8)
        static let file = Array(#","type":"file"}"#.utf8)
    }

    public static func rootDigest(_ entries: [Entry]) -> SHA256Digest { .of(entriesCanonicalBytes(entries)) }

    public static func document(
        _ entries: [Entry], runID: String, jobID: String, jobKey: SHA256Digest, createdAt: String = Timestamp.now()
    ) -> JSONValue {
        .obj([
            "schema_version": .int(1), "schema_id": .string(schemaID), "created_at": .string(createdAt),
            "run_id": .string(runID), "job_id": .string(jobID), "job_key": .string(jobKey.hex),
            "entries": entriesJSON(entries), "artifact_root_sha256": .string(rootDigest(entries).hex),
        ])
    }

    /// `document(…).canonicalBytes` and `artifact_root_sha256`, the entries serialised once (tested equal).
    public static func documentBytes(
        _ entries: [Entry], runID: String, jobID: String, jobKey: SHA256Digest, createdAt: String
    ) -> (bytes: [UInt8], root: SHA256Digest) {
        let list = entriesCanonicalBytes(entries)
        let root = SHA256Digest.of(list)
        var out: [UInt8] = []
        out.reserveCapacity(list.count + 512)
        out.append(contentsOf: #"{"artifact_root_sha256":""#.utf8)
        root.appendHex(to: &out)
        out.append(contentsOf: #"","created_at":"#.utf8)
        JCS.writeString(createdAt, into: &out)
        out.append(contentsOf: #","entries":"#.utf8)
        out.append(contentsOf: list)
        out.append(contentsOf: #","job_id":"#.utf8)
        JCS.writeString(jobID, into: &out)
        out.append(contentsOf: #","job_key":""#.utf8)
        jobKey.appendHex(to: &out)
        out.append(contentsOf: #"","run_id":"#.utf8)
        JCS.writeString(runID, into: &out)
        out.append(contentsOf: #","schema_id":"#.utf8)
        JCS.writeString(schemaID, into: &out)
        out.append(contentsOf: #","schema_version":1}"#.utf8)
        return (out, root)
    }

    /// One problem found by ``verify(_:)``.
    public struct IntegrityError: Sendable, Equatable, CustomStringConvertible {
        public var path: String
        public var reason: String
        public init(path: String, reason: String) {
            self.path = path
            self.reason = reason
        }
        public var description: String { "\(path): \(reason)" }
        public var json: JSONValue { .obj(["path": .string(path), "reason": .string(reason)]) }
    }

    /// The host's check of a fetched artifact directory: `artifact_root_sha256` recomputed from the
    /// manifest's entries, every entry's type, size and digest checked on disk, and no file or directory
    /// that the manifest does not list (other than the three commit files and the host's
    /// `attestation_verification.json`). Returns every problem found.
    public static func verify(_ root: String) -> [IntegrityError] {
        guard let bytes = try? DurableFile.read(root + "/manifest.json") else {
            return [.init(path: "manifest.json", reason: "missing or unreadable")]
        }
        guard let doc = try? JSONParser().parse(bytes), doc["schema_id"]?.stringValue == schemaID,
            let items = doc["entries"]?.arrayValue, let declared = doc["artifact_root_sha256"]?.stringValue
        else {
            return [.init(path: "manifest.json", reason: "not a \(schemaID) document")]
        }
        var errors: [IntegrityError] = []
        if SHA256Digest.of(JSONValue.array(items).canonicalBytes).hex != declared {
            errors.append(.init(path: "manifest.json", reason: "artifact_root_sha256 does not match the entries"))
        }
        var listed: [String: (Bool, UInt64, String?)] = [:]
        for item in items {
            guard let p = item["path"]?.stringValue, let t = item["type"]?.stringValue,
                let size = item["size"]?.intValue
            else {
                errors.append(.init(path: "manifest.json", reason: "malformed entry"))
                continue
            }
            guard PathRulesLite.check(p) else {
                errors.append(.init(path: p, reason: "unsafe path in manifest"))
                continue
            }
            listed[p] = (t == "directory", UInt64(max(0, size)), item["sha256"]?.stringValue)
        }
        let onDisk: [(path: String, isDirectory: Bool, size: UInt64)]
        do { onDisk = try walk(root) } catch { return errors + [.init(path: ".", reason: "\(error)")] }
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 1 << 20, alignment: 16)
        defer { buffer.deallocate() }
        var seen = Set<String>()
        for item in onDisk where !hostFiles.contains(item.path) {
            seen.insert(item.path)
            guard let (isDir, size, sha) = listed[item.path] else {
                errors.append(
                    .init(
                        path: item.path,
                        reason: "not listed in manifest.json (extra \(item.isDirectory ? "directory" : "file"))"))
                continue
            }
            if isDir != item.isDirectory {
                errors.append(.init(path: item.path, reason: "type differs from manifest.json"))
                continue
            }
            if isDir { continue }
            if size != item.size {
                errors.append(.init(path: item.path, reason: "size \(item.size) != \(size) in manifest.json"))
                continue
            }
            let actual = try? hashFile(root + "/" + item.path, buffer: buffer)
            if actual?.hex != sha { errors.append(.init(path: item.path, reason: "sha256 differs from manifest.json")) }
        }
        for p in listed.keys.sorted() where !seen.contains(p) {
            errors.append(.init(path: p, reason: "listed in manifest.json but missing"))
        }
        return errors
    }

    static func hashFile(_ path: String, buffer: UnsafeMutableRawBufferPointer) throws -> SHA256Digest {
        var h = StreamingSHA256()
        try FileChunks.read(path: path, buffer: buffer) { h.update($0) }
        return h.finalize()
    }
}

/// Artifact profiles and what each requires (the backend contract).
///
/// `minimal`: `build.log`, `summary.json`, and for test jobs the `result.xcresult/` directory.
/// `rich`: minimal plus `events.jsonl` and `build_summary.json` (build) or `test_summary.json` and
/// `junit.xml` (test). A cached entry's profile is always computed from its manifest, never taken from
/// what the producer claimed.
public enum ArtifactProfile: String, Sendable, Comparable, CaseIterable {
    case minimal, rich

    public static func < (a: ArtifactProfile, b: ArtifactProfile) -> Bool { a == .minimal && b == .rich }

    /// The best profile `entries` satisfy for `action` (`build` or `test`), or the first thing missing.
    public static func satisfied(by entries: [ArtifactManifest.Entry], action: String) -> Result<
        ArtifactProfile, StoreError
    > {
        var files = Set<String>()
        var dirs = Set<String>()
        // Every name the profiles ask for is at the top level.
        for e in entries where !e.path.utf8.contains(UInt8(ascii: "/")) {
            if e.isDirectory { dirs.insert(e.path) } else { files.insert(e.path) }
        }
        var minimal = ["build.log", "summary.json"].filter { !files.contains($0) }
        if action == "test" && !dirs.contains("result.xcresult") { minimal.append("result.xcresult/") }
        if let m = minimal.first {
            return .failure(.notCacheable("the artifact set lacks \(m) (needed even for the minimal profile)"))
        }
        let rich =
            (action == "test"
                ? ["events.jsonl", "test_summary.json", "junit.xml"] : ["events.jsonl", "build_summary.json"])
        return .success(rich.allSatisfy(files.contains) ? .rich : .minimal)
    }
}
