import Foundation

/// Runs git for index-based selection.
enum Git {
    /// Runs `git <args>` in `dir` and returns stdout; throws ``BundleError/git(_:)`` with stderr on failure.
    static func run(_ args: [String], in dir: String) throws -> [UInt8] {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = ["git"] + args
        p.currentDirectoryURL = URL(fileURLWithPath: dir)
        let out = Pipe()
        let err = Pipe()
        p.standardOutput = out
        p.standardError = err
        do { try p.run() } catch { throw BundleError.git("cannot run git: \(error)") }
        // Read both pipes fully before waiting so a large index cannot deadlock the pipe.
        let errHandle = err.fileHandleForReading
        nonisolated(unsafe) var errData = Data()
        let group = DispatchGroup()
        group.enter()
        DispatchQueue.global().async {
            errData = errHandle.readDataToEndOfFile()
            group.leave()
        }
        let data = out.fileHandleForReading.readDataToEndOfFile()
        group.wait()
        p.waitUntilExit()
        if p.terminationStatus != 0 {
            let msg = String(decoding: errData, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
            throw BundleError.git(msg.isEmpty ? "git exited with \(p.terminationStatus)" : msg)
        }
        return Array(data)
    }
}

/// What `git` mode keeps: the raw root-relative paths `git ls-files` lists as tracked or as untracked and
/// not ignored, and every directory above them. Unmerged entries, submodules and nested repositories are
/// refused as in `git_index` mode.
struct GitPaths: Sendable {
    var files: Set<[UInt8]> = []
    var directories: Set<[UInt8]> = []

    static func list(root: String) throws -> GitPaths {
        let out = try Git.run(["ls-files", "-z", "--stage", "--others", "--exclude-standard"], in: root)
        var g = GitPaths()
        for record in out.split(separator: 0, omittingEmptySubsequences: true) {
            var path = Array(record)
            if let tab = record.firstIndex(of: 9) {
                // A tracked path: "<mode> <object> <stage>\t<path>".
                let meta = String(decoding: record[record.startIndex..<tab], as: UTF8.self).split(separator: " ")
                path = Array(record[(tab + 1)...])
                let shown = PathRules.display(path)
                guard meta.count == 3 else { throw BundleError.git("unexpected ls-files output") }
                if meta[2] != "0" { throw BundleError.git("'\(shown)' is unmerged; resolve the conflict first") }
                if meta[0] == "160000" {
                    throw BundleError.git(
                        "'\(shown)' is a submodule; submodules are not bundled (vendor it, or bundle it separately)")
                }
            } else if path.last == 47 {
                throw BundleError.git(
                    "'\(PathRules.display(path))' is a nested git repository; add it to .rchignore or vendor it")
            }
            g.files.insert(path)
            var end = path.startIndex
            while let slash = path[end...].firstIndex(of: 47) {
                g.directories.insert(Array(path[..<slash]))
                end = slash + 1
            }
        }
        return g
    }

    /// Whether the walk keeps this on-disk root-relative path.
    func keeps(_ disk: [UInt8], isDirectory: Bool) -> Bool {
        isDirectory ? directories.contains(disk) : files.contains(disk)
    }
}
