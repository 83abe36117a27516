import Crypto
import RCHCore
import SystemPackage

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// A worker's Ed25519 attestation key.
///
/// File format and rules (`<store>/keys/attestation.ed25519`):
/// - exactly the 32 raw bytes of the private key (seed), nothing else;
/// - mode 0600, owned by the worker's user — a key file readable by group or others is refused (an
///   attestation is only worth what the secrecy of its key is worth);
/// - created on first use through a private temp file published with a no-replace rename, so two
///   processes starting at once end up with the same key (the loser reads the winner's file).
/// The public key is published in capabilities; its fingerprint is SHA-256 of the 32 raw public-key
/// bytes (64 hex), the `worker.fingerprint` of every attestation this worker signs.
public struct AttestationKey: Sendable {
    public static let algorithm = "Ed25519"
    public static let fileName = "attestation.ed25519"

    /// The 32-byte seed (kept as bytes so the key is `Sendable`).
    let seed: [UInt8]
    public let publicKey: [UInt8]

    public init(privateKey: Curve25519.Signing.PrivateKey) {
        seed = Array(privateKey.rawRepresentation)
        publicKey = Array(privateKey.publicKey.rawRepresentation)
    }

    /// A new random key (tests; workers use ``loadOrCreate(directory:)``).
    public static func generate() -> AttestationKey { AttestationKey(privateKey: Curve25519.Signing.PrivateKey()) }

    public var fingerprint: RCHCore.SHA256Digest { Self.fingerprint(ofPublicKey: publicKey) }

    public static func fingerprint(ofPublicKey raw: [UInt8]) -> RCHCore.SHA256Digest { .of(raw) }

    /// Signs `bytes` (the RFC 8785 bytes of a document without its `signature` member).
    public func sign(_ bytes: [UInt8]) throws -> [UInt8] {
        Array(try Curve25519.Signing.PrivateKey(rawRepresentation: seed).signature(for: bytes))
    }

    /// Loads the key in `directory`, creating it (and the directory, 0700) on first use.
    public static func loadOrCreate(directory: String) throws -> AttestationKey {
        let path = directory + "/" + fileName
        if let key = try load(path) { return key }
        try Syscalls.makeDirectories(directory)
        chmod(directory, 0o700)
        let fresh = Curve25519.Signing.PrivateKey()
        let temp = try TempFile(directory: directory, mode: 0o600)
        do {
            try temp.write(Array(fresh.rawRepresentation))
            if try temp.commit(to: path, replace: false) { return AttestationKey(privateKey: fresh) }
        } catch {
            temp.discard()
            throw KeyError(path: path, problem: "cannot create the attestation key: \(error)")
        }
        guard let winner = try load(path) else {
            throw KeyError(path: path, problem: "the key vanished while being created")
        }
        return winner
    }

    /// The key at `path`, nil if there is none; a file that breaks the rules is an error.
    public static func load(_ path: String) throws -> AttestationKey? {
        let fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)
        if fd < 0 {
            if errno == ENOENT { return nil }
            throw KeyError(path: path, problem: "cannot open: \(String(cString: strerror(errno)))")
        }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0, st.st_mode & S_IFMT == S_IFREG else {
            throw KeyError(path: path, problem: "not a regular file")
        }
        guard st.st_mode & 0o077 == 0 else {
            throw KeyError(
                path: path,
                problem:
                    "readable by group or others (mode \(String(st.st_mode & 0o777, radix: 8))); run chmod 600 on it")
        }
        guard st.st_uid == geteuid() else {
            throw KeyError(path: path, problem: "owned by another user (uid \(st.st_uid))")
        }
        guard st.st_size == 32 else {
            throw KeyError(path: path, problem: "must hold exactly 32 bytes, holds \(st.st_size)")
        }
        var raw = [UInt8](repeating: 0, count: 33)
        let n = raw.withUnsafeMutableBytes { read(fd, $0.baseAddress, 33) }
        guard n == 32 else { throw KeyError(path: path, problem: "short read") }
        do {
            return AttestationKey(privateKey: try Curve25519.Signing.PrivateKey(rawRepresentation: raw[0..<32]))
        } catch {
            throw KeyError(path: path, problem: "not an Ed25519 private key: \(error)")
        }
    }
}

/// The attestation key file is unusable (EXECUTOR, subkind `ATTESTATION_KEY`).
public struct KeyError: LaneError {
    public var path: String
    public var problem: String
    public var failureKind: FailureKind { .executor }
    public var failureSubkind: String? { "ATTESTATION_KEY" }
    public var description: String { "the worker's attestation key \(path) is unusable: \(problem)" }
}
