import RCHCore

/// Rebuilds the canonical tar stream of a source from its manifest entries and stored contents.
///
/// This is how a store proves a source assembled from blobs (uploaded file by file) is exactly the bundle
/// named by its `source_sha256`, and how it regenerates a `.tar.zst` on demand: the bytes come from the
/// same ``CanonicalTarWriter`` as the bundler's, so equal entries give equal digests.
public enum CanonicalTarRebuilder {
    public struct Result: Sendable {
        public var sourceSHA256: SHA256Digest
        public var tarBytes: UInt64
        public var bundleBytes: UInt64
        /// The hash state after each entry (same count as the entries; empty if not kept).
        public var checkpoints: [SHA256Midstate] = []
    }

    /// - Parameters:
    ///   - entries: in bundle order.
    ///   - content: writes exactly `entry.size` bytes of a file entry through the given sink.
    ///   - output: receives the zstd-compressed stream (nil: digest only).
    ///   - verifyFiles: also hash every file's content against its entry (a clearer error than the final
    ///     digest mismatch a changed byte causes anyway; callers that check the stream digest may skip it).
    ///   - resume: digest only — the first entries are taken as hashed already (their states given); nothing of
    ///     them is read. A wrong state gives a wrong digest, which the caller's comparison refuses.
    public static func rebuild(
        entries: [SourceManifest.Entry], level: Int = 3, output: TempFile?, verifyFiles: Bool = true,
        resume: BundleResume? = nil,
        content: (SourceManifest.Entry, (UnsafeRawBufferPointer) throws -> Void) throws -> Void
    ) throws -> Result {
        precondition(resume == nil || output == nil, "only a digest-only rebuild can resume")
        let skipped = resume?.entries.count ?? 0
        // The caller found the prefix by this comparison; checked again only in debug builds.
        assert(zip(entries, resume?.entries ?? []).allSatisfy { $0 == $1 }, "a resume must be a prefix")
        let bundleBytes = Box<UInt64>(0)
        let compressor = try output.map { out in
            try ZstdCompressor(level: level, workers: 0) { buf in
                try out.write(buf)
                bundleBytes.value += UInt64(buf.count)
            }
        }
        let sink = Box(TarSink(maxBytes: 0, compressor: compressor, resume: resume?.checkpoints.last))
        defer { sink.value.abandon() }
        let writer = try CanonicalTarWriter { buf in try sink.value.consume(buf) }
        writer.boundary = { sink.value.markBoundary() }
        for e in entries.dropFirst(skipped) {
            switch e.type {
            case .symlink:
                try writer.symlink(path: e.path, target: e.symlinkTarget ?? "")
            case .file:
                try writer.beginFile(path: e.path, size: e.size, executable: e.executable)
                var written: UInt64 = 0
                var fileHash = StreamingSHA256()
                try content(e) { chunk in
                    written += UInt64(chunk.count)
                    guard written <= e.size else {
                        throw BundleError.invalidArchive("content of '\(e.path)' is longer than its manifest size")
                    }
                    if verifyFiles { fileHash.update(chunk) }
                    try writer.writeData(chunk)
                }
                guard written == e.size, !verifyFiles || fileHash.finalize() == e.sha256 else {
                    throw BundleError.digestMismatch(
                        expected: e.sha256.hex, actual: "content of '\(e.path)' (\(written) bytes)")
                }
            }
        }
        try writer.finish()
        let digest = try sink.value.finish()
        let checkpoints = (resume?.checkpoints ?? []) + sink.value.checkpoints
        return Result(
            sourceSHA256: digest, tarBytes: sink.value.byteCount, bundleBytes: bundleBytes.value,
            checkpoints: checkpoints.count == entries.count ? checkpoints : [])
    }
}
