import RCHBundle
import RCHCore
import RCHProtocol
import RCHStore

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// What `push` did.
public struct PushReport: Sendable {
    public var sourceSHA256: SHA256Digest
    /// `present` (nothing sent), `upload_tree` (delta + missing blobs) or `upload_source` (whole bundle).
    public var method: String
    public var base: SHA256Digest?
    public var blobsSent = 0
    /// Size of the compressed bundle, if one had to be made (upload_source); else 0.
    public var bundleBytes: UInt64
    public var reusedBundle: Bool
    public var wire: JSONValue

    public var json: JSONValue {
        .obj([
            "source_sha256": .string(sourceSHA256.hex), "method": .string(method),
            "base_source_sha256": base.map { .string($0.hex) } ?? .null,
            "blobs_sent": .int(Int64(blobsSent)), "bundle_bytes": .int(Int64(bundleBytes)),
            "bundle_reused": .bool(reusedBundle), "wire": wire,
        ])
    }
}

/// Gets a source onto a worker with as few bytes and round trips as possible.
///
/// 1. bundle (stat-cache fast path) into the host store — digest and manifest only, no compression;
/// 2. negotiate (a fresh cached probe costs nothing);
/// 3. a tree this host has not pushed to the worker before, when it has pushed another version of the same
///    repository there (whose manifest it kept) and the worker offers `upload_tree`: send the manifest delta
///    against the newest such base plus
///    a blob pack of the contents the base lacks right away — the worker commits (one round trip), names
///    blobs still missing (e.g. evicted; a second exchange sends them), or answers SOURCE_MISSING for a
///    base it no longer has (then step 4);
/// 4. one `has_source` for the new digest **and** the sources this host last pushed there — present →
///    done (one round trip); else `upload_tree` against a base the worker still has, as in step 3;
/// 5. otherwise `upload_source` with the whole canonical bundle (compressed now, if not in the store).
/// The worker verifies everything; the host remembers what it pushed (`workers/<name>/pushed.json`).
public struct Pusher {
    public let client: WorkerClient
    public var hostStore: LocalStore { client.hostStore }
    static let rememberedSources = 16
    var prefetched: BasePrefetch?

    public init(client: WorkerClient) { self.client = client }

    public func push(root: String, options: BundleOptions) throws -> PushReport {
        var pusher = self
        pusher.prefetchBase(root: root)
        // The worker is reached (probe unless a fresh one is cached, and with it the SSH connection) while
        // the tree is bundled. Only that thread uses the client until `wait()` has returned.
        nonisolated(unsafe) let client = self.client
        // Then the next exchange's process is started, so its start-up overlaps the rest of the walk.
        let connecting = BackgroundWork {
            try client.negotiate()
            client.prestartNextExchange()
        }
        // With no earlier push to this worker there is no delta base: a whole upload is likely, so the
        // compressed bundle is made in the same pass, into a scratch file that is sent and dropped (never
        // synced or kept: the worker verifies it, and a later whole upload bundles again); otherwise only
        // digest + manifest.
        let bundle: BundleReport
        let scratch: TempFile?
        do {
            scratch = remembered().isEmpty ? try newScratch() : nil
            bundle = try HostBundler(store: hostStore).bundle(
                root: root, options: options, compressed: false, scratch: scratch, whenChanged: pusher.baseNeeded)
        } catch {
            _ = try? connecting.wait()
            throw error
        }
        defer { scratch?.discard() }
        _ = try connecting.wait()
        return try pusher.push(bundle, root: root, options: options)
    }

    /// Prepares the parse of the manifest of the newest source of `root` pushed to this worker (the likely
    /// delta base) on another thread; call before bundling, and pass ``baseNeeded`` as the bundler's
    /// `whenChanged`, which starts it.
    public mutating func prefetchBase(root: String) {
        let here = Self.rootKey(root)
        guard let sha = remembered().first(where: { $0.root == here })?.sha, hostStore.hasBundleManifest(sha) else {
            return
        }
        prefetched = BasePrefetch(sha: sha, path: hostStore.bundleManifestPath(sha))
    }

    /// Starts the base's parse prepared by ``prefetchBase(root:)`` (the bundler calls it once it knows the
    /// tree changed).
    public var baseNeeded: @Sendable () -> Void { { [prefetched] in prefetched?.start() } }

    /// `bundle` may be manifest-only (`compressed: false`): the `.tar.zst` is produced only if a whole
    /// upload is needed.
    public func push(_ bundle: BundleReport, root: String, options: BundleOptions) throws -> PushReport {
        try client.negotiate()
        let sha = bundle.sourceSHA256
        let here = Self.rootKey(root)
        let history = remembered()
        let pushed = history.map(\.sha)
        // Delta bases: sources of the same repository first (newest first), then the others this host pushed.
        let ordered = history.filter { $0.root == here } + history.filter { $0.root != here }
        let known = ordered.map(\.sha).filter { $0 != sha && hostStore.hasBundleManifest($0) }.prefix(4)
        let sameRepository = Set(history.filter { $0.root == here }.map(\.sha))
        var report = PushReport(
            sourceSHA256: sha, method: "present", bundleBytes: 0, reusedBundle: bundle.reused, wire: .null)
        // A tree this host never pushed there, with a base it did: send the delta at once (one round trip;
        // the worker answers "already present" without reading the pack if it has the source anyway).
        if !pushed.contains(sha), client.has("upload_tree"), let base = known.first, sameRepository.contains(base),
            let baseManifest = try? localManifest(base)
        {
            do {
                let (sent, alreadyPresent) = try uploadTree(bundle.manifest, base: baseManifest, root: root)
                report.method = alreadyPresent ? "present" : "upload_tree"
                report.blobsSent = alreadyPresent ? 0 : sent
                report.base = alreadyPresent ? nil : base
                remember(sha, root: here)
                report.wire = client.counter.json
                return report
            } catch let e as RPCError where e.code == .sourceMissing {
                // The base is gone from the worker (gc): ask which sources it still has.
            }
        }
        let present = try client.hasSources([sha] + known)
        if present[0] {
            remember(sha, root: here)
            report.wire = client.counter.json
            return report
        }
        let bases = zip(known, present.dropFirst()).filter { $0.1 }.map(\.0)
        if client.has("upload_tree"), let base = bases.first, let baseManifest = try? localManifest(base) {
            report.method = "upload_tree"
            report.base = base
            report.blobsSent = try uploadTree(bundle.manifest, base: baseManifest, root: root).sent
        } else {
            report.method = "upload_source"
            report.bundleBytes = try uploadWhole(sha, root: root, options: options, made: bundle)
        }
        remember(sha, root: here)
        report.wire = client.counter.json
        return report
    }

    /// Re-sends the whole bundle (the SOURCE_MISSING retry path).
    public func reupload(_ sha: SHA256Digest, root: String, options: BundleOptions) throws {
        _ = try uploadWhole(sha, root: root, options: options)
        remember(sha, root: Self.rootKey(root))
    }

    /// `upload_source` of the compressed bundle, checked against the worker's `max_upload_bytes` first:
    /// the one `made` by the bundle just taken (with its digest), else the store's (`rch-xcode bundle`),
    /// else one made now into a scratch file. Returns the bundle's size.
    func uploadWhole(_ sha: SHA256Digest, root: String, options: BundleOptions, made: BundleReport? = nil) throws
        -> UInt64
    {
        var path = hostStore.bundlePath(sha)
        var bytes: UInt64
        var digest: SHA256Digest? = nil
        var scratch: TempFile? = nil
        defer { scratch?.discard() }
        var st = stat()
        if let made, made.sourceSHA256 == sha, made.bundleBytes > 0, stat(made.bundlePath, &st) == 0 {
            path = made.bundlePath
            bytes = made.bundleBytes
            digest = made.bundleSHA256
        } else if stat(path, &st) == 0 {
            // The store's `.tar.zst` of exactly this digest.
            bytes = UInt64(st.st_size)
        } else {
            scratch = try newScratch()
            let full = try HostBundler(store: hostStore).bundle(
                root: root, options: options, compressed: false, scratch: scratch)
            guard full.sourceSHA256 == sha else {
                throw BundleError.io("the tree changed while it was being pushed; run the command again")
            }
            path = full.bundlePath
            bytes = full.bundleBytes
            digest = full.bundleSHA256
        }
        if let limit = client.capabilities?["max_upload_bytes"]?.intValue, limit > 0, bytes > UInt64(limit) {
            throw BundleError.sizeExceeded(limit: UInt64(limit), actual: bytes)
        }
        _ = try client.uploadSource(sha, bundle: path, contentSHA256: digest)
        return bytes
    }

    /// Returns the blobs sent, and whether the worker had the source already (it then read no pack).
    func uploadTree(_ m: SourceManifest, base: SourceManifest, root: String) throws -> (sent: Int, alreadyPresent: Bool)
    {
        let (delta, newFiles) = Self.delta(from: base, to: m)
        let payload: JSONObject = [
            "source_sha256": .string(m.sourceSHA256.hex), "tree_sha256": .string(m.treeSHA256.hex),
            "tar_bytes": .int(Int64(m.tarBytes)), "base_source_sha256": .string(base.sourceSHA256.hex), "delta": delta,
        ]
        var sent = 0
        // A small delta goes with the request (one round trip). A large one is not sent blind: the worker
        // first names the blobs it lacks (it may have them from another host, or the whole source already),
        // then only those go — at most `optimisticPackBytes` can ever be sent for nothing.
        let deltaBytes = newFiles.reduce(UInt64(0)) { $0 + $1.size }
        var reply = try sendPack(
            payload, deltaBytes <= Self.optimisticPackBytes ? newFiles : [], root: root, sent: &sent)
        if reply["committed"]?.boolValue != true {
            let missing = Set(
                (reply["missing"]?.arrayValue ?? []).compactMap { $0.stringValue.flatMap { SHA256Digest(hex: $0) } })
            let files = m.entries.filter { $0.type == .file && missing.contains($0.sha256) }
            reply = try sendPack(payload, files, root: root, sent: &sent)
            guard reply["committed"]?.boolValue == true else {
                throw TransportError(
                    "the worker still lacks \(reply["missing"]?.arrayValue?.count ?? 0) blob(s) after they were sent")
            }
        }
        return (sent, reply["already_present"]?.boolValue == true)
    }

    private func sendPack(_ payload: JSONObject, _ files: [SourceManifest.Entry], root: String, sent: inout Int) throws
        -> JSONObject
    {
        guard !files.isEmpty else { return try client.uploadTree(payload, pack: nil) }
        let temp = try TempFile(directory: hostStore.bundlesDirectory)
        defer { temp.discard() }
        do {
            _ = try BlobPack.write(files.map { ($0.sha256, $0.size, root + "/" + $0.path) }, to: temp)
        } catch let e as BundleError {
            throw BundleError.io("the tree changed after it was bundled (\(e)); run the command again")
        }
        sent += Set(files.map(\.sha256)).count
        return try client.uploadTree(payload, pack: temp.path)
    }

    /// A temp file for a bundle that is sent and dropped (`<host store>/bundles/.tmp-*`; host gc removes one
    /// left by a crash).
    func newScratch() throws -> TempFile {
        try Syscalls.makeDirectories(hostStore.bundlesDirectory)
        return try hostStore.newBundleTempFile()
    }

    /// The largest delta pack sent before the worker has said what it lacks.
    public static let optimisticPackBytes: UInt64 = 1 << 20

    /// The manifest delta (`upsert`: new or changed entries; `remove`: paths gone) and the file entries
    /// whose contents the base does not have. Both entry lists are in bundle order (path bytes ascending, no
    /// duplicates — every manifest is validated so), so one merge pass finds them.
    static func delta(from base: SourceManifest, to m: SourceManifest) -> (JSONValue, [SourceManifest.Entry]) {
        let old = base.entries
        let new = m.entries
        var baseContents: Set<SHA256Digest>?
        var upsert: [JSONValue] = []
        var files: [SourceManifest.Entry] = []
        var removed: [JSONValue] = []
        func changed(_ e: SourceManifest.Entry) {
            upsert.append(e.json)
            guard e.type == .file else { return }
            if baseContents == nil { baseContents = Set(old.lazy.filter { $0.type == .file }.map(\.sha256)) }
            if !baseContents!.contains(e.sha256) { files.append(e) }
        }
        var i = 0
        var j = 0
        while i < old.count || j < new.count {
            if i < old.count, j < new.count, old[i].path == new[j].path {
                if old[i] != new[j] { changed(new[j]) }
                i += 1
                j += 1
            } else if j == new.count || (i < old.count && old[i].path.utf8.lexicographicallyPrecedes(new[j].path.utf8))
            {
                removed.append(.string(old[i].path))
                i += 1
            } else {
                changed(new[j])
                j += 1
            }
        }
        return (.obj(["upsert": .array(upsert), "remove": .array(removed)]), files)
    }

    func localManifest(_ sha: SHA256Digest) throws -> SourceManifest {
        if let p = prefetched, p.sha == sha, let m = p.manifest() { return m }
        return try SourceManifest(canonicalFile: try DurableFile.read(hostStore.bundleManifestPath(sha)))
    }

    var pushedPath: String { client.stateDirectory + "/pushed.json" }

    /// What this host pushed to the worker, newest first, with the repository each came from
    /// (`{"sources": [{"sha256", "root"}]}`; entries of the older form, bare digests, have no root).
    func remembered() -> [(sha: SHA256Digest, root: String?)] {
        guard let b = try? DurableFile.read(pushedPath), let v = try? JSONParser().parse(b) else { return [] }
        return (v["sources"]?.arrayValue ?? []).compactMap { item in
            if let hex = item.stringValue { return SHA256Digest(hex: hex).map { ($0, nil) } }
            guard let hex = item["sha256"]?.stringValue, let d = SHA256Digest(hex: hex) else { return nil }
            return (d, item["root"]?.stringValue)
        }
    }

    func remember(_ sha: SHA256Digest, root: String) {
        let list =
            [(sha: sha, root: Optional(root))]
            + remembered().filter { $0.sha != sha }.prefix(Self.rememberedSources - 1)
        try? Syscalls.makeDirectories(client.stateDirectory)
        let items = list.map { e in
            JSONValue.obj(["sha256": .string(e.sha.hex), "root": e.root.map { .string($0) } ?? .null])
        }
        _ = try? DurableFile.write(
            JSONValue.obj(["sources": .array(items)]).canonicalBytes, to: pushedPath, durable: false)
    }

    /// The repository a push came from, as a stable key (absolute, symlinks resolved).
    static func rootKey(_ root: String) -> String {
        guard let p = realpath(root, nil) else { return root }
        defer { free(p) }
        return String(cString: p)
    }
}
