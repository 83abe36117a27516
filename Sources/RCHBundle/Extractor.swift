import RCHCore
import SystemPackage

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// What a verified bundle contains.
public struct VerifiedBundle: Sendable {
    public var sourceSHA256: SHA256Digest
    public var treeSHA256: SHA256Digest
    public var entryCount: Int
    public var tarBytes: UInt64
}

/// Verifies and extracts canonical bundles (the worker side of the bundle format).
///
/// Protocol: (1) decompress with limits, hash and validate every entry without writing anything;
/// compare `source_sha256` with the expected digest; check collisions; (2) only then decompress again
/// from the same open file, extract into a fresh staging directory next to the target (files first,
/// symlinks last, never through a link: no entry may live below a symlink), and require the second
/// pass to hash to the same digest; (3) rename the staging directory onto the target. On any error the
/// staging directory is removed and the target is untouched.
public struct Extractor: Sendable {
    public var limits: ExtractLimits

    public init(limits: ExtractLimits = ExtractLimits()) { self.limits = limits }

    /// Pass 1 only: hashes and validates a bundle.
    public func verify(bundle: String, expected: SHA256Digest? = nil) throws -> VerifiedBundle {
        let fd = try openBundle(bundle)
        defer { try? fd.close() }
        return try verify(fd: fd, expected: expected)
    }

    /// Verifies `bundle` and extracts it into `target`, which must not exist or be an empty directory.
    @discardableResult
    public func extract(bundle: String, into target: String, expected: SHA256Digest? = nil) throws -> VerifiedBundle {
        try checkDestination(target)
        let fd = try openBundle(bundle)
        defer { try? fd.close() }
        let verified = try verify(fd: fd, expected: expected)

        let parent = directoryOf(target)
        let staging = parent + "/.rch-extract-" + String(UInt64.random(in: 0...UInt64.max), radix: 36)
        guard mkdir(staging, 0o700) == 0 else {
            throw BundleError.badDestination(
                path: target, reason: "cannot create a staging directory: \(String(cString: strerror(errno)))")
        }
        do {
            guard lseek(fd.rawValue, 0, SEEK_SET) == 0 else { throw BundleError.io("cannot rewind '\(bundle)'") }
            var writer = DiskWriter(root: staging)
            let again = try pass(fd: fd, visitor: &writer)
            guard again.digest == verified.sourceSHA256 else {
                throw BundleError.digestMismatch(expected: verified.sourceSHA256.hex, actual: again.digest.hex)
            }
            try writer.createSymlinks()
            _ = chmod(staging, 0o755)
            if rename(staging, target) != 0 {
                throw BundleError.badDestination(path: target, reason: String(cString: strerror(errno)))
            }
        } catch {
            removeTree(staging)
            throw error
        }
        return verified
    }

    private func verify(fd: FileDescriptor, expected: SHA256Digest?) throws -> VerifiedBundle {
        var digests = DigestVisitor()
        let result = try pass(fd: fd, visitor: &digests)
        if let expected, expected != result.digest {
            throw BundleError.digestMismatch(expected: expected.hex, actual: result.digest.hex)
        }
        try PathRules.checkCollisions(result.paths)
        return VerifiedBundle(
            sourceSHA256: result.digest, treeSHA256: SourceManifest.treeDigest(digests.entries),
            entryCount: result.paths.count, tarBytes: result.tarBytes)
    }

    private func pass(fd: FileDescriptor, visitor: inout some TarVisitor) throws -> (
        digest: SHA256Digest, paths: [String], tarBytes: UInt64
    ) {
        let r = try BundleReader.read(fd: fd, limits: limits, visitor: &visitor)
        return (r.sourceSHA256, r.paths, r.tarBytes)
    }

    private func openBundle(_ path: String) throws -> FileDescriptor {
        do { return try FileDescriptor.open(FilePath(path), .readOnly, retryOnInterrupt: true) } catch {
            throw BundleError.io("cannot open bundle '\(path)': \(error)")
        }
    }

    private func checkDestination(_ target: String) throws {
        var st = stat()
        if lstat(target, &st) != 0 {
            if errno == ENOENT { return }
            throw BundleError.badDestination(path: target, reason: String(cString: strerror(errno)))
        }
        if (st.st_mode & S_IFMT) == S_IFLNK {
            throw BundleError.badDestination(path: target, reason: "it is a symlink")
        }
        guard (st.st_mode & S_IFMT) == S_IFDIR else {
            throw BundleError.badDestination(path: target, reason: "it exists and is not a directory")
        }
        guard let d = opendir(target) else {
            throw BundleError.badDestination(path: target, reason: String(cString: strerror(errno)))
        }
        defer { closedir(d) }
        while let e = readdir(d) {
            let name = Array(Directory.nameBytes(e))
            if name != [46] && name != [46, 46] {
                throw BundleError.badDestination(
                    path: target, reason: "it is not empty; extraction needs a new or empty directory")
            }
        }
    }
}

/// Streams a `.tar.zst` bundle through the strict canonical reader (see ``CanonicalTarReader``).
public enum BundleReader {
    public struct Result: Sendable {
        public var sourceSHA256: SHA256Digest
        public var tarBytes: UInt64
        /// Entry paths in bundle order (already checked one by one; run ``PathRules/checkCollisions(_:)``
        /// over them before trusting the whole set).
        public var paths: [String]
        public var compressedBytes: UInt64
        /// The hash state after each entry (same count as `paths`).
        public var checkpoints: [SHA256Midstate] = []
    }

    /// Reads from the current offset of `fd` to its end: a `.tar.zst`, or (`compressed: false`) a bare
    /// canonical tar.
    public static func read(
        fd: FileDescriptor, limits: ExtractLimits, compressed: Bool = true, visitor: inout some TarVisitor
    ) throws -> Result {
        try read(limits: limits, compressed: compressed, visitor: &visitor) { buf in
            do { return try fd.read(into: buf, retryOnInterrupt: true) } catch {
                throw BundleError.io("cannot read the bundle: \(error)")
            }
        }
    }

    /// Reads from `input` (fills the buffer it is given; 0 at end of input) to its end. Errors thrown by
    /// `input` pass through unchanged.
    public static func read(
        limits: ExtractLimits, compressed: Bool = true, visitor: inout some TarVisitor,
        input: @escaping (UnsafeMutableRawBufferPointer) throws -> Int
    ) throws -> Result {
        guard compressed else {
            let raw = Box<UInt64>(0)
            var reader = CanonicalTarReader(limits: limits) { buf in
                let n = try input(buf)
                raw.value += UInt64(n)
                return n
            }
            defer { reader.deallocate() }
            try reader.read(&visitor)
            return Result(
                sourceSHA256: reader.hasher.finalize(), tarBytes: reader.tarBytes, paths: reader.entries,
                compressedBytes: raw.value, checkpoints: reader.checkpoints)
        }
        let zstd = try ZstdDecompressor(maxWindowLog: limits.maxWindowLog, read: input)
        var reader = CanonicalTarReader(limits: limits) { try zstd.decompress(into: $0) }
        reader.compressedBytes = { zstd.compressedBytes }
        defer { reader.deallocate() }
        try reader.read(&visitor)
        return Result(
            sourceSHA256: reader.hasher.finalize(), tarBytes: reader.tarBytes, paths: reader.entries,
            compressedBytes: zstd.compressedBytes, checkpoints: reader.checkpoints)
    }
}

/// Pass 1: per-file digests for `tree_sha256`.
struct DigestVisitor: TarVisitor {
    var entries: [SourceManifest.Entry] = []
    private var hasher = StreamingSHA256()
    private var current: (String, Bool, UInt64)?

    mutating func beginFile(path: String, executable: Bool, size: UInt64) throws {
        hasher = StreamingSHA256()
        current = (path, executable, size)
    }
    mutating func fileData(_ chunk: UnsafeRawBufferPointer) throws { hasher.update(chunk) }
    mutating func endFile() throws {
        guard let (p, x, s) = current else { return }
        entries.append(
            .init(path: p, type: .file, size: s, sha256: hasher.finalize(), executable: x, symlinkTarget: nil))
        current = nil
    }
    mutating func symlink(path: String, target: String) throws {
        entries.append(
            .init(
                path: path, type: .symlink, size: UInt64(target.utf8.count), sha256: .of(target.utf8),
                executable: false, symlinkTarget: target))
    }
}

/// Pass 2: writes files under `root` (created by us, mode 0700) and defers symlinks to the end.
struct DiskWriter: TarVisitor {
    let root: String
    private var made = Set<String>()
    private var fd: Int32 = -1
    private var currentPath = ""
    private var links: [(String, String)] = []

    init(root: String) { self.root = root }

    mutating func beginFile(path: String, executable: Bool, size: UInt64) throws {
        try makeParents(path)
        currentPath = path
        fd = open(root + "/" + path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, executable ? 0o755 : 0o644)
        if fd < 0 { throw BundleError.io("cannot create '\(path)': \(String(cString: strerror(errno)))") }
        _ = fchmod(fd, executable ? 0o755 : 0o644)  // exact mode, whatever the umask
    }

    mutating func fileData(_ chunk: UnsafeRawBufferPointer) throws {
        var off = 0
        while off < chunk.count {
            let n = write(fd, chunk.baseAddress! + off, chunk.count - off)
            if n < 0 {
                if errno == EINTR { continue }
                throw BundleError.io("cannot write '\(currentPath)': \(String(cString: strerror(errno)))")
            }
            off += n
        }
    }

    mutating func endFile() throws {
        close(fd)
        fd = -1
    }

    mutating func symlink(path: String, target: String) throws { links.append((path, target)) }

    mutating func createSymlinks() throws {
        for (path, target) in links {
            try makeParents(path)
            if Glibc_symlink(target, root + "/" + path) != 0 {
                throw BundleError.io("cannot create symlink '\(path)': \(String(cString: strerror(errno)))")
            }
        }
    }

    private mutating func makeParents(_ path: String) throws {
        var prefix = ""
        for comp in path.split(separator: "/").dropLast() {
            prefix = prefix.isEmpty ? String(comp) : prefix + "/" + comp
            if made.contains(prefix) { continue }
            if mkdir(root + "/" + prefix, 0o755) != 0 && errno != EEXIST {
                throw BundleError.io("cannot create directory '\(prefix)': \(String(cString: strerror(errno)))")
            }
            made.insert(prefix)
        }
    }
}

@inline(__always) private func Glibc_symlink(_ t: String, _ p: String) -> Int32 { symlink(t, p) }
