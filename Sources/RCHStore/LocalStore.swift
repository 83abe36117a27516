import Foundation
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

    /// Opens (creating if needed) the store at `root`.
    public init(root: String) throws {
        self.root = root
        try Syscalls.makeDirectories(root)
        try Syscalls.makeDirectories(bundlesDirectory)
        let marker = root + "/store.json"
        if FileManager.default.fileExists(atPath: marker) {
            let text = try DurableFile.read(marker)
            guard let obj = try? JSONSerialization.jsonObject(with: Data(text)) as? [String: Any],
                  let v = obj["format_version"] as? Int else {
                throw StoreError.corrupt("\(marker) is not a store marker; point --store at a store directory")
            }
            guard v == Self.formatVersion else {
                throw StoreError.unsupportedFormat(found: v, supported: Self.formatVersion)
            }
        } else {
            let marker_ = JSONValue.obj([
                "schema_id": .string("rch-xcode/store@1"), "schema_version": .int(1),
                "format_version": .int(Int64(Self.formatVersion)), "created_at": .string(Timestamp.now()),
            ])
            _ = try DurableFile.write(marker_.canonicalBytes + [10], to: marker, replace: false)
        }
    }

    /// The store used when none is given: `$RCH_STORE`, else `$XDG_DATA_HOME/rch/store`, else
    /// `~/.local/share/rch/store`.
    public static var defaultRoot: String {
        let env = ProcessInfo.processInfo.environment
        if let s = env["RCH_STORE"], !s.isEmpty { return s }
        if let x = env["XDG_DATA_HOME"], !x.isEmpty { return x + "/rch/store" }
        return NSHomeDirectory() + "/.local/share/rch/store"
    }

    public var bundlesDirectory: String { root + "/bundles" }
    public var cacheDirectory: String { root + "/cache" }

    public func bundlePath(_ sha: SHA256Digest) -> String { bundlesDirectory + "/" + sha.hex + ".tar.zst" }
    public func bundleManifestPath(_ sha: SHA256Digest) -> String { bundlesDirectory + "/" + sha.hex + ".manifest.json" }

    /// Whether the bundle and its manifest are both present.
    public func hasBundle(_ sha: SHA256Digest) -> Bool {
        FileManager.default.fileExists(atPath: bundleManifestPath(sha)) && FileManager.default.fileExists(atPath: bundlePath(sha))
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

    public var failureKind: FailureKind { .executor }
    public var description: String {
        switch self {
        case .corrupt(let m): "store is corrupt: \(m)"
        case .unsupportedFormat(let f, let s):
            "store format \(f) is not supported by this version (supports \(s)); use a matching rch version or a new --store"
        }
    }
}
