import RCHAttestation
import RCHBundle
import RCHCore
import RCHProtocol
import RCHStore

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Fetched artifacts that failed the host's checks (ARTIFACTS / INTEGRITY_MISMATCH, exit 70).
public struct ArtifactIntegrityError: LaneError {
    public var errors: [ArtifactManifest.IntegrityError]
    public var failureKind: FailureKind { .artifacts }
    public var failureSubkind: String? { "INTEGRITY_MISMATCH" }
    public var description: String {
        "fetched artifacts failed verification (not used): "
            + errors.prefix(8).map(\.description).joined(separator: "; ")
            + (errors.count > 8 ? " … (\(errors.count) problems)" : "")
    }
}

/// The fetched attestation failed verification (ATTESTATION, exit 93); the artifacts were not used.
public struct AttestationFailure: LaneError {
    public var verification: AttestationVerifier.Verification
    public var failureKind: FailureKind { .attestation }
    public var failureSubkind: String? { verification.firstFailure.map { "ATTESTATION_" + $0.name.uppercased() } }
    public var description: String {
        let f = verification.firstFailure
        return
            "the worker's attestation did not verify (\(f?.name ?? "unknown"): \(f?.detail ?? "")); the artifacts were not used"
    }
}

extension WorkerClient {
    public struct Fetched: Sendable {
        public var directory: String
        public var streamBytes: UInt64
        public var fileCount: Int
        public var manifest: JSONValue
        /// Delta fetch: blobs received, and those the host already had (nil for a whole-archive fetch).
        public var blobsFetched: Int?
        public var blobsReused: Int?
    }

    /// `fetch`: receives the framed stream into a temp file while hashing it, checks `content_sha256`,
    /// extracts it (strict canonical reader) into `directory` (new), creates the manifest's directories,
    /// runs the host manifest verification, then verifies the signed attestation against what this host
    /// submitted (`expected`, else the record ``submit(_:)`` kept) and the worker's published key (and the
    /// inventory pin) — see ``AttestationVerifier`` — and writes `attestation_verification.json`.
    /// On any failure nothing is left at `directory` (exit 70 for the artifacts, 93 for the attestation).
    public func fetch(_ jobID: String, into directory: String, expected: AttestationVerifier.Expectation? = nil) throws
        -> Fetched
    {
        if protocolVersion == nil { try negotiate() }
        if has("fetch_blobs") { return try fetchDelta(jobID, into: directory, expected: expected) }
        let request = RPCRequest(protocolVersion: protocolVersion!, op: .fetch, payload: ["job_id": .string(jobID)])
        try Syscalls.makeDirectories(directoryOf(directory))
        let temp = try TempFile(directory: directoryOf(directory))
        defer { temp.discard() }
        let (h, stream) = try receiveFramed(request, jobID: jobID, into: temp)
        guard let manifest = h["manifest"] else { throw TransportError("the fetch reply has no manifest") }
        let verified: VerifiedBundle
        do { verified = try Extractor().extract(bundle: temp.path, into: directory) } catch {
            throw ArtifactIntegrityError(errors: [
                .init(path: "<stream>", reason: "not a valid artifact archive: \(error)")
            ])
        }
        try verifyFetched(directory, manifest: manifest, jobID: jobID, expected: expected)
        return Fetched(
            directory: directory, streamBytes: stream.contentLength, fileCount: verified.entryCount, manifest: manifest)
    }

    /// One framed exchange (`fetch`, `fetch_blobs` with blobs): the stream goes to `temp` while it is hashed;
    /// the reply must answer this request about `jobID`, and the bytes must hash to its `content_sha256`.
    func receiveFramed(_ request: RPCRequest, jobID: String, into temp: TempFile) throws -> (
        header: JSONValue, stream: StreamDescriptor
    ) {
        var hasher = StreamingSHA256()
        let reply = try transport.exchange(header: request.headerLine) { header in
            guard header["ok"]?.boolValue == true else { return nil }
            return { chunk in
                hasher.update(chunk)
                try temp.write(chunk)
            }
        }
        let h = reply.header
        guard h["ok"]?.boolValue == true else {
            _ = try Self.unwrap(h, requestID: request.requestID)
            throw TransportError("unreachable")
        }
        guard h["request_id"]?.stringValue == request.requestID, h["job_id"]?.stringValue == jobID else {
            throw TransportError("the \(request.op.rawValue) reply does not answer this request")
        }
        let stream = try StreamDescriptor(json: h["stream"])
        let actual = hasher.finalize()
        guard actual == stream.contentSHA256, reply.bodyBytes == stream.contentLength else {
            throw ArtifactIntegrityError(errors: [
                .init(path: "<stream>", reason: "content_sha256 \(actual.hex) ≠ declared \(stream.contentSHA256.hex)")
            ])
        }
        return (h, stream)
    }

    /// The checks every fetched directory passes, whichever way its files came: the manifest's directories
    /// exist, `manifest.json` equals the header's, the host manifest verification (§7), then the signed
    /// attestation; writes `attestation_verification.json`. On failure the directory is removed.
    func verifyFetched(
        _ directory: String, manifest: JSONValue, jobID: String, expected: AttestationVerifier.Expectation?
    ) throws {
        var problems: [ArtifactManifest.IntegrityError] = []
        for e in manifest["entries"]?.arrayValue ?? [] where e["type"]?.stringValue == "directory" {
            guard let p = e["path"]?.stringValue, !p.hasPrefix("/"), !p.split(separator: "/").contains("..") else {
                continue
            }
            try? Syscalls.makeDirectories(directory + "/" + p)
        }
        if let bytes = try? DurableFile.read(directory + "/manifest.json"), (try? JSONParser().parse(bytes)) != manifest
        {
            problems.append(.init(path: "manifest.json", reason: "differs from the manifest in the fetch header"))
        }
        problems += ArtifactManifest.verify(directory)
        guard problems.isEmpty else {
            removeTree(directory)
            throw ArtifactIntegrityError(errors: problems)
        }
        let verification = AttestationVerifier.verify(
            attestationBytes: (try? DurableFile.read(directory + "/attestation.json")) ?? [],
            manifestBytes: (try? DurableFile.read(directory + "/manifest.json")) ?? [],
            expected: expected ?? submitted(jobID) ?? .init(jobID: jobID, jobKey: nil, sourceSHA256: nil),
            workerPublicKey: publishedAttestationKey, pinnedFingerprint: worker.attestationPubkeyFingerprint)
        guard verification.verified else {
            removeTree(directory)
            throw AttestationFailure(verification: verification)
        }
        let runID = (try? JSONParser().parse(try DurableFile.read(directory + "/job.json")))?["run_id"]?.stringValue
        _ = try DurableFile.write(
            verification.json(runID: runID, jobID: jobID).canonicalBytes,
            to: directory + "/attestation_verification.json")
    }
}

extension WorkerClient {
    /// The raw attestation public key from the capabilities this host probed (nil if none is published).
    var publishedAttestationKey: [UInt8]? {
        guard let hex = capabilities?["attestation_key"]?["public_key"]?.stringValue else { return nil }
        return Hex.decode(hex, count: 32)
    }

    var submittedDirectory: String { stateDirectory + "/submitted" }

    /// Remembers what this host submitted as `job_id` (so a later `fetch` checks the attestation against it).
    func rememberSubmission(jobID: String, jobKey: SHA256Digest, sourceSHA256: SHA256Digest) {
        guard Identifier.isValid(jobID, .jobID) else { return }
        try? Syscalls.makeDirectories(submittedDirectory)
        let doc = JSONValue.obj([
            "job_id": .string(jobID), "job_key": .string(jobKey.hex), "source_sha256": .string(sourceSHA256.hex),
        ])
        _ = try? DurableFile.write(
            doc.canonicalBytes, to: submittedDirectory + "/" + jobID + ".json", replace: true, durable: false)
    }

    /// What this host submitted as `job_id`, if it remembers.
    func submitted(_ jobID: String) -> AttestationVerifier.Expectation? {
        guard Identifier.isValid(jobID, .jobID),
            let bytes = try? DurableFile.read(submittedDirectory + "/" + jobID + ".json"),
            let v = try? JSONParser().parse(bytes), v["job_id"]?.stringValue == jobID,
            let key = v["job_key"]?.stringValue.flatMap({ SHA256Digest(hex: $0) }),
            let src = v["source_sha256"]?.stringValue.flatMap({ SHA256Digest(hex: $0) })
        else { return nil }
        return .init(jobID: jobID, jobKey: key, sourceSHA256: src)
    }
}
