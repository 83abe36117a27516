import RCHBundle
import RCHCore
import RCHProtocol
import RCHStore
import SystemPackage

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Source ops: `has_source`, `upload_source`, `upload_tree`.
extension WorkerServer {
    static let maxBatch = 100_000

    func hasSource(_ p: JSONObject) throws -> JSONObject {
        try Self.only(p, ["source_sha256", "source_sha256s"], op: "has_source")
        let sources = SourceStore(store: store)
        if let list = p["source_sha256s"] {
            guard let items = list.arrayValue, items.count <= Self.maxBatch else {
                throw RPCError.invalid("payload.source_sha256s must be an array of at most \(Self.maxBatch) digests")
            }
            var digests: [SHA256Digest] = []
            digests.reserveCapacity(items.count)
            for (i, v) in items.enumerated() {
                guard let s = v.stringValue, let d = SHA256Digest(hex: s) else {
                    throw RPCError.invalid("payload.source_sha256s[\(i)] must be 64 lowercase hex characters")
                }
                digests.append(d)
            }
            return ["present": .array(pullingFromTier(digests, sources).map { .bool($0) })]
        }
        let d = try Self.digest(p, "source_sha256")
        return ["source_sha256": .string(d.hex), "exists": .bool(pullingFromTier([d], sources)[0])]
    }

    /// `has_source`'s answer, where the first few digests missing locally are pulled from the shared tier when
    /// it has them (the host puts the source it is pushing first): "present" then means present *now*.
    func pullingFromTier(_ digests: [SHA256Digest], _ sources: SourceStore) -> [Bool] {
        var present = sources.query(digests)
        // The tier is set up (key, HTTP session) only when something is missing: most pushes find their source.
        guard present.contains(false), let shared = WorkerShared(store: store, config: config) else { return present }
        var tries = 0
        for i in present.indices where !present[i] && tries < 4 {
            tries += 1
            if case .pulled = shared.tier.pullSource(digests[i]) { present[i] = sources.has(digests[i]) }
        }
        return present
    }

    /// Receives a stream into a temp file under `incoming/`, checking size limit, exact length, digest
    /// and end of input before returning it.
    func receive(_ stream: StreamDescriptor, _ reader: FrameReader) throws -> TempFile {
        try checkSize(stream)
        try store.blobs.checkSpace(more: stream.contentLength * 2)
        try Syscalls.makeDirectories(store.root + "/incoming")
        let temp = try TempFile(directory: store.root + "/incoming")
        do {
            let body = BodyStream(stream, reader: reader)
            let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 1 << 20, alignment: 16)
            defer { buffer.deallocate() }
            while case let n = try body.read(into: buffer), n > 0 {
                try temp.write(UnsafeRawBufferPointer(rebasing: buffer[0..<n]))
            }
            try body.finish()
            guard lseek(temp.fd.rawValue, 0, SEEK_SET) == 0 else {
                throw SystemError("lseek", path: temp.path, errno: Errno(rawValue: errno))
            }
            return temp
        } catch {
            temp.discard()
            throw error
        }
    }

    /// `max_upload_bytes`, enforced from the header alone (before a byte of the body is read).
    func checkSize(_ stream: StreamDescriptor) throws {
        guard stream.contentLength <= config.maxUploadBytes else {
            throw RPCError(
                .payloadTooLarge,
                "content_length \(stream.contentLength) exceeds this worker's max_upload_bytes \(config.maxUploadBytes)",
                data: ["max_bytes": .int(Int64(config.maxUploadBytes))])
        }
    }

    func uploadSource(_ p: JSONObject, _ reader: FrameReader) throws -> JSONObject {
        try Self.only(p, ["source_sha256", "stream", "resume"], op: "upload_source")
        let sha = try Self.digest(p, "source_sha256")
        let stream = try StreamDescriptor(json: p["stream"])
        if p["resume"] != nil {
            throw RPCError(
                .featureMissing, "resumable uploads (feature upload_resumable) are not offered; send the whole bundle",
                data: ["feature": .string("upload_resumable")])
        }
        try checkSize(stream)
        let sources = SourceStore(store: store)
        if sources.has(sha) {
            // Duplicate = success; the body is not read (the host stops sending when it sees the reply).
            return [
                "source_sha256": .string(sha.hex), "stored": .bool(false), "already_present": .bool(true),
                "next_offset": .int(Int64(stream.contentLength)),
            ]
        }
        // Decoded as it arrives: blobs are staged while the host still sends, and nothing is published
        // before the whole body has been read and its length, end and content_sha256 checked.
        try store.blobs.checkSpace(more: stream.contentLength)
        let body = BodyStream(stream, reader: reader)
        let r: SourceStore.IngestResult
        do {
            r = try sources.ingest(
                expected: sha, compressed: stream.compression == .zstd, beforePublish: body.finish, input: body.read)
        } catch let e as BundleError {
            // A damaged or short transfer is named as such rather than as a bad bundle.
            try body.finish()
            throw e
        }
        WorkerShared.enqueue(.source(sha), store: store, config: config)
        return [
            "source_sha256": .string(sha.hex), "stored": .bool(r.stored), "already_present": .bool(!r.stored),
            "new_blobs": .int(Int64(r.newBlobs)), "new_bytes": .int(Int64(r.newBytes)),
            "entries": .int(Int64(r.entryCount)),
            "next_offset": .int(Int64(stream.contentLength)),
        ]
    }

    /// `upload_tree` (beyond the spec): the manifest — whole, or as a delta against a base source the
    /// worker has — plus optionally a blob pack. Replies with the blobs still missing, or commits.
    func uploadTree(_ p: JSONObject, _ reader: FrameReader) throws -> JSONObject {
        try Self.only(
            p, ["source_sha256", "tree_sha256", "tar_bytes", "base_source_sha256", "entries", "delta", "stream"],
            op: "upload_tree")
        let sha = try Self.digest(p, "source_sha256")
        let tree = try Self.digest(p, "tree_sha256")
        guard case .int(let tarBytes)? = p["tar_bytes"], tarBytes >= 1024 else {
            throw RPCError.invalid("payload.tar_bytes must be an integer ≥ 1024")
        }
        let stream = try p["stream"].map { try StreamDescriptor(json: $0) }
        if let stream { try checkSize(stream) }
        let sources = SourceStore(store: store)
        if sources.has(sha) {
            return [
                "source_sha256": .string(sha.hex), "committed": .bool(true), "already_present": .bool(true),
                "missing": .array([]),
            ]
        }
        let entries: [SourceManifest.Entry]
        var baseManifest: SourceManifest?
        do {
            if p["base_source_sha256"] != nil {
                let base = try Self.digest(p, "base_source_sha256")
                // A committed entry implies its blobs (see SourceStore.query); damage behind the store's back
                // shows up as a missing blob below or as a digest mismatch at commit.
                guard let m = try sources.manifest(base) else {
                    throw RPCError(
                        .sourceMissing, "the base source \(base.hex) is not in the store; send the whole manifest",
                        data: ["source_sha256": .string(base.hex)])
                }
                guard let delta = p["delta"]?.objectValue, p["entries"] == nil else {
                    throw RPCError.invalid("a base_source_sha256 needs payload.delta {upsert, remove} (and no entries)")
                }
                entries = try Self.apply(delta, to: m.entries)
                baseManifest = m
            } else {
                guard let e = p["entries"]?.arrayValue, p["delta"] == nil else {
                    throw RPCError.invalid("payload.entries is required without a base")
                }
                entries = try e.map { try SourceManifest.Entry(json: $0) }
            }
        } catch let e as BundleError { throw RPCError.invalid("the announced tree is invalid: \(e)") }
        // Whole-list validation (order, collisions, tree digest); each entry was checked as it was read.
        let manifest: SourceManifest
        do {
            manifest = try SourceManifest(
                validating: entries, sourceSHA256: sha, treeSHA256: tree, tarBytes: UInt64(tarBytes))
        } catch { throw RPCError.invalid("the announced tree is invalid: \(error)") }
        var received = BlobPack.Received()
        if let stream {
            let temp = try receive(stream, reader)
            defer { temp.discard() }
            let wanted = Set(manifest.entries.lazy.filter { $0.type == .file }.map(\.sha256))
            received = try BlobPack.receive(
                fd: temp.fd, compressed: stream.compression == .zstd, wanted: wanted, store: store)
        }
        // Only contents the base lacks are looked up here; the base's own are checked by the rebuild (a blob
        // lost behind the store's back turns into the full list below).
        let missing = baseManifest.map { sources.missingBlobs(manifest, beyond: $0) } ?? sources.missingBlobs(manifest)
        var reply: JSONObject = [
            "source_sha256": .string(sha.hex), "received_blobs": .int(Int64(received.blobs)),
            "new_blobs": .int(Int64(received.newBlobs)), "new_bytes": .int(Int64(received.newBytes)),
        ]
        func incomplete(_ missing: [SHA256Digest]) -> JSONObject {
            reply["committed"] = .bool(false)
            reply["missing"] = .array(Array(Set(missing)).sorted().map { .string($0.hex) })
            return reply
        }
        guard missing.isEmpty else { return incomplete(missing) }
        let stored: Bool
        do { stored = try sources.commit(manifest, base: baseManifest) } catch let e as StoreError {
            // A blob the rebuild or the publish found gone (lost behind the store's back, or a concurrent gc):
            // the host sends every blob the manifest now lacks.
            switch e {
            case .missingBlob, .retry:
                let missing = sources.missingBlobs(manifest)
                if missing.isEmpty { throw e }
                return incomplete(missing)
            default: throw e
            }
        }
        WorkerShared.enqueue(.source(sha), store: store, config: config)
        reply["committed"] = .bool(true)
        reply["already_present"] = .bool(!stored)
        reply["missing"] = .array([])
        return reply
    }

    /// Applies `{upsert: [entry…], remove: [path…]}` to a base manifest's entries (in bundle order): a
    /// merge of the base, minus removed and replaced paths, with the upserts sorted by path bytes. Every
    /// removed path must be in the base; upserted entries are checked one by one.
    static func apply(_ delta: JSONObject, to base: [SourceManifest.Entry]) throws -> [SourceManifest.Entry] {
        try only(delta, ["upsert", "remove"], op: "upload_tree delta")
        guard let removeList = (delta["remove"] ?? .array([])).arrayValue,
            let upsertList = (delta["upsert"] ?? .array([])).arrayValue
        else {
            throw RPCError.invalid("delta.upsert and delta.remove must be arrays")
        }
        var remove = Set<[UInt8]>()
        for r in removeList {
            guard let path = r.stringValue, remove.insert(Array(path.utf8)).inserted else {
                throw RPCError.invalid("delta.remove must list distinct paths")
            }
        }
        let upserts = try upsertList.map { try SourceManifest.Entry(json: $0) }
            .map { (key: Array($0.path.utf8), entry: $0) }.sorted { $0.key.bytesPrecede($1.key) }
        for i in upserts.indices.dropFirst() where upserts[i - 1].key == upserts[i].key {
            throw RPCError.invalid("delta.upsert names '\(upserts[i].entry.path)' twice")
        }
        var out: [SourceManifest.Entry] = []
        out.reserveCapacity(base.count + upserts.count)
        var j = 0
        var removed = 0
        for e in base {
            let k = Array(e.path.utf8)
            while j < upserts.count && upserts[j].key.bytesPrecede(k) {
                out.append(upserts[j].entry)
                j += 1
            }
            let isRemoved = remove.contains(k)
            if isRemoved { removed += 1 }
            if j < upserts.count && upserts[j].key == k {
                out.append(upserts[j].entry)
                j += 1
            } else if !isRemoved {
                out.append(e)
            }
        }
        out.append(contentsOf: upserts[j...].map(\.entry))
        guard removed == remove.count else {
            throw RPCError.invalid("delta.remove names a path the base does not have")
        }
        return out
    }
}
