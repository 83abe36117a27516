import ArgumentParser
import Foundation
import RCHCore

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Output rules shared by every command of both binaries:
/// - stdout carries the result: human text by default, one compact JSON document with `--json` (errors
///   too: `{"ok":false,"error":{…}}`);
/// - stderr carries notices and warnings (not with `-q`), details (only with `-v`), errors (always), and
///   progress — only when stderr is a terminal, not with `-q`, and only for work that lasts over a second.
public struct OutputOptions: ParsableArguments {
    @Flag(help: "Print one compact JSON document on stdout (errors too).")
    public var json = false
    @Flag(name: .shortAndLong, help: "Print only the result and errors: no notices, warnings or progress.")
    public var quiet = false
    @Flag(name: .shortAndLong, help: "Also print details on stderr (each worker call with its time and bytes).")
    public var verbose = false

    public init() {}

    public func validate() throws {
        if quiet && verbose { throw ValidationError("--quiet and --verbose exclude each other; give one") }
    }

    /// Applies the options to this process's console (idempotent).
    public func activate() { Console.shared.configure(quiet: quiet, verbose: verbose) }
}

/// The process's stderr: notices, warnings, details and the progress line, kept from interleaving.
public final class Console: Activity.Observer, @unchecked Sendable {
    public static let shared = Console()

    private let lock = NSLock()
    private var quiet = false
    private var verbose = false
    private var progressShown = false
    private var stopped = false
    private var renderer: Thread?

    public var wantsDetails: Bool { lock.withLock { verbose } }

    /// Sets the levels; attaches to ``Activity`` and starts the progress renderer when stderr is a terminal.
    public func configure(quiet: Bool, verbose: Bool) {
        let start: Bool = lock.withLock {
            self.quiet = quiet
            self.verbose = verbose
            return renderer == nil && !quiet && isatty(2) == 1 && ProcessInfo.processInfo.environment["TERM"] != "dumb"
        }
        Activity.shared.attach(quiet && !verbose ? nil : self)
        if start { startRenderer() }
    }

    /// A notice (root used, resumed run, …): stderr, not with `-q`.
    public func notice(_ s: String) {
        if lock.withLock({ quiet }) { return }
        write("\(Self.program): \(s)\n")
    }

    public func warning(_ s: String) {
        if lock.withLock({ quiet }) { return }
        write("warning: \(s)\n")
    }

    public func detail(_ message: String) { write("\(Self.program): \(message)\n") }

    /// The prefix of notices: the binary's name (`rch-xcode`, `rch-worker`).
    static let program = CommandLine.arguments.first.map { ($0 as NSString).lastPathComponent } ?? "rch"

    public func phaseEnded(_ phase: Activity.Phase) {}

    /// Writes a line to stderr, first erasing a progress line if one is shown.
    public func write(_ s: String) {
        lock.withLock {
            if progressShown {
                FileHandle.standardError.write(Data("\r\u{1B}[K".utf8))
                progressShown = false
            }
            FileHandle.standardError.write(Data(s.utf8))
        }
    }

    /// Delay before the first progress line (1 s; `RCH_PROGRESS_DELAY_MS` changes it, for tests).
    static var delayNanos: UInt64 {
        let ms = ProcessInfo.processInfo.environment["RCH_PROGRESS_DELAY_MS"].flatMap(UInt64.init) ?? 1000
        return ms * 1_000_000
    }

    private func startRenderer() {
        let delay = Self.delayNanos
        let t = Thread { [self] in
            while true {
                usleep(100_000)
                let now = DispatchTime.now().uptimeNanoseconds
                let line = Activity.shared.current.flatMap { p in
                    now - p.startedNanos >= delay ? Self.render(p, now: now) : nil
                }
                lock.withLock {
                    if stopped {
                        return
                    } else if let line {
                        FileHandle.standardError.write(Data(("\r\u{1B}[K" + line).utf8))
                        progressShown = true
                    } else if progressShown {
                        FileHandle.standardError.write(Data("\r\u{1B}[K".utf8))
                        progressShown = false
                    }
                }
            }
        }
        renderer = t
        t.start()
    }

    /// `bundling: 1,204 files, 45.1 MB of 108.0 MB (42%), 61.3 MB/s`.
    static func render(_ p: Activity.Phase, now: UInt64) -> String {
        var s = "\(p.name):"
        if p.files > 0 { s += " \(p.files) files," }
        s += " " + megabytes(p.bytes)
        if let t = p.totalBytes, t > 0 { s += " of \(megabytes(t)) (\(min(100, p.bytes * 100 / t))%)" }
        let seconds = Double(now - p.startedNanos) / 1e9
        if seconds > 0 { s += ", " + megabytes(UInt64(Double(p.bytes) / seconds)) + "/s" }
        return s
    }

    static func megabytes(_ b: UInt64) -> String { String(format: "%.1f MB", Double(b) / 1_000_000) }

    /// Erases the progress line and stops drawing it (at exit).
    public func finish() {
        write("")
        lock.withLock { stopped = true }
    }
}

/// The `main` of both binaries: argument-parser's, plus a JSON document for usage errors under `--json`
/// (errors raised while running print theirs in ``runReportingFailures(_:_:)``).
public enum CommandMain {
    public static func run<C: ParsableCommand>(
        _ type: C.Type, arguments: [String] = Array(CommandLine.arguments.dropFirst())
    ) {
        do {
            var command = try C.parseAsRoot(arguments)
            try command.run()
        } catch {
            let code = C.exitCode(for: error)
            if arguments.contains("--json"), !(error is ExitCode), code != .success {
                let e = JSONValue.obj([
                    "failure_kind": .string("USAGE"), "failure_subkind": .null,
                    "message": .string(C.message(for: error)), "exit_code": .int(Int64(code.rawValue)),
                ])
                print(JSONValue.obj(["ok": .bool(false), "error": e]).canonicalString)
            }
            C.exit(withError: error)
        }
    }
}
