import Foundation
import RCHCore

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// One exchange's process (`ssh … rch-worker rpc` or a local `rch-worker rpc`) with its three pipes: the
/// host writes the request to `input`, reads the reply from `output`; stderr goes to an unlinked file.
///
/// A process may be started *before* its request is known (``ProcessTransport/prestart()``): a push starts
/// the process of its next exchange while it bundles, so the SSH session, the login shell and the worker's
/// start-up overlap the tree walk. Rules:
/// - A started process is used by at most one exchange (``SpareExchange/take(argv:)`` removes it), only with
///   the same command line, and only while younger than ``SpareExchange/maxAgeSeconds`` (far below any
///   worker's read timeout, which counts from its start); otherwise it is dropped and a new one started.
/// - A dropped process gets end of input without a single byte: the worker exits at once, silently and
///   successfully (no request, no reply — ``WorkerServer``), and the process is reaped.
final class StartedExchange: @unchecked Sendable {
    let argv: [String]
    let pid: pid_t
    let input: Int32
    let output: Int32
    let errors: Int32
    let startedAt = DispatchTime.now().uptimeNanoseconds

    init(argv: [String]) throws {
        var toChild: [Int32] = [0, 0]
        var fromChild: [Int32] = [0, 0]
        guard pipe(&toChild) == 0 else { throw TransportError("pipe: \(String(cString: strerror(errno)))") }
        guard pipe(&fromChild) == 0 else {
            let e = errno
            [toChild[0], toChild[1]].forEach { close($0) }
            throw TransportError("pipe: \(String(cString: strerror(e)))")
        }
        let errPath = NSTemporaryDirectory() + "/rch-rpc-err-" + String(UInt64.random(in: 0...UInt64.max), radix: 36)
        let errFD = open(errPath, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        unlink(errPath)
        for fd in [toChild[1], fromChild[0]] { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }
        do {
            pid = try Spawn.start(
                argv[0], Array(argv.dropFirst()), stdin: toChild[0], stdout: fromChild[1], stderr: errFD)
        } catch {
            [toChild[0], toChild[1], fromChild[0], fromChild[1], errFD].forEach { close($0) }
            throw TransportError("cannot start \(argv[0]): \(error)")
        }
        close(toChild[0])
        close(fromChild[1])
        self.argv = argv
        input = toChild[1]
        output = fromChild[0]
        errors = errFD
    }

    /// What the process wrote to stderr (its first 4 KiB, trimmed).
    func stderrText() -> String {
        var text = [UInt8](repeating: 0, count: 4096)
        let n = pread(errors, &text, text.count, 0)
        guard n > 0 else { return "" }
        return String(decoding: text[0..<n], as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// Ends an unused process: end of input without a byte, then reaped.
    func drop() {
        close(input)
        close(output)
        close(errors)
        _ = Spawn.wait(pid)
    }
}

/// At most one started, unused exchange process, shared by the copies of a transport.
final class SpareExchange: @unchecked Sendable {
    /// How long a started process waits for its request before it is dropped instead of used.
    static let maxAgeSeconds: UInt64 = 20
    private let lock = NSLock()
    private var spare: StartedExchange?
    private var taken = 0
    /// Exchanges that used a started process (tests).
    var used: Int { lock.withLock { taken } }
    /// Whether a started process is waiting.
    var isWaiting: Bool { lock.withLock { spare != nil } }

    /// Puts `next` in the slot; returns what was there.
    private func swap(_ next: StartedExchange?) -> StartedExchange? {
        lock.withLock {
            defer { spare = next }
            return spare
        }
    }

    /// Starts a process for `argv` unless one is waiting already.
    func prestart(argv: [String]) throws {
        if isWaiting { return }
        swap(try StartedExchange(argv: argv))?.drop()
    }

    /// The waiting process if it was started for `argv` and is young enough (removed either way).
    func take(argv: [String]) -> StartedExchange? {
        guard let p = swap(nil) else { return nil }
        let age = (DispatchTime.now().uptimeNanoseconds - p.startedAt) / 1_000_000_000
        if p.argv == argv && age < Self.maxAgeSeconds {
            lock.withLock { taken += 1 }
            return p
        }
        p.drop()
        return nil
    }

    /// Drops the waiting process, if any.
    func drop() { swap(nil)?.drop() }

    deinit { spare?.drop() }
}
