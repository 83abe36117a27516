import RCHBundle
import RCHCore

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// What `rch-xcode bundle` did.
public struct BundleReport: Sendable {
    public var manifest: SourceManifest
    public var bundleBytes: UInt64
    /// Where the `.tar.zst` is (the store, or `--output`).
    public var bundlePath: String
    public var manifestPath: String?
    /// True when the stat cache proved the tree unchanged and the stored bundle was reused.
    public var reused: Bool
    /// SHA-256 of the bytes at `bundlePath` for a scratch bundle (taken as written; nil otherwise: hash them
    /// if needed).
    public var bundleSHA256: SHA256Digest? = nil
    public var excluded: [String]
    public var warnings: [String]
    public var sourceSHA256: SHA256Digest { manifest.sourceSHA256 }

    public var json: JSONValue {
        .obj([
            "source_sha256": .string(manifest.sourceSHA256.hex),
            "tree_sha256": .string(manifest.treeSHA256.hex),
            "file_count": .int(Int64(manifest.fileCount)),
            "symlink_count": .int(Int64(manifest.symlinkCount)),
            "total_bytes": .int(Int64(manifest.totalBytes)),
            "tar_bytes": .int(Int64(manifest.tarBytes)),
            "bundle_bytes": .int(Int64(bundleBytes)),
            "bundle_path": .string(bundlePath),
            "manifest_path": manifestPath.map { .string($0) } ?? .null,
            "reused": .bool(reused),
            "excluded_count": .int(Int64(excluded.count)),
            "warnings": .array(warnings.map { .string($0) }),
        ])
    }
}

/// Host-side bundling into the local store, with the stat-cache fast path.
public struct HostBundler: Sendable {
    public let store: LocalStore

    public init(store: LocalStore) { self.store = store }

    /// Bundles `root`. Without `output`, the bundle and manifest are published into the store; with it,
    /// the `.tar.zst` is written (atomically) to `output` instead. `manifestOutput` gets a copy of the manifest.
    /// `compressed: false` (push): only the digest and the manifest are produced — the tar stream is hashed
    /// but neither compressed nor written, and only the manifest is published (the `.tar.zst` is made
    /// later, if a whole upload turns out to be needed).
    /// `scratch` (push): the `.tar.zst` is written into this caller-owned temp file and neither synced nor
    /// published (the caller uploads it and discards it); the manifest is published as with
    /// `compressed: false`. `whenChanged` is called once the tree is known not to be the cached bundle's
    /// (before its files are read).
    public func bundle(
        root: String, options: BundleOptions, output: String? = nil, manifestOutput: String? = nil,
        useStatCache: Bool = true, compressed: Bool = true, scratch: TempFile? = nil,
        whenChanged: () -> Void = {}
    ) throws -> BundleReport {
        precondition(compressed || output == nil, "an output file needs the compressed bundle")
        precondition(scratch == nil || output == nil, "one destination for the compressed bundle")
        let compressed = compressed || scratch != nil
        let started = Timestamp.nowNanos()
        guard let real = realpath(root, nil) else {
            throw BundleError.io("cannot open repository '\(root)': \(String(cString: strerror(errno)))")
        }
        let realRoot = String(cString: real)
        free(real)
        // Whole-selection validation is skipped only when the selection is proven identical (same
        // tree_sha256) to one that was validated and bundled before.
        let selection = try TreeSelector(root: realRoot, mode: options.mode, ignore: options.ignore).collect()
        let cachePath = statCachePath(root: realRoot, mode: options.mode)

        // The previous run's cache: a whole-tree hit reuses the bundle; otherwise unchanged files at least
        // keep their digests (they are read into the stream but not hashed twice).
        let cache =
            useStatCache
            ? (try? DurableFile.read(cachePath)).flatMap { StatCache(decoding: $0) }
                .flatMap { $0.formatTag == StatCache.currentFormatTag ? $0 : nil } : nil
        if let cache,
            let hit = try reuse(
                cache, selection: selection, options: options,
                output: output, manifestOutput: manifestOutput, compressed: compressed)
        {
            return hit
        }
        whenChanged()
        try TreeSelector.validate(selection)
        let temp =
            compressed
            ? try scratch ?? output.map { try TempFile(directory: directoryOf($0)) } ?? store.newBundleTempFile() : nil
        let result: BundleResult
        do {
            // A digest-only bundle resumes the tar hash after the unchanged first entries (StatCache.resume).
            result = try Bundler.write(
                selection: selection, root: realRoot, options: options, output: temp, hashOutput: scratch != nil,
                knownDigest: { cache?.digest(for: $0) }, resume: compressed ? nil : cache?.resume(for: selection))
        } catch {
            if scratch == nil { temp?.discard() }
            throw error
        }
        let manifestBytes = result.manifest.canonicalBytes() + [10]
        var bundlePath = store.bundlePath(result.sourceSHA256)
        var manifestPath: String? = store.bundleManifestPath(result.sourceSHA256)
        if let scratch {
            bundlePath = scratch.path
            _ = try DurableFile.write(manifestBytes, to: store.bundleManifestPath(result.sourceSHA256), replace: true)
        } else if let temp, let output {
            try temp.commit(to: output, replace: true)
            bundlePath = output
            manifestPath = nil
        } else if let temp {
            try store.publishBundle(temp, manifest: manifestBytes, sha: result.sourceSHA256)
        } else {
            try Syscalls.makeDirectories(store.bundlesDirectory)
            _ = try DurableFile.write(manifestBytes, to: store.bundleManifestPath(result.sourceSHA256), replace: true)
        }
        if let manifestOutput {
            _ = try DurableFile.write(manifestBytes, to: manifestOutput)
            manifestPath = manifestOutput
        }
        if useStatCache {
            let fresh = StatCache.from(
                selection: selection, manifest: result.manifest, checkpoints: result.checkpoints,
                startedAtNanos: started)
            // Best effort: a cache that cannot be written only costs the next run its fast path.
            try? Syscalls.makeDirectories(directoryOf(cachePath))
            _ = try? DurableFile.write(fresh.encoded(), to: cachePath, replace: true)
        }
        return BundleReport(
            manifest: result.manifest, bundleBytes: result.bundleBytes, bundlePath: bundlePath,
            manifestPath: manifestPath, reused: false, bundleSHA256: result.bundleSHA256, excluded: result.excluded,
            warnings: result.warnings)
    }

    private func reuse(
        _ cache: StatCache, selection: Selection, options: BundleOptions, output: String?,
        manifestOutput: String?, compressed: Bool
    ) throws -> BundleReport? {
        guard let source = cache.sourceSHA256, let tree = cache.treeSHA256,
            let entries = cache.manifestEntries(for: selection),
            SourceManifest.treeDigest(entries) == tree,
            compressed ? store.hasBundle(source) : store.hasBundleManifest(source)
        else { return nil }
        if options.maxBytes > 0 && cache.tarBytes > options.maxBytes {
            throw BundleError.sizeExceeded(limit: options.maxBytes, actual: cache.tarBytes)
        }
        var bundlePath = store.bundlePath(source)
        var manifestPath: String? = store.bundleManifestPath(source)
        if let output {
            let temp = try TempFile(directory: directoryOf(output))
            try FileCopy.copy(from: bundlePath, into: temp)
            try temp.commit(to: output, replace: true)
            bundlePath = output
        }
        if let manifestOutput {
            _ = try DurableFile.write(try DurableFile.read(store.bundleManifestPath(source)), to: manifestOutput)
            manifestPath = manifestOutput
        }
        var st = stat()
        let size = stat(bundlePath, &st) == 0 ? UInt64(st.st_size) : 0
        let manifest = SourceManifest(
            createdAt: Timestamp.now(), runID: options.runID, sourceSHA256: source, treeSHA256: tree,
            tarBytes: cache.tarBytes, entries: entries, tarEncoder: "", zstdVersion: "")
        return BundleReport(
            manifest: manifest, bundleBytes: size, bundlePath: bundlePath, manifestPath: manifestPath,
            reused: true, excluded: selection.excluded, warnings: selection.warnings)
    }

    func statCachePath(root: String, mode: SelectionMode) -> String {
        let key = SHA256Digest.of(Array(root.utf8) + [0] + Array(mode.rawValue.utf8)).hex
        return store.cacheDirectory + "/statcache/" + key + ".bin"
    }
}
