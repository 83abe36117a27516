import RCHCore

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// The host's content-addressed artifact store: fetched artifact files kept as blobs of the host store, so a
/// later fetch asks the worker only for the blobs the host lacks (`fetch_blobs`, PLAN §13.4).
///
/// Rules: blobs enter only through a verified blob pack (``BlobPack/receive(fd:compressed:wanted:store:limits:)``:
/// each named by, and hashing to, a digest the manifest lists); a run's artifact directory is materialised
/// from them into a new directory (verified copies, then one rename) and then verified exactly like a whole
/// fetch; after that the set is recorded as an entry of namespace `fetched` (so gc of the host store keeps
/// its blobs while the entry lives, and evicts both by age and size like the worker's results).
public struct HostArtifacts: Sendable {
    public let store: LocalStore
    public static let namespace = "fetched"

    public init(store: LocalStore) { self.store = store }

    /// The file entries of a fetch manifest: path, digest, size; refused if the manifest is malformed.
    public static func files(_ manifest: JSONValue) throws -> [(path: String, sha256: SHA256Digest, size: UInt64)] {
        try (manifest["entries"]?.arrayValue ?? []).compactMap { e in
            guard e["type"]?.stringValue == "file" else { return nil }
            guard let path = e["path"]?.stringValue, let size = e["size"]?.intValue, size >= 0,
                let sha = e["sha256"]?.stringValue.flatMap({ SHA256Digest(hex: $0) })
            else { throw StoreError.invalid("the fetch manifest has a malformed file entry") }
            return (path, sha, UInt64(size))
        }
    }

    /// The distinct digests of the manifest's files that the host store lacks.
    public func missing(_ manifest: JSONValue) throws -> [SHA256Digest] {
        var seen = Set<SHA256Digest>()
        return try Self.files(manifest).map(\.sha256).filter { seen.insert($0).inserted && !store.blobs.has($0) }
    }

    /// Creates `directory` (it must not exist) from the host's blobs: the manifest's directories and files,
    /// plus `extra` (name → exact bytes: the files the manifest does not list).
    public func materialize(manifest: JSONValue, extra: [String: [UInt8]], into directory: String) throws {
        var items: [TreeMaterializer.Item] = []
        for e in manifest["entries"]?.arrayValue ?? [] where e["type"]?.stringValue == "directory" {
            if let p = e["path"]?.stringValue { items.append(.init(path: p, kind: .directory)) }
        }
        for f in try Self.files(manifest) {
            items.append(.init(path: f.path, kind: .file(f.sha256, executable: false)))
        }
        try TreeMaterializer(blobs: store.blobs, verify: true).materialize(items, into: directory) { staging in
            for (name, bytes) in extra.sorted(by: { $0.key < $1.key }) {
                _ = try DurableFile.write(bytes, to: staging + "/" + name, durable: false)
            }
        }
    }

    /// Records a verified artifact directory (so its blobs stay referenced); failures are not fatal.
    @discardableResult
    public func remember(_ directory: String, jobKey: SHA256Digest, producer: Producer) -> Bool {
        (try? ResultStore(store: store).record(directory, jobKey: jobKey, namespace: Self.namespace, producer: producer))
            != nil
    }
}
