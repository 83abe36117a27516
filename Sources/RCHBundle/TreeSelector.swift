import Foundation
import RCHCore

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Chooses the entries of a bundle from a directory (see ``SelectionMode``) and enforces every path,
/// type, symlink and collision rule of ``PathRules`` before a single byte of content is read.
public struct TreeSelector: Sendable {
    public var root: String
    public var mode: SelectionMode
    public var ignore: IgnoreRules
    /// `git` mode: the raw root-relative paths git lists (tracked, and untracked but not ignored) and every
    /// directory above them; the walk keeps only these.
    var gitPaths: GitPaths? = nil

    /// - Parameters:
    ///   - root: the repository root.
    ///   - ignore: extra rules; by default the root's `.rchignore` is read (if present).
    public init(root: String, mode: SelectionMode = .worktree, ignore: IgnoreRules? = nil) throws {
        self.root = root
        self.mode = mode
        if let ignore {
            self.ignore = ignore
        } else if let text = try? RCHCoreRead.file(root + "/.rchignore") {
            self.ignore = IgnoreRules(rchignore: text)
        } else {
            self.ignore = IgnoreRules()
        }
        if mode == .git { gitPaths = try GitPaths.list(root: root) }
    }

    /// Selects and validates: ``collect()`` followed by ``validate(_:)``.
    public func select() throws -> Selection {
        let s = try collect()
        try Self.validate(s)
        return s
    }

    /// Whole-selection checks (collisions and directory conflicts, 2.3 of PLAN.md). Separate from
    /// ``collect()`` so that a caller that proves the selection identical to an already validated one
    /// (same `tree_sha256`) can skip them.
    public static func validate(_ s: Selection) throws {
        try PathRules.checkCollisions(bytes: s.entries.map(\.pathBytes))
    }

    /// Walks (or reads the index), applies the per-path rules and sorts; no whole-selection checks.
    public func collect() throws -> Selection {
        var state = State()
        switch mode {
        case .worktree, .git:
            try walkWorktree(state: &state)
        case .gitIndex:
            try selectFromGitIndex(state: &state)
        }
        state.entries.sort { $0.pathBytes.bytesPrecede($1.pathBytes) }
        state.warnings += Self.danglingLinkWarnings(state.entries)
        return Selection(entries: state.entries, exclusions: state.excluded, warnings: state.warnings)
    }

    struct State {
        var entries: [SelectedEntry] = []
        var excluded: [Exclusion] = []
        var warnings: [String] = []
    }

    // MARK: worktree

    /// A directory waiting to be scanned: its on-disk path below the root and the inode seen in its parent.
    struct PendingDirectory {
        var disk: [UInt8]
        var canonical: String
        var inode: UInt64?
    }

    /// Walks the tree with `threads` workers sharing a stack of directories. Each directory is opened by
    /// its path relative to the root (`O_NOFOLLOW|O_DIRECTORY`) and must be the inode its parent listed,
    /// so a directory swapped for a symlink mid-walk is detected, and no descriptors pile up.
    private func walkWorktree(
        state: inout State, threads: Int = min(4, max(1, Int(sysconf(Int32(_SC_NPROCESSORS_ONLN)))))
    ) throws {
        let rootFD = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if rootFD < 0 { throw BundleError.io("cannot open '\(root)': \(String(cString: strerror(errno)))") }
        defer { close(rootFD) }
        let shared = WalkQueue(PendingDirectory(disk: [], canonical: "", inode: nil))
        let results = (0..<threads).map { _ in Box(State()) }
        let group = DispatchGroup()
        for i in 0..<threads {
            let work: @Sendable () -> Void = { [self] in
                while let dir = shared.next() {
                    do {
                        let subdirs = try scan(dir, rootFD: rootFD, state: &results[i].value)
                        shared.finished(adding: subdirs)
                    } catch {
                        shared.fail(error)
                    }
                }
            }
            if i == threads - 1 {
                work()
            } else {
                group.enter()
                Thread.detachNewThread {
                    work()
                    group.leave()
                }
            }
        }
        group.wait()
        if let error = shared.failure { throw error }
        for r in results {
            state.entries += r.value.entries
            state.excluded += r.value.excluded
        }
        state.excluded.sort { $0.path.utf8.lexicographicallyPrecedes($1.path.utf8) }
    }

    /// Lists one directory: appends its files and symlinks to `state`, returns its subdirectories.
    private func scan(_ d: PendingDirectory, rootFD: Int32, state: inout State) throws -> [PendingDirectory] {
        let shown = d.canonical.isEmpty ? "." : d.canonical
        let dirfd =
            d.disk.isEmpty
            ? dup(rootFD) : openat(rootFD, d.disk.cString, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        if dirfd < 0 {
            if errno == ENOENT || errno == ELOOP || errno == ENOTDIR { throw BundleError.fileChanged(path: shown) }
            throw BundleError.unreadable(path: shown, reason: String(cString: strerror(errno)))
        }
        if let inode = d.inode {
            var st = stat()
            guard fstat(dirfd, &st) == 0, UInt64(truncatingIfNeeded: st.st_ino) == inode else {
                close(dirfd)
                throw BundleError.fileChanged(path: shown)
            }
        }
        guard let dir = fdopendir(dirfd) else {
            close(dirfd)
            throw BundleError.unreadable(path: shown, reason: String(cString: strerror(errno)))
        }
        defer { closedir(dir) }
        if d.disk.isEmpty { rewinddir(dir) }
        var subdirs: [PendingDirectory] = []
        let canonical = d.canonical
        while true {
            errno = 0
            guard let ent = readdir(dir) else {
                if errno != 0 { throw BundleError.unreadable(path: shown, reason: String(cString: strerror(errno))) }
                break
            }
            let namePtr = Directory.namePointer(ent)
            let name = Directory.nameBytes(ent)
            if name.count <= 2 && name.allSatisfy({ $0 == 46 }) { continue }
            var isDir: Bool
            var st = stat()
            var haveStat = false
            switch Int32(ent.pointee.d_type) {
            case Int32(DT_DIR): isDir = true
            case Int32(DT_REG), Int32(DT_LNK): isDir = false
            default:
                if fstatat(dirfd, namePtr, &st, AT_SYMLINK_NOFOLLOW) != 0 {
                    throw BundleError.unreadable(
                        path: childDisplay(canonical, Array(name)), reason: String(cString: strerror(errno)))
                }
                haveStat = true
                isDir = (st.st_mode & S_IFMT) == S_IFDIR
            }
            let rawName = String(decoding: name, as: UTF8.self)
            if let why = IgnoreRules.defaultExclusion(name: rawName, isDirectory: isDir, parent: canonical) {
                state.excluded.append(
                    Exclusion(childDisplay(canonical, Array(name)) + (isDir ? "/" : ""), rule: "default: " + why))
                continue
            }
            let cname: String
            if name.count <= PathRules.maxComponentBytes
                && name.allSatisfy({ $0 >= 0x20 && $0 < 0x7F && $0 != 92 && $0 != 47 })
            {
                cname = rawName
            } else {
                do { cname = try PathRules.canonicalComponent(name, parent: canonical) } catch {
                    // A name the path rules refuse can still be excluded (matched on its raw bytes).
                    let raw = canonical.isEmpty ? Array(name) : Array(canonical.utf8) + [47] + name
                    guard let r = ignore.decidingRule(raw, isDirectory: isDir), r.excludes else { throw error }
                    state.excluded.append(
                        Exclusion(
                            childDisplay(canonical, Array(name)) + (isDir ? "/" : ""),
                            rule: ".rchignore:\(r.line): \(r.text)"))
                    continue
                }
            }
            let child = canonical.isEmpty ? cname : canonical + "/" + cname
            let disk = d.disk.isEmpty ? Array(name) : d.disk + [47] + name
            if let r = ignore.decidingRule(Array(child.utf8), isDirectory: isDir), r.excludes {
                state.excluded.append(Exclusion(child + (isDir ? "/" : ""), rule: ".rchignore:\(r.line): \(r.text)"))
                continue
            }
            if let gitPaths, !gitPaths.keeps(disk, isDirectory: isDir) {
                state.excluded.append(Exclusion(child + (isDir ? "/" : ""), rule: "git: ignored"))
                continue
            }
            if isDir {
                subdirs.append(
                    PendingDirectory(disk: disk, canonical: child, inode: UInt64(truncatingIfNeeded: ent.pointee.d_ino))
                )
                continue
            }
            if !haveStat && fstatat(dirfd, namePtr, &st, AT_SYMLINK_NOFOLLOW) != 0 {
                if errno == ENOENT { throw BundleError.fileChanged(path: child) }
                throw BundleError.unreadable(path: child, reason: String(cString: strerror(errno)))
            }
            try PathRules.checkLength(child)
            state.entries.append(
                try entry(path: child, disk: disk, st: st, readLink: { try readLinkAt(dirfd, Array(name)) }))
        }
        return subdirs
    }

    private func entry(path: String, disk: [UInt8], st: stat, readLink: () throws -> [UInt8]) throws -> SelectedEntry {
        let id = FileIdentity(st)
        switch st.st_mode & S_IFMT {
        case S_IFREG:
            return SelectedEntry(
                path: path, pathBytes: Array(path.utf8), diskPath: disk, kind: .file(executable: id.isExecutable),
                identity: id)
        case S_IFLNK:
            let target = try PathRules.canonicalSymlinkTarget(try readLink(), linkPath: path)
            return SelectedEntry(
                path: path, pathBytes: Array(path.utf8), diskPath: disk, kind: .symlink(target: target), identity: id)
        case S_IFIFO: throw BundleError.unsupportedFileType(path: path, type: "FIFO (named pipe)")
        case S_IFSOCK: throw BundleError.unsupportedFileType(path: path, type: "socket")
        case S_IFCHR: throw BundleError.unsupportedFileType(path: path, type: "character device")
        case S_IFBLK: throw BundleError.unsupportedFileType(path: path, type: "block device")
        case S_IFDIR: throw BundleError.unsupportedFileType(path: path, type: "directory where git expects a file")
        default: throw BundleError.unsupportedFileType(path: path, type: "file of unknown type")
        }
    }

    private func readLinkAt(_ dirfd: Int32, _ name: [UInt8]) throws -> [UInt8] {
        var buf = [UInt8](repeating: 0, count: 4096)
        let n = buf.withUnsafeMutableBufferPointer { p in
            readlinkat(
                dirfd, name.cString, UnsafeMutableRawPointer(p.baseAddress!).assumingMemoryBound(to: CChar.self),
                p.count)
        }
        if n < 0 {
            throw BundleError.unreadable(
                path: String(decoding: name, as: UTF8.self), reason: String(cString: strerror(errno)))
        }
        return Array(buf[0..<n])
    }

    private func childDisplay(_ parent: String, _ name: [UInt8]) -> String {
        parent.isEmpty ? PathRules.display(name) : parent + "/" + PathRules.display(name)
    }

    // MARK: git index

    private func selectFromGitIndex(state: inout State) throws {
        let out = try Git.run(["-c", "core.quotePath=false", "ls-files", "-z", "--stage"], in: root)
        var seenDirs: [String: Bool] = [:]  // canonical dir -> excluded?
        var realDirs: Set<[UInt8]> = []  // worktree directories verified to be directories (not links)
        for record in out.split(separator: 0, omittingEmptySubsequences: true) {
            guard let tab = record.firstIndex(of: 9) else { throw BundleError.git("unexpected ls-files output") }
            let meta = String(decoding: record[record.startIndex..<tab], as: UTF8.self).split(separator: " ")
            let raw = Array(record[(tab + 1)...])
            guard meta.count == 3 else { throw BundleError.git("unexpected ls-files output") }
            let shown = PathRules.display(raw)
            if meta[2] != "0" { throw BundleError.git("'\(shown)' is unmerged; resolve the conflict first") }
            if meta[0] == "160000" {
                throw BundleError.git(
                    "'\(shown)' is a submodule; submodules are not bundled (vendor it, or bundle it separately)")
            }
            // Exclusions per component, like the walk.
            let comps = raw.split(separator: 47, omittingEmptySubsequences: false)
            var canonical = ""
            var skip = false
            for (i, comp) in comps.enumerated() {
                let isDir = i < comps.count - 1
                let rawName = String(decoding: comp, as: UTF8.self)
                if isDir, let ex = seenDirs[canonical.isEmpty ? rawName : canonical + "/" + rawName], ex {
                    skip = true
                    break
                }
                if let why = IgnoreRules.defaultExclusion(name: rawName, isDirectory: isDir, parent: canonical) {
                    let key = canonical.isEmpty ? rawName : canonical + "/" + rawName
                    if isDir { seenDirs[key] = true }  // reported once, not once per file below it
                    state.excluded.append(Exclusion(key + (isDir ? "/" : ""), rule: "default: " + why))
                    skip = true
                    break
                }
                let c: String
                do { c = try PathRules.canonicalComponent(comp, parent: canonical) } catch {
                    // A name the path rules refuse can still be excluded (matched on its raw bytes).
                    let rawPath = canonical.isEmpty ? Array(comp) : Array(canonical.utf8) + [47] + Array(comp)
                    guard let r = ignore.decidingRule(rawPath, isDirectory: isDir), r.excludes else { throw error }
                    state.excluded.append(
                        Exclusion(
                            (canonical.isEmpty ? "" : canonical + "/") + PathRules.display(Array(comp))
                                + (isDir ? "/" : ""), rule: ".rchignore:\(r.line): \(r.text)"))
                    skip = true
                    break
                }
                canonical = canonical.isEmpty ? c : canonical + "/" + c
                if isDir, seenDirs[canonical] == nil {
                    let r = ignore.decidingRule(Array(canonical.utf8), isDirectory: true)
                    seenDirs[canonical] = r?.excludes == true
                    if let r, r.excludes {
                        state.excluded.append(Exclusion(canonical + "/", rule: ".rchignore:\(r.line): \(r.text)"))
                        skip = true
                        break
                    }
                }
            }
            if skip { continue }
            if let r = ignore.decidingRule(Array(canonical.utf8), isDirectory: false), r.excludes {
                state.excluded.append(Exclusion(canonical, rule: ".rchignore:\(r.line): \(r.text)"))
                continue
            }
            try PathRules.checkLength(canonical)
            let diskPath = root + "/" + String(decoding: raw, as: UTF8.self)
            // Every parent must be a real directory of the worktree: a parent replaced by a symlink
            // (say to /etc) would otherwise be read through, bringing outside content into the bundle.
            try requireRealParents(raw, shown: shown, checked: &realDirs)
            var st = stat()
            if lstat(diskPath, &st) != 0 {
                throw BundleError.git(
                    "'\(shown)' is in the index but missing from the worktree; restore it or `git rm` it")
            }
            let isLink = (st.st_mode & S_IFMT) == S_IFLNK
            let isReg = (st.st_mode & S_IFMT) == S_IFREG
            switch meta[0] {
            case "120000":
                // core.symlinks=false checks a symlink out as a file whose content is the target.
                let target: [UInt8]
                if isLink {
                    target = try readLinkAt(AT_FDCWD, Array(diskPath.utf8))
                } else if isReg && st.st_size <= 4096 {
                    target = try RCHCoreRead.file(diskPath)
                } else {
                    throw BundleError.git("'\(shown)' is a symlink in the index but not in the worktree")
                }
                let t = try PathRules.canonicalSymlinkTarget(target, linkPath: canonical)
                state.entries.append(
                    SelectedEntry(
                        path: canonical, pathBytes: Array(canonical.utf8), diskPath: raw, kind: .symlink(target: t),
                        identity: FileIdentity(st)))
            case "100644", "100755":
                guard isReg else {
                    throw BundleError.git("'\(shown)' is a regular file in the index but not in the worktree")
                }
                let id = FileIdentity(st)
                state.entries.append(
                    SelectedEntry(
                        path: canonical, pathBytes: Array(canonical.utf8), diskPath: raw,
                        kind: .file(executable: meta[0] == "100755"), identity: id))
            default:
                throw BundleError.git("'\(shown)' has unsupported index mode \(meta[0])")
            }
        }
    }

    /// Checks, once per directory, that each parent of `raw` is a directory (not a symlink) in the worktree.
    private func requireRealParents(_ raw: [UInt8], shown: String, checked: inout Set<[UInt8]>) throws {
        var end = raw.startIndex
        while let slash = raw[end...].firstIndex(of: 47) {
            let dir = Array(raw[..<slash])
            end = slash + 1
            if checked.contains(dir) { continue }
            var st = stat()
            let path = root + "/" + String(decoding: dir, as: UTF8.self)
            guard lstat(path, &st) == 0, st.st_mode & S_IFMT == S_IFDIR else {
                throw BundleError.git(
                    "'\(shown)' is tracked below '\(PathRules.display(dir))', which is not a directory in the worktree "
                        + "(a symlink or a file: a tracked path of another type); restore it (git checkout) or `git rm` the path"
                )
            }
            checked.insert(dir)
        }
    }

    // MARK: checks over the whole selection

    /// Internal symlinks whose target (resolved through other links, at most 40 hops) is neither an
    /// entry nor a directory of the bundle. Such links are allowed, with a warning. `entries` are sorted.
    static func danglingLinkWarnings(_ entries: [SelectedEntry]) -> [String] {
        var links: [String: String] = [:]
        for e in entries { if case .symlink(let t) = e.kind { links[e.path] = t } }
        if links.isEmpty { return [] }
        /// Whether `p` is an entry, or a directory (some entry starts with `p/`), by binary search.
        func exists(_ p: String) -> Bool {
            let key = Array(p.utf8)
            let dirKey = key + [47]
            var lo = 0
            var hi = entries.count
            while lo < hi {
                let mid = (lo + hi) / 2
                if entries[mid].pathBytes.bytesPrecede(key) { lo = mid + 1 } else { hi = mid }
            }
            if lo < entries.count && entries[lo].pathBytes == key { return true }
            hi = entries.count
            while lo < hi {
                let mid = (lo + hi) / 2
                if entries[mid].pathBytes.bytesPrecede(dirKey) { lo = mid + 1 } else { hi = mid }
            }
            return lo < entries.count && entries[lo].pathBytes.starts(with: dirKey)
        }
        func resolves(_ linkPath: String) -> Bool {
            var pending = Array(linkPath.split(separator: "/").map(String.init).reversed())
            var done: [String] = []
            var hops = 0
            while let c = pending.popLast() {
                if c == ".." {
                    if !done.isEmpty { done.removeLast() }
                    continue
                }
                done.append(c)
                let here = done.joined(separator: "/")
                if let t = links[here] {
                    hops += 1
                    if hops > 40 { return false }
                    done.removeLast()
                    pending.append(contentsOf: t.split(separator: "/").map(String.init).reversed())
                } else if !exists(here) {
                    return false
                }
            }
            return true
        }
        return entries.compactMap { e in
            guard case .symlink(let target) = e.kind, !resolves(e.path) else { return nil }
            return "symlink '\(e.path)' -> '\(target)' points to nothing in the bundle"
        }
    }
}

/// The shared work list of a parallel walk: a stack of directories plus the number being scanned.
final class WalkQueue: @unchecked Sendable {
    private let condition = NSCondition()
    private var pending: [TreeSelector.PendingDirectory]
    private var active = 0
    private(set) var failure: (any Error)?

    init(_ first: TreeSelector.PendingDirectory) { pending = [first] }

    /// The next directory to scan, or nil when the walk is over (done or failed).
    func next() -> TreeSelector.PendingDirectory? {
        condition.lock()
        defer { condition.unlock() }
        while pending.isEmpty && active > 0 && failure == nil { condition.wait() }
        guard failure == nil, let d = pending.popLast() else {
            condition.broadcast()
            return nil
        }
        active += 1
        return d
    }

    func finished(adding dirs: [TreeSelector.PendingDirectory]) {
        condition.lock()
        pending += dirs
        active -= 1
        condition.broadcast()
        condition.unlock()
    }

    func fail(_ error: any Error) {
        condition.lock()
        if failure == nil { failure = error }
        active -= 1
        condition.broadcast()
        condition.unlock()
    }
}

extension Array where Element == UInt8 {
    var cString: [CChar] { map { CChar(bitPattern: $0) } + [0] }
}

/// Small file read used during selection (`.rchignore`, git symlink stubs).
enum RCHCoreRead {
    static func file(_ path: String) throws -> [UInt8] {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw BundleError.io("cannot read '\(path)'")
        }
        return Array(data)
    }
}
