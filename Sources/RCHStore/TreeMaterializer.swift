import Foundation
import RCHCore
import SystemPackage

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Writes a tree of blobs into a new directory.
///
/// Protocol: the target must not exist (job directories are never reused); everything is written into
/// a sibling staging directory `.rch-staging-*` (mode 0700 until done): directories first, then files
/// (copied from blobs — verified unless the caller opts out — by `min(cores, 4)` threads), then symlinks
/// last, then one rename makes the tree appear whole. On any error the staging directory is removed.
/// Paths come from validated manifests (canonical, relative, no entry below a symlink).
struct TreeMaterializer {
    struct Item: Sendable {
        enum Kind: Sendable { case file(SHA256Digest, executable: Bool), symlink(String), directory }
        var path: String
        var kind: Kind
    }

    let blobs: BlobStore
    let verify: Bool
    var threads = min(4, max(1, ProcessInfo.processInfo.activeProcessorCount))

    /// Fills `directory` (created here); `after` may add files into the staging directory before it is
    /// renamed into place (used to write rewritten artifacts and the commit marker last).
    func materialize(_ items: [Item], into directory: String, after: ((String) throws -> Void)? = nil) throws {
        var st = stat()
        if lstat(directory, &st) == 0 {
            throw StoreError.invalid("'\(directory)' already exists; a job directory must be new")
        }
        let parent = directoryOf(directory)
        try Syscalls.makeDirectories(parent)
        let staging = parent + "/.rch-staging-" + String(UInt64.random(in: 0...UInt64.max), radix: 36)
        guard mkdir(staging, 0o700) == 0 else {
            throw SystemError("mkdir", path: staging, errno: Errno(rawValue: errno))
        }
        do {
            try fill(items, staging)
            try after?(staging)
            _ = chmod(staging, 0o755)
            guard rename(staging, directory) == 0 else {
                throw SystemError("rename", path: directory, errno: Errno(rawValue: errno))
            }
        } catch {
            removeTree(staging)
            throw error
        }
    }

    private func fill(_ items: [Item], _ root: String) throws {
        var dirs = Set<String>()
        func ensure(_ dir: Substring) throws {
            if dir.isEmpty || dirs.contains(String(dir)) { return }
            if let slash = dir.lastIndex(of: "/") { try ensure(dir[..<slash]) }
            let p = root + "/" + dir
            if mkdir(p, 0o755) != 0 && errno != EEXIST {
                throw SystemError("mkdir", path: p, errno: Errno(rawValue: errno))
            }
            dirs.insert(String(dir))
        }
        var files: [(String, SHA256Digest, Bool)] = []
        var links: [(String, String)] = []
        for item in items {
            if let slash = item.path.lastIndex(of: "/") { try ensure(item.path[..<slash]) }
            switch item.kind {
            case .directory: try ensure(item.path[...])
            case .file(let d, let x): files.append((item.path, d, x))
            case .symlink(let t): links.append((item.path, t))
            }
        }
        // Files in parallel: each worker takes the next index; the first error stops the others.
        let next = Box(0)
        let failure = Box<(any Error)?>(nil)
        let lock = NSLock()
        let group = DispatchGroup()
        for _ in 0..<max(1, min(threads, files.count)) {
            group.enter()
            Thread.detachNewThread { [files] in
                defer { group.leave() }
                let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 1 << 20, alignment: 16)
                defer { buffer.deallocate() }
                while true {
                    lock.lock()
                    let i = next.value
                    next.value += 1
                    let stop = failure.value != nil
                    lock.unlock()
                    if stop || i >= files.count { return }
                    let (path, digest, x) = files[i]
                    do {
                        try blobs.copy(
                            digest, to: root + "/" + path, mode: x ? 0o755 : 0o644, verify: verify, buffer: buffer)
                    } catch {
                        lock.lock()
                        if failure.value == nil { failure.value = error }
                        lock.unlock()
                        return
                    }
                }
            }
        }
        group.wait()
        if let e = failure.value { throw e }
        for (path, target) in links where symlink(target, root + "/" + path) != 0 {
            throw SystemError("symlink", path: path, errno: Errno(rawValue: errno))
        }
    }
}
