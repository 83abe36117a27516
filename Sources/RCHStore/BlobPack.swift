import RCHBundle
import RCHCore
import SystemPackage

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// A blob pack: the stream `upload_tree` sends — a canonical tar (bundle format v1, zstd) whose entries
/// are regular files named by the 64-hex SHA-256 of their content, in ascending name order.
///
/// Invariants: the receiver accepts only names that are digests it asked for (or that the announced
/// manifest references), verifies every blob against its name before staging it, and publishes the batch
/// only after the whole pack was read. Blobs received for a source that is never committed are
/// unreferenced and age out through gc's grace period.
public enum BlobPack {
    /// Writes a pack of `items` (digest, size, file holding the content) into `output`; a file whose
    /// content no longer hashes to its digest aborts (the tree changed after bundling).
    public static func write(
        _ items: [(digest: SHA256Digest, size: UInt64, path: String)], to output: TempFile, level: Int = 3
    ) throws -> UInt64 {
        var seen = Set<SHA256Digest>()
        let unique = items.filter { seen.insert($0.digest).inserted }.sorted { $0.digest.hex < $1.digest.hex }
        let paths = Dictionary(uniqueKeysWithValues: unique.map { ($0.digest, $0.path) })
        let entries = unique.map {
            SourceManifest.Entry(
                path: $0.digest.hex, type: .file, size: $0.size, sha256: $0.digest, executable: false,
                symlinkTarget: nil)
        }
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 1 << 20, alignment: 16)
        defer { buffer.deallocate() }
        let r = try CanonicalTarRebuilder.rebuild(entries: entries, level: level, output: output) { e, sink in
            try FileChunks.read(path: paths[e.sha256]!, buffer: buffer, sink)
        }
        return r.bundleBytes
    }

    public struct Received: Sendable {
        public var blobs = 0
        public var newBlobs = 0
        public var newBytes: UInt64 = 0
        public init() {}
        init(blobs: Int, newBlobs: Int, newBytes: UInt64) {
            self.blobs = blobs
            self.newBlobs = newBlobs
            self.newBytes = newBytes
        }
    }

    /// Reads a pack from `fd` into the store: every entry must be named by a digest in `wanted` and
    /// hash to it. Nothing is published unless the whole pack is valid.
    public static func receive(
        fd: FileDescriptor, compressed: Bool, wanted: Set<SHA256Digest>, store: LocalStore,
        limits: ExtractLimits = ExtractLimits()
    ) throws -> Received {
        let batch = try BlobBatch(blobs: store.blobs)
        var visitor = PackVisitor(batch: batch, wanted: wanted)
        defer { visitor.release() }
        do {
            _ = try BundleReader.read(fd: fd, limits: limits, compressed: compressed, visitor: &visitor)
            try visitor.finish()
        } catch {
            batch.discard()
            throw error
        }
        try batch.commit()
        return Received(blobs: visitor.count, newBlobs: batch.newBlobs, newBytes: batch.newBytes)
    }
}

struct PackVisitor: TarVisitor {
    let wanted: Set<SHA256Digest>
    var inner: IngestVisitor
    var count = 0

    init(batch: BlobBatch, wanted: Set<SHA256Digest>) {
        self.wanted = wanted
        inner = IngestVisitor(batch: batch)
    }

    func release() { inner.release() }

    mutating func beginFile(path: String, executable: Bool, size: UInt64) throws {
        guard let d = SHA256Digest(hex: path), !executable else {
            throw StoreError.invalid("blob pack entry '\(path)' is not named by a digest")
        }
        guard wanted.contains(d) else {
            throw StoreError.invalid("blob pack entry \(path) is not referenced by the announced source")
        }
        try inner.beginFile(path: path, executable: false, size: size)
    }

    mutating func fileData(_ chunk: UnsafeRawBufferPointer) throws { try inner.fileData(chunk) }

    var wantsFileDigests: Bool { true }

    mutating func endFile() throws {
        try inner.endFile()
        count += 1
    }

    mutating func endFile(sha256: SHA256Digest) throws {
        try inner.endFile(sha256: sha256)
        count += 1
    }

    /// Waits for the blobs to be staged; every one must hash to its name (else the batch is discarded).
    mutating func finish() throws {
        try inner.finish()
        if let e = inner.entries.first(where: { $0.sha256.hex != $0.path }) {
            throw StoreError.invalid("blob pack entry \(e.path) does not hash to its name")
        }
    }

    mutating func symlink(path: String, target: String) throws {
        throw StoreError.invalid("blob pack entry '\(path)' is a symlink; packs hold only blobs")
    }
}
