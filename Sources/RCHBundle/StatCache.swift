import RCHCore

/// Remembers, per repository root, each file's identity (dev, inode, size, mtime, ctime, mode) and
/// content digest from the last bundle, plus that bundle's `tree_sha256` → `source_sha256`.
///
/// Safety rules:
/// - a cached digest is used only if every identity field is equal (ctime changes on any write,
///   chmod, rename or link — it cannot be set from user space);
/// - "racily clean" entries are never trusted: a file whose mtime or ctime is later than
///   `recordedAt - racyWindow` (the bundle run started reading at `recordedAt`) could have been modified
///   within the filesystem's timestamp granularity after being read, so it is read again;
/// - the tree → source mapping is trusted only for the same `bundle_format` and tar encoder,
///   and only if the whole selection hits; a partial hit falls back to a full bundle.
/// - checkpoints (the tar stream's hash state after each entry of the last bundle, in bundle order, with what
///   the entry's tar bytes depend on besides a file's content: path, kind, executable bit, symlink target) let
///   a digest-only bundle resume after the longest prefix of the selection that is identical and vouched for
///   by the rules above (``resume(for:)``); nothing of that prefix is read again.
/// The file format is private to this type and versioned by its magic; a file it cannot parse is ignored.
public struct StatCache: Sendable {
    public struct Record: Sendable, Equatable {
        public var identity: FileIdentity
        public var sha256: SHA256Digest
    }

    /// The hash state after one entry of the last bundle.
    public struct Checkpoint: Sendable, Equatable {
        public var path: String
        /// nil for a file.
        public var symlinkTarget: String?
        public var executable: Bool
        public var midstate: SHA256Midstate
    }

    static let magic = Array("RCHSTAT2".utf8)
    /// Timestamps within this window before a run started are not trusted on the next run.
    public static let racyWindowNanos: Int64 = 2_000_000_000

    public var recordedAtNanos: Int64
    public var formatTag: String
    public var treeSHA256: SHA256Digest?
    public var sourceSHA256: SHA256Digest?
    public var tarBytes: UInt64 = 0
    public var records: [String: Record]  // keyed by canonical path
    public var checkpoints: [Checkpoint] = []

    public init(recordedAtNanos: Int64, formatTag: String) {
        self.recordedAtNanos = recordedAtNanos
        self.formatTag = formatTag
        self.records = [:]
    }

    /// The tag that must match for the tree → source mapping to be trusted.
    public static var currentFormatTag: String { "\(SourceManifest.bundleFormat);tar=\(TarHeaderEncoder.identity)" }

    /// The cached digest for `entry`, if it may be trusted.
    public func digest(for entry: SelectedEntry) -> SHA256Digest? {
        guard let r = records[entry.path], r.identity == entry.identity else { return nil }
        let limit = recordedAtNanos - Self.racyWindowNanos
        guard r.identity.mtimeNanos < limit, r.identity.ctimeNanos < limit else { return nil }
        return r.sha256
    }

    /// If every entry of `selection` hits, the manifest entries rebuilt from the cache.
    public func manifestEntries(for selection: Selection) -> [SourceManifest.Entry]? {
        var out: [SourceManifest.Entry] = []
        out.reserveCapacity(selection.entries.count)
        for e in selection.entries {
            switch e.kind {
            case .symlink(let t):
                out.append(
                    .init(
                        path: e.path, type: .symlink, size: UInt64(t.utf8.count), sha256: .of(t.utf8),
                        executable: false, symlinkTarget: t))
            case .file(let x):
                guard let d = digest(for: e) else { return nil }
                out.append(
                    .init(
                        path: e.path, type: .file, size: e.identity.size, sha256: d, executable: x, symlinkTarget: nil))
            }
        }
        return out
    }

    /// The longest prefix of `selection` that is exactly the last bundle's, with its checkpoints (nil if none).
    public func resume(for selection: Selection) -> BundleResume? {
        var entries: [SourceManifest.Entry] = []
        prefix: for (e, c) in zip(selection.entries, checkpoints) {
            guard e.path == c.path else { break }
            switch e.kind {
            case .symlink(let t):
                guard c.symlinkTarget == t else { break prefix }
                entries.append(
                    .init(
                        path: e.path, type: .symlink, size: UInt64(t.utf8.count), sha256: .of(t.utf8),
                        executable: false, symlinkTarget: t))
            case .file(let x):
                guard c.symlinkTarget == nil, c.executable == x, let d = digest(for: e) else { break prefix }
                entries.append(
                    .init(
                        path: e.path, type: .file, size: e.identity.size, sha256: d, executable: x, symlinkTarget: nil))
            }
        }
        return BundleResume(entries: entries, checkpoints: checkpoints.prefix(entries.count).map(\.midstate))
    }

    /// A cache describing a finished bundle run that started at `startedAtNanos`.
    public static func from(
        selection: Selection, manifest: SourceManifest, checkpoints: [SHA256Midstate] = [], startedAtNanos: Int64
    ) -> StatCache {
        var c = StatCache(recordedAtNanos: startedAtNanos, formatTag: currentFormatTag)
        if checkpoints.count == manifest.entries.count {
            c.checkpoints = zip(manifest.entries, checkpoints).map { e, m in
                Checkpoint(path: e.path, symlinkTarget: e.symlinkTarget, executable: e.executable, midstate: m)
            }
        }
        c.treeSHA256 = manifest.treeSHA256
        c.sourceSHA256 = manifest.sourceSHA256
        c.tarBytes = manifest.tarBytes
        c.records.reserveCapacity(selection.entries.count)
        for (e, m) in zip(selection.entries, manifest.entries) where m.type == .file {
            c.records[e.path] = Record(identity: e.identity, sha256: m.sha256)
        }
        return c
    }

    // MARK: encoding

    public func encoded() -> [UInt8] {
        var w = ByteWriter()
        w.bytes(Self.magic)
        w.u64(UInt64(bitPattern: recordedAtNanos))
        w.string(formatTag)
        w.digest(treeSHA256)
        w.digest(sourceSHA256)
        w.u64(tarBytes)
        w.u64(UInt64(records.count))
        for (path, r) in records {
            w.string(path)
            w.u64(r.identity.device)
            w.u64(r.identity.inode)
            w.u64(r.identity.size)
            w.u64(UInt64(bitPattern: r.identity.mtimeNanos))
            w.u64(UInt64(bitPattern: r.identity.ctimeNanos))
            w.u64(UInt64(r.identity.mode))
            w.bytes(r.sha256.bytes)
        }
        w.u64(UInt64(checkpoints.count))
        for c in checkpoints {
            w.string(c.path)
            w.u64(c.symlinkTarget != nil ? 2 : c.executable ? 1 : 0)
            if let t = c.symlinkTarget { w.string(t) }
            w.bytes(c.midstate.encoded)
        }
        return w.out
    }

    public init?(decoding data: [UInt8]) {
        var r = ByteReader(data)
        guard let m = r.take(8), Array(m) == Self.magic, let at = r.u64(), let tag = r.string() else { return nil }
        self.init(recordedAtNanos: Int64(bitPattern: at), formatTag: tag)
        guard let t = r.optionalDigest(), let s = r.optionalDigest(), let tb = r.u64(), let n = r.u64(), n < 50_000_000
        else { return nil }
        treeSHA256 = t
        sourceSHA256 = s
        tarBytes = tb
        records.reserveCapacity(Int(n))
        for _ in 0..<n {
            guard let p = r.string(), let dev = r.u64(), let ino = r.u64(), let size = r.u64(),
                let mt = r.u64(), let ct = r.u64(), let mode = r.u64(), let d = r.take(32)
            else { return nil }
            records[p] = Record(
                identity: FileIdentity(
                    device: dev, inode: ino, size: size, mtimeNanos: Int64(bitPattern: mt),
                    ctimeNanos: Int64(bitPattern: ct), mode: UInt32(truncatingIfNeeded: mode)),
                sha256: SHA256Digest(bytes: Array(d)))
        }
        guard let k = r.u64(), k < 50_000_000 else { return nil }
        checkpoints.reserveCapacity(Int(k))
        for _ in 0..<k {
            guard let p = r.string(), let kind = r.u64(), kind <= 2 else { return nil }
            let target = kind == 2 ? r.string() : nil
            guard kind != 2 || target != nil, let m = r.take(SHA256Midstate.encodedSize),
                let midstate = SHA256Midstate(encoded: m)
            else { return nil }
            checkpoints.append(Checkpoint(path: p, symlinkTarget: target, executable: kind == 1, midstate: midstate))
        }
        guard r.atEnd else { return nil }
    }
}
