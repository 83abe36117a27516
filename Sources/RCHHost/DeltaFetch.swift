import Foundation
import RCHAttestation
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

extension WorkerClient {
    /// Delta fetch (feature `fetch_blobs`): (1) `fetch_blobs {job_id}` → the manifest and the three files it does
    /// not list; (2) only if the host store lacks some of the manifest's blobs, `fetch_blobs {job_id, blobs}` →
    /// a blob pack of exactly those, hashed as it arrives (`content_sha256`) and received blob by blob into the
    /// host store (each must be asked for and hash to its name); (3) the directory is materialised from the host
    /// store and (4) verified exactly like a whole fetch (``verifyFetched(_:manifest:jobID:expected:)``); (5) the
    /// verified set is recorded in the host store (``HostArtifacts``) so its blobs serve the next fetch.
    func fetchDelta(_ jobID: String, into directory: String, expected: AttestationVerifier.Expectation?) throws
        -> Fetched
    {
        let head = try call(.fetch_blobs, ["job_id": .string(jobID)])
        guard head["job_id"]?.stringValue == jobID, let manifest = head["manifest"],
            let files = head["files"]?.objectValue,
            Set(files.keys) == ArtifactManifest.excluded,
            files.members.allSatisfy({ $0.value.stringValue != nil })
        else { throw TransportError("the fetch_blobs reply does not describe job \(jobID)") }
        let artifacts = HostArtifacts(store: hostStore)
        let missing: [SHA256Digest]
        do { missing = try artifacts.missing(manifest) } catch {
            throw ArtifactIntegrityError(errors: [.init(path: "manifest.json", reason: "\(error)")])
        }
        let total = Set(try HostArtifacts.files(manifest).map(\.sha256)).count
        var streamBytes: UInt64 = 0
        if !missing.isEmpty { streamBytes = try receiveBlobs(jobID, missing) }
        // An empty directory given with --into is replaced (the tree appears whole, by one rename).
        if (try? Directory.list(directory))?.isEmpty == true { rmdir(directory) }
        do {
            try artifacts.materialize(
                manifest: manifest,
                extra: files.members.reduce(into: [:]) { $0[$1.key] = Array($1.value.stringValue!.utf8) },
                into: directory)
        } catch {
            throw ArtifactIntegrityError(errors: [.init(path: "<blobs>", reason: "cannot materialise: \(error)")])
        }
        try verifyFetched(directory, manifest: manifest, jobID: jobID, expected: expected)
        if let a = try? JSONParser().parse(try DurableFile.read(directory + "/attestation.json")),
            let key = a["job_key"]?.stringValue.flatMap({ SHA256Digest(hex: $0) }),
            let backend = a["backend"], let cls = backend["executor_class"]?.stringValue,
            let name = backend["name"]?.stringValue, let version = backend["version"]?.stringValue
        {
            artifacts.remember(
                directory, jobKey: key, producer: Producer(executorClass: cls, backend: name, backendVersion: version))
        }
        var f = Fetched(
            directory: directory, streamBytes: streamBytes, fileCount: (try? HostArtifacts.files(manifest).count) ?? 0,
            manifest: manifest)
        f.blobsFetched = missing.count
        f.blobsReused = total - missing.count
        return f
    }

    /// Receives a blob pack of `blobs` into the host store; returns the stream's length.
    private func receiveBlobs(_ jobID: String, _ blobs: [SHA256Digest]) throws -> UInt64 {
        let request = RPCRequest(
            protocolVersion: protocolVersion!, op: .fetch_blobs,
            payload: ["job_id": .string(jobID), "blobs": .array(blobs.map { .string($0.hex) })])
        let temp = try hostStore.newBundleTempFile()  // bundles/: a directory of the store, same filesystem
        defer { temp.discard() }
        let (_, stream) = try receiveFramed(request, jobID: jobID, into: temp)
        let fd = try FileDescriptor.open(FilePath(temp.path), .readOnly)
        defer { try? fd.close() }
        do {
            let r = try BlobPack.receive(fd: fd, compressed: true, wanted: Set(blobs), store: hostStore)
            guard r.blobs == blobs.count else {
                throw StoreError.invalid("the pack holds \(r.blobs) of the \(blobs.count) blobs asked for")
            }
        } catch {
            throw ArtifactIntegrityError(errors: [.init(path: "<blob pack>", reason: "\(error)")])
        }
        return stream.contentLength
    }
}
