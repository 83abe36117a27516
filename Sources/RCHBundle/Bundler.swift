import RCHCore
import SystemPackage

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Options for ``Bundler``.
public struct BundleOptions: Sendable {
    public var mode: SelectionMode = .worktree
    /// zstd level, 1–19 (transport only; never changes `source_sha256`).
    public var compressionLevel: Int = 3
    /// Extra zstd worker threads inside the compression stage (0 = none). The compression stage always
    /// runs on its own thread; on machines with more than two cores zstd can use more. Transport only.
    public var compressionWorkers: Int = max(0, min(4, Int(sysconf(Int32(_SC_NPROCESSORS_ONLN)))) - 2)
    /// Limit on the uncompressed canonical tar, in bytes; 0 means no limit.
    public var maxBytes: UInt64 = 0
    /// Optional `run_id` recorded in the manifest.
    public var runID: String? = nil
    /// Extra ignore rules instead of the root's `.rchignore` (nil: read `.rchignore`).
    public var ignore: IgnoreRules? = nil

    public init() {}
}

/// What a bundle run produced.
public struct BundleResult: Sendable {
    public var manifest: SourceManifest
    /// Size of the compressed `.tar.zst` (0 when no compressed output was requested).
    public var bundleBytes: UInt64
    /// SHA-256 of the `.tar.zst` bytes as written (an upload's `content_sha256`); only with `hashOutput`.
    public var bundleSHA256: SHA256Digest? = nil
    public var excluded: [String]
    public var warnings: [String]
    /// The tar stream's hash state after each entry (same count as the entries; empty if not kept).
    public var checkpoints: [SHA256Midstate] = []
    public var sourceSHA256: SHA256Digest { manifest.sourceSHA256 }
}

/// Where a digest-only bundle may start: the first entries of the selection exactly as an earlier bundle wrote
/// them (path, kind, size, executable bit, content digest vouched for by the stat cache, symlink target) and the
/// hash state after each (the last is where hashing resumes; nothing before it is read).
public struct BundleResume: Sendable {
    public var entries: [SourceManifest.Entry]
    public var checkpoints: [SHA256Midstate]

    public init?(entries: [SourceManifest.Entry], checkpoints: [SHA256Midstate]) {
        guard !entries.isEmpty, entries.count == checkpoints.count else { return nil }
        self.entries = entries
        self.checkpoints = checkpoints
    }
}

/// Turns a directory into a canonical source bundle.
///
/// The tar stream is produced once, in bundle order; as it is written it is hashed (`source_sha256`)
/// and fed to the zstd compressor, whose output goes to `output`. Memory is bounded by a fixed set of
/// buffers, whatever the size of the tree (only the entry list grows with the file count).
public enum Bundler {
    static let chunkSize = 1 << 20

    /// Selects, validates, reads and writes. `output` receives the `.tar.zst` bytes (nil: digest only).
    /// Nothing is published here: the caller commits `output` only when this returns.
    public static func bundle(root: String, options: BundleOptions = BundleOptions(), output: TempFile?) throws
        -> BundleResult
    {
        let selector = try TreeSelector(root: root, mode: options.mode, ignore: options.ignore)
        let selection = try selector.select()
        return try write(selection: selection, root: root, options: options, output: output)
    }

    /// Writes an already-made selection. `knownDigest` may vouch for a file's content digest (the stat
    /// cache, for files whose identity is unchanged and not racily clean): such a file is still read into
    /// the tar stream, but not hashed again on its own. (If it were wrong, the manifest would disagree with
    /// the stream and every consumer that rebuilds from blobs would refuse the source.) `hashOutput`: also
    /// hash the compressed bytes as they are written (for a bundle that is uploaded right away).
    public static func write(
        selection: Selection, root: String, options: BundleOptions, output: TempFile?, hashOutput: Bool = false,
        knownDigest: (SelectedEntry) -> SHA256Digest? = { _ in nil }, resume: BundleResume? = nil
    ) throws -> BundleResult {
        precondition(resume == nil || output == nil, "only a digest-only bundle can resume")
        let skipped = resume?.entries.count ?? 0
        assert(
            zip(selection.entries.prefix(skipped), resume?.entries ?? []).allSatisfy { $0.path == $1.path },
            "a resume must describe the selection's first entries")
        guard (1...19).contains(options.compressionLevel) else {
            throw BundleError.io("compression level must be between 1 and 19")
        }
        let content = selection.entries.reduce(UInt64(0)) { $0 + $1.size }
        if options.maxBytes > 0 && content > options.maxBytes {
            throw BundleError.sizeExceeded(limit: options.maxBytes, actual: content)
        }
        let bundleBytes = Box<UInt64>(0)
        let bundleHash = Box<StreamingSHA256?>(hashOutput ? StreamingSHA256() : nil)
        let compressor = try output.map { out in
            try ZstdCompressor(level: options.compressionLevel, workers: options.compressionWorkers) { buf in
                try out.write(buf)
                bundleHash.value?.update(buf)
                bundleBytes.value += UInt64(buf.count)
            }
        }
        let sinkBox = Box(
            TarSink(maxBytes: options.maxBytes, compressor: compressor, resume: resume?.checkpoints.last))
        defer { sinkBox.value.abandon() }
        let writer = try CanonicalTarWriter { buf in try sinkBox.value.consume(buf) }
        writer.boundary = { sinkBox.value.markBoundary() }
        var entries: [SourceManifest.Entry] = resume?.entries ?? []
        entries.reserveCapacity(selection.entries.count)
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: chunkSize, alignment: 16)
        defer { buffer.deallocate() }
        Activity.shared.begin("bundling", totalBytes: content)
        defer { Activity.shared.end("bundling") }
        for e in selection.entries.dropFirst(skipped) {
            Activity.shared.advance(bytes: e.size, files: 1)
            switch e.kind {
            case .symlink(let target):
                try writer.symlink(path: e.path, target: target)
                entries.append(
                    .init(
                        path: e.path, type: .symlink, size: UInt64(target.utf8.count),
                        sha256: .of(target.utf8), executable: false, symlinkTarget: target))
            case .file(let executable):
                try writer.beginFile(path: e.path, size: e.identity.size, executable: executable)
                let digest = try copyFile(
                    e, root: root, buffer: buffer, into: writer, knownDigest: knownDigest(e)
                ) { chunk, file in
                    try writer.writeData(chunk) { try sinkBox.value.consume($0, alsoHashing: &file) }
                }
                entries.append(
                    .init(
                        path: e.path, type: .file, size: e.identity.size, sha256: digest,
                        executable: executable, symlinkTarget: nil))
            }
        }
        try writer.finish()
        let digest = try sinkBox.value.finish()
        Activity.shared.detail(
            "bundled \(entries.count) entries, \(content) content bytes, tar \(sinkBox.value.byteCount) bytes"
                + (output == nil ? "" : ", zstd \(bundleBytes.value) bytes"))
        let manifest = SourceManifest(
            createdAt: Timestamp.now(), runID: options.runID,
            sourceSHA256: digest, treeSHA256: SourceManifest.treeDigest(entries),
            tarBytes: sinkBox.value.byteCount, entries: entries,
            tarEncoder: TarHeaderEncoder.identity, zstdVersion: ZstdCompressor.version)
        let checkpoints = (resume?.checkpoints ?? []) + sinkBox.value.checkpoints
        return BundleResult(
            manifest: manifest, bundleBytes: bundleBytes.value,
            bundleSHA256: output == nil ? nil : bundleHash.value?.finalize(), excluded: selection.excluded,
            warnings: selection.warnings, checkpoints: checkpoints.count == entries.count ? checkpoints : [])
    }

    /// Streams one file into the archive, hashing it, and proves it did not change meanwhile:
    /// opened without following links and without blocking (a FIFO swapped in cannot hang us), same
    /// inode as at selection, exactly `size` bytes then EOF, and the same size/mtime/ctime afterwards.
    /// `hashing`, if given, writes a chunk into the archive and hashes it into the file's digest too (the
    /// tar sink then takes both hashes in one pass).
    static func copyFile(
        _ e: SelectedEntry, root: String, buffer: UnsafeMutableRawBufferPointer, into writer: CanonicalTarWriter,
        knownDigest: SHA256Digest? = nil,
        hashing: ((UnsafeRawBufferPointer, inout ResumableSHA256) throws -> Void)? = nil
    ) throws -> SHA256Digest {
        let path = root + "/" + String(decoding: e.diskPath, as: UTF8.self)
        let fd = Glibc_open(path)
        if fd < 0 {
            if errno == ELOOP || errno == ENOENT { throw BundleError.fileChanged(path: e.path) }
            throw BundleError.unreadable(path: e.path, reason: String(cString: strerror(errno)))
        }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0 else {
            throw BundleError.unreadable(path: e.path, reason: String(cString: strerror(errno)))
        }
        let before = FileIdentity(st)
        guard (st.st_mode & S_IFMT) == S_IFREG, before == e.identity else {
            throw BundleError.fileChanged(path: e.path)
        }
        var hasher = ResumableSHA256()
        var remaining = Int(e.identity.size)
        while remaining > 0 {
            let n = read(fd, buffer.baseAddress, min(remaining, buffer.count))
            if n < 0 {
                if errno == EINTR { continue }
                throw BundleError.unreadable(path: e.path, reason: String(cString: strerror(errno)))
            }
            if n == 0 { throw BundleError.fileChanged(path: e.path) }  // truncated underneath us
            let chunk = UnsafeRawBufferPointer(rebasing: buffer[0..<n])
            if knownDigest != nil {
                try writer.writeData(chunk)
            } else if let hashing {
                try hashing(chunk, &hasher)
            } else {
                hasher.update(chunk)
                try writer.writeData(chunk)
            }
            remaining -= n
        }
        var probe: UInt8 = 0
        if read(fd, &probe, 1) != 0 { throw BundleError.fileChanged(path: e.path) }  // grew underneath us
        guard fstat(fd, &st) == 0, FileIdentity(st) == before else { throw BundleError.fileChanged(path: e.path) }
        return knownDigest ?? hasher.finalize()
    }
}

@inline(__always) private func Glibc_open(_ path: String) -> Int32 {
    open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC)
}
