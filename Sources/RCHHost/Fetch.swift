#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import RCHBundle
import RCHCore
import RCHProtocol
import RCHStore

/// Fetched artifacts that failed the host's checks (ARTIFACTS / INTEGRITY_MISMATCH, exit 70).
public struct ArtifactIntegrityError: LaneError {
    public var errors: [ArtifactManifest.IntegrityError]
    public var failureKind: FailureKind { .artifacts }
    public var failureSubkind: String? { "INTEGRITY_MISMATCH" }
    public var description: String {
        "fetched artifacts failed verification (not used): " + errors.prefix(8).map(\.description).joined(separator: "; ")
            + (errors.count > 8 ? " … (\(errors.count) problems)" : "")
    }
}

extension WorkerClient {
    public struct Fetched: Sendable {
        public var directory: String
        public var streamBytes: UInt64
        public var fileCount: Int
        public var manifest: JSONValue
    }

    /// `fetch`: receives the framed stream into a temp file while hashing it, checks `content_sha256`,
    /// extracts it (strict canonical reader) into `directory` (new), creates the manifest's directories,
    /// then runs the host manifest verification. On any failure nothing is left at `directory`.
    public func fetch(_ jobID: String, into directory: String) throws -> Fetched {
        if protocolVersion == nil { try negotiate() }
        let request = RPCRequest(protocolVersion: protocolVersion!, op: .fetch, payload: ["job_id": .string(jobID)])
        try Syscalls.makeDirectories(directoryOf(directory))
        let temp = try TempFile(directory: directoryOf(directory))
        defer { temp.discard() }
        var hasher = StreamingSHA256()
        let reply = try transport.exchange(header: request.headerLine) { header in
            guard header["ok"]?.boolValue == true else { return nil }
            return { chunk in hasher.update(chunk); try temp.write(chunk) }
        }
        let h = reply.header
        guard h["ok"]?.boolValue == true else { _ = try Self.unwrap(h, requestID: request.requestID); throw TransportError("unreachable") }
        guard h["request_id"]?.stringValue == request.requestID, h["job_id"]?.stringValue == jobID, let manifest = h["manifest"] else {
            throw TransportError("the fetch reply does not answer this request")
        }
        let stream = try StreamDescriptor(json: h["stream"])
        let actual = hasher.finalize()
        guard actual == stream.contentSHA256 else {
            throw ArtifactIntegrityError(errors: [.init(path: "<stream>", reason: "content_sha256 \(actual.hex) ≠ declared \(stream.contentSHA256.hex)")])
        }
        let verified: VerifiedBundle
        do { verified = try Extractor().extract(bundle: temp.path, into: directory) } catch {
            throw ArtifactIntegrityError(errors: [.init(path: "<stream>", reason: "not a valid artifact archive: \(error)")])
        }
        var problems: [ArtifactManifest.IntegrityError] = []
        for e in manifest["entries"]?.arrayValue ?? [] where e["type"]?.stringValue == "directory" {
            guard let p = e["path"]?.stringValue, !p.hasPrefix("/"), !p.split(separator: "/").contains("..") else { continue }
            try? Syscalls.makeDirectories(directory + "/" + p)
        }
        if let bytes = try? DurableFile.read(directory + "/manifest.json"), (try? JSONParser().parse(bytes)) != manifest {
            problems.append(.init(path: "manifest.json", reason: "differs from the manifest in the fetch header"))
        }
        problems += ArtifactManifest.verify(directory)
        guard problems.isEmpty else {
            removeTree(directory)
            throw ArtifactIntegrityError(errors: problems)
        }
        return Fetched(directory: directory, streamBytes: stream.contentLength, fileCount: verified.entryCount, manifest: manifest)
    }
}
