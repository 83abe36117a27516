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
