import RCHCore

/// Why the bundler refused a tree, or why a bundle was refused on extraction.
///
/// Every case is `failure_kind=BUNDLER` (exit code 92); messages name the offending path and say
/// what to do about it.
public enum BundleError: LaneError, Equatable {
    /// A path that cannot be represented canonically (invalid UTF-8, control characters, `\`, too long …).
    case invalidPath(path: String, reason: String)
    /// A symlink whose target is absolute, escapes the root, or is not in canonical form.
    case unsafeSymlink(path: String, target: String, reason: String)
    /// Two paths that would be the same file on a case-insensitive, normalisation-insensitive volume (APFS).
    case collision(path: String, other: String)
    /// An entry that a case-/normalisation-insensitive volume would need to be a directory too.
    case pathConflict(path: String, below: String)
    /// A FIFO, socket or device node.
    case unsupportedFileType(path: String, type: String)
    /// A file whose size, mtime or contents changed while it was being read.
    case fileChanged(path: String)
    /// A file that could not be read (permission denied, vanished …).
    case unreadable(path: String, reason: String)
    /// The canonical tar would exceed the configured limit.
    case sizeExceeded(limit: UInt64, actual: UInt64)
    /// A git-index selection problem (not a repository, unmerged path, submodule, missing file …).
    case git(String)
    /// libzstd reported an error or warning.
    case library(operation: String, message: String)
    /// I/O on the output or input failed.
    case io(String)
    /// An archive that is not a canonical v1 bundle, or that tries something unsafe.
    case invalidArchive(String)
    /// The bundle's digest is not the one expected.
    case digestMismatch(expected: String, actual: String)
    /// The archive exceeds an extraction limit (size, entries, ratio, window).
    case limitExceeded(String)
    /// The extraction target is unusable (not empty, a symlink, …).
    case badDestination(path: String, reason: String)

    public var failureKind: FailureKind { .bundler }

    public var failureSubkind: String? {
        switch self {
        case .sizeExceeded: "SIZE_EXCEEDED"
        case .digestMismatch: "INTEGRITY_MISMATCH"
        case .limitExceeded: "LIMIT_EXCEEDED"
        case .invalidArchive: "INVALID_ARCHIVE"
        case .collision, .pathConflict: "PATH_COLLISION"
        case .invalidPath: "INVALID_PATH"
        case .unsafeSymlink: "UNSAFE_SYMLINK"
        case .unsupportedFileType: "UNSUPPORTED_FILE_TYPE"
        case .fileChanged: "FILE_CHANGED"
        case .unreadable: "UNREADABLE"
        case .git: "GIT_INDEX"
        case .library: "LIBRARY"
        case .io: "IO"
        case .badDestination: "BAD_DESTINATION"
        }
    }

    public var description: String {
        switch self {
        case .invalidPath(let p, let r):
            "cannot bundle '\(p)': \(r); rename it or exclude it in .rchignore"
        case .unsafeSymlink(let p, let t, let r):
            "cannot bundle symlink '\(p)' -> '\(t)': \(r); make it a relative link inside the repository or exclude it in .rchignore"
        case .collision(let p, let o):
            "'\(p)' and '\(o)' name the same file on a case-insensitive (APFS) volume; rename one of them"
        case .pathConflict(let p, let b):
            "'\(p)' is a file or symlink, but '\(b)' needs a directory of that name (names compare case- and normalisation-insensitively, as on APFS); rename one of them"
        case .unsupportedFileType(let p, let t):
            "cannot bundle '\(p)': it is a \(t); only regular files and symlinks can be bundled (exclude it in .rchignore)"
        case .fileChanged(let p):
            "'\(p)' changed while it was being bundled; retry when the tree is quiet"
        case .unreadable(let p, let r):
            "cannot read '\(p)': \(r)"
        case .sizeExceeded(let l, let a):
            "the bundle is \(a) bytes, over the limit of \(l) bytes (bundle.max_bytes / --max-bytes); exclude large files in .rchignore or raise the limit"
        case .git(let m): "git index selection failed: \(m)"
        case .library(let op, let m): "\(op) failed: \(m)"
        case .io(let m): m
        case .invalidArchive(let m): "not a valid canonical bundle: \(m)"
        case .digestMismatch(let e, let a):
            "bundle digest mismatch: expected source_sha256 \(e), the archive hashes to \(a); the bundle is corrupt or not the one requested"
        case .limitExceeded(let m): "bundle rejected: \(m)"
        case .badDestination(let p, let r): "cannot extract into '\(p)': \(r)"
        }
    }
}
