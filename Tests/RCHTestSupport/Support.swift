import Foundation

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// A fresh temporary directory, removed when the value is released.
public final class TempDir {
    public let path: String
    public init() {
        var template = Array((NSTemporaryDirectory() + "/rch-test-XXXXXX").utf8CString)
        let p = template.withUnsafeMutableBufferPointer { mkdtemp($0.baseAddress!) }
        path = String(cString: p!)
    }
    deinit { try? FileManager.default.removeItem(atPath: path) }
    public func sub(_ name: String) -> String { path + "/" + name }
}

/// Builds small trees by hand.
public struct Tree {
    public let root: String
    public init(_ root: String) {
        self.root = root
        try? FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
    }
    @discardableResult
    public func file(_ rel: String, _ content: String = "x", mode: mode_t = 0o644) -> Tree {
        bytes(rel, Array(content.utf8), mode: mode)
    }
    @discardableResult
    public func bytes(_ rel: String, _ content: [UInt8], mode: mode_t = 0o644) -> Tree {
        let p = root + "/" + rel
        try! FileManager.default.createDirectory(
            atPath: (p as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        FileManager.default.createFile(atPath: p, contents: Data(content))
        chmod(p, mode)
        return self
    }
    @discardableResult
    public func link(_ rel: String, _ target: String) -> Tree {
        let p = root + "/" + rel
        try! FileManager.default.createDirectory(
            atPath: (p as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        symlink(target, p)
        return self
    }
    /// A file whose name is given as raw bytes (for invalid UTF-8 and the like).
    public func rawName(_ dir: String, _ name: [UInt8], _ content: String = "x") {
        let d = dir.isEmpty ? root : root + "/" + dir
        try! FileManager.default.createDirectory(atPath: d, withIntermediateDirectories: true)
        let path = Array(d.utf8) + [47] + name + [0]
        let fd = path.withUnsafeBufferPointer {
            open(UnsafeRawPointer($0.baseAddress!).assumingMemoryBound(to: CChar.self), O_CREAT | O_WRONLY, 0o644)
        }
        _ = content.withCString { write(fd, $0, strlen($0)) }
        close(fd)
    }
}

/// Runs a process and captures its output.
public struct Run {
    public var status: Int32
    public var stdout: String
    public var stderr: String

    @discardableResult
    public static func process(_ exe: String, _ args: [String], env: [String: String]? = nil, cwd: String? = nil) throws
        -> Run
    {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: exe)
        p.arguments = args
        if let env { p.environment = env }
        if let cwd { p.currentDirectoryURL = URL(fileURLWithPath: cwd) }
        let out = Pipe()
        let err = Pipe()
        p.standardOutput = out
        p.standardError = err
        try p.run()
        let errHandle = err.fileHandleForReading
        nonisolated(unsafe) var errData = Data()
        let t = Thread { errData = errHandle.readDataToEndOfFile() }
        t.start()
        let o = out.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        while !t.isFinished { usleep(1000) }
        return Run(
            status: p.terminationStatus, stdout: String(decoding: o, as: UTF8.self),
            stderr: String(decoding: errData, as: UTF8.self))
    }

    public static func shell(_ cmd: String, cwd: String? = nil) throws -> Run {
        try process("/bin/sh", ["-c", cmd], cwd: cwd)
    }
}

/// Where the package and its built executables are.
public enum TestPaths {
    /// The package root (for schemas, examples and the built executables).
    public static let packageRoot: String = {
        var url = URL(fileURLWithPath: #filePath)
        for _ in 0..<3 { url.deleteLastPathComponent() }
        return url.path
    }()

    /// Path of a built executable (built by `swift build`, which the test script runs first).
    public static func executable(_ name: String) -> String {
        for dir in [".build/debug", ".build/release"] {
            let p = packageRoot + "/" + dir + "/" + name
            if FileManager.default.isExecutableFile(atPath: p) { return p }
        }
        return packageRoot + "/.build/debug/" + name
    }

    /// Validates a JSON file against `schemas/rch-xcode/<schema>.schema.json` with check-jsonschema.
    public static func validate(_ file: String, schema: String) throws -> (status: Int32, output: String) {
        let r = try Run.process(
            "/usr/bin/env",
            ["check-jsonschema", "--schemafile", packageRoot + "/schemas/rch-xcode/\(schema).schema.json", file])
        return (r.status, r.stdout + r.stderr)
    }
}
