import Foundation
import RCHAttestation
import RCHCore

/// The embedded local store: a directory holding bundles, manifests (and, in later layers, blobs,
/// sources and results). See `store-layout.md` for the normative layout.
///
/// Invariants: every file becomes visible only through ``TempFile`` (temp name in the same directory,
/// fsync, rename, fsync directory); names are derived from validated digests only; a bundle's manifest is
/// published *after* its `.tar.zst`, so a visible manifest always has its bundle.
public struct LocalStore: Sendable {
    public static let formatVersion = 1
    public let root: String
    /// A random identifier made when the store was created (part of the worker's fingerprint).
    public let storeID: String
    /// Hard limit: blob writes fail fast with ``StoreError/storeFull(_:)`` rather than leave less free
    /// space than this on the store's filesystem (0 = no limit).
    public var minFreeBytes: UInt64 = 0

    /// Opens (creating if needed) the store at `root`.
    public init(root: String) throws {
        self.root = root
        try Syscalls.makeDirectories(root)
        try Syscalls.makeDirectories(root + "/bundles")
        storeID = try Self.marker(root)
    }

    /// Opens a store that already exists; a directory without `store.json` is refused (nothing is created).
    public static func existing(root: String) throws -> LocalStore {
        var st = stat()
        guard stat(root + "/store.json", &st) == 0 else { throw StoreError.notAStore(root) }
        return try LocalStore(root: root)
    }

    /// Reads `store.json` (creating it, no-replace, if absent) and returns the store id.
    static func marker(_ root: String) throws -> String {
        let path = root + "/store.json"
        for _ in 0..<2 {
            if let bytes = try? DurableFile.read(path) {
                guard let v = try? JSONParser().parse(bytes), let version = v["format_version"]?.intValue else {
                    throw StoreError.corrupt("\(path) is not a store marker; point --store at a store directory")
                }
                guard version == Int64(formatVersion) else {
                    throw StoreError.unsupportedFormat(found: Int(version), supported: formatVersion)
                }
                return v["store_id"]?.stringValue
                    ?? String(SHA256Digest.of(Array(root.utf8)).hex.prefix(26)).uppercased()
            }
            let id = Identifier.generate()
            let doc = JSONValue.obj([
                "schema_id": .string("rch-xcode/store@1"), "schema_version": .int(1), "store_id": .string(id),
                "format_version": .int(Int64(formatVersion)), "created_at": .string(Timestamp.now()),
            ])
            if try DurableFile.write(doc.canonicalBytes + [10], to: path, replace: false) { return id }
            // Another process created it first: read theirs.
        }
        throw StoreError.corrupt("\(path) cannot be read")
    }

    /// The store used when none is given: `$RCH_STORE`, else `$XDG_DATA_HOME/rch/store`, else
    /// `~/.local/share/rch/store`.
    public static var defaultRoot: String {
        let env = ProcessInfo.processInfo.environment
        if let s = env["RCH_STORE"], !s.isEmpty { return s }
        return UserDirectories.dataHome(env) + "/rch/store"
    }

    public var bundlesDirectory: String { root + "/bundles" }
    public var blobs: BlobStore { BlobStore(storeRoot: root, minFreeBytes: minFreeBytes) }
    public var sourcesDirectory: String { root + "/sources" }
    public var resultsDirectory: String { root + "/results" }
    public var leasesDirectory: String { root + "/leases" }
    public var jobsDirectory: String { root + "/jobs" }
    public var cacheDirectory: String { root + "/cache" }
    /// The worker's private keys (0700): `attestation.ed25519`.
    public var keysDirectory: String { root + "/keys" }

    /// The worker's attestation key, created on first use (see ``AttestationKey``).
    public func attestationKey() throws -> AttestationKey { try AttestationKey.loadOrCreate(directory: keysDirectory) }

    public func bundlePath(_ sha: SHA256Digest) -> String { bundlesDirectory + "/" + sha.hex + ".tar.zst" }
    public func bundleManifestPath(_ sha: SHA256Digest) -> String {
        bundlesDirectory + "/" + sha.hex + ".manifest.json"
    }

    /// Whether the bundle and its manifest are both present.
    public func hasBundle(_ sha: SHA256Digest) -> Bool {
        FileManager.default.fileExists(atPath: bundleManifestPath(sha))
            && FileManager.default.fileExists(atPath: bundlePath(sha))
    }

    /// Whether the manifest of a bundle is present (the `.tar.zst` may not be: see `HostBundler`).
    public func hasBundleManifest(_ sha: SHA256Digest) -> Bool {
        FileManager.default.fileExists(atPath: bundleManifestPath(sha))
    }

    /// A temp file in the bundles directory, for ``publishBundle(_:manifest:)``.
    public func newBundleTempFile() throws -> TempFile { try TempFile(directory: bundlesDirectory) }

    /// Publishes a written bundle under its digest, then its manifest (the commit marker).
    /// An already-present bundle is kept (same digest, same canonical content) and the temp discarded.
    public func publishBundle(_ temp: TempFile, manifest: [UInt8], sha: SHA256Digest) throws {
        try temp.commit(to: bundlePath(sha), replace: false)
        _ = try DurableFile.write(manifest, to: bundleManifestPath(sha), replace: true)
    }
}

/// Store-level failures.
public enum StoreError: LaneError, Equatable {
    case corrupt(String)
    case unsupportedFormat(found: Int, supported: Int)
    /// A blob an entry needs is absent.
    case missingBlob(SHA256Digest)
    /// A blob's bytes do not hash to its name (it was not served).
    case corruptBlob(SHA256Digest)
    /// The source is not in the store (the spec's SOURCE_MISSING).
    case sourceMissing(SHA256Digest)
    /// No usable cached result (reason says why).
    case resultMiss(String)
    /// The same job_id was already used with another job_key.
    case jobIDConflict(jobID: String, existing: String, requested: String)
    /// A blob an entry needed vanished between deduplication and publish (a concurrent gc): retry.
    case retry(String)
    /// The store's filesystem would fall below the configured free-space floor.
    case storeFull(String)
    /// Caller error: bad directory, bad id …
    case invalid(String)
    /// A read-only command was pointed at a directory that is not a store.
    case notAStore(String)
    /// The artifact directory is not a successful, complete job result.
    case notCacheable(String)

    public var failureKind: FailureKind {
        switch self {
        case .missingBlob, .corruptBlob, .corrupt: .artifacts
        case .sourceMissing: .transfer
        case .retry, .storeFull: .workerBusy
        default: .executor
        }
    }

    /// A directory that is not a store is a configuration error (`--store`, `$RCH_WORKER_STORE`, `[worker] store`).
    public var exitCode: Int32 {
        if case .notAStore = self { return CommandExit.config }
        return failureKind.exitCode
    }

    public var failureSubkind: String? {
        switch self {
        case .missingBlob, .corruptBlob, .corrupt: "INTEGRITY_MISMATCH"
        case .sourceMissing: "SOURCE_MISSING"
        case .resultMiss: "CACHE_MISS"
        case .jobIDConflict: "JOB_ID_CONFLICT"
        case .unsupportedFormat: "STORE_FORMAT"
        case .invalid: "INVALID_REQUEST"
        case .notCacheable: "NOT_CACHEABLE"
        case .retry: "RETRY"
        case .storeFull: "STORE_FULL"
        case .notAStore: "NOT_A_STORE"
        }
    }

    public var description: String {
        switch self {
        case .missingBlob(let d): "blob \(d.hex) is missing from the store (run `rch-worker fsck`)"
        case .corruptBlob(let d): "blob \(d.hex) is corrupt on disk and was not served (run `rch-worker fsck --repair`)"
        case .sourceMissing(let d): "source \(d.hex) is not in the store; upload it first"
        case .resultMiss(let r): "no cached result: \(r)"
        case .jobIDConflict(let j, let e, let r):
            "job_id \(j) was already used for job_key \(e); it cannot be reused for \(r) (use a new job_id)"
        case .invalid(let m): m
        case .retry(let m): "\(m); retry the operation"
        case .storeFull(let m): "the store is full: \(m); run `rch-worker gc` or raise [gc] hard limits"
        case .notCacheable(let m): "not cacheable: \(m)"
        case .notAStore(let p):
            "\(p) is not a store (no store.json); check --store, $RCH_WORKER_STORE or [worker] store, or create one with `rch-worker init`"
        case .corrupt(let m): "store is corrupt: \(m)"
        case .unsupportedFormat(let f, let s):
            "store format \(f) is not supported by this version (supports \(s)); use a matching rch version or a new --store"
        }
    }
}
