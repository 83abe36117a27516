import Foundation
import RCHCore
import RCHProtocol

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// `events.jsonl` of a job: what happened and when, appended as it happens so `tail` can follow it.
///
/// Format (one line per event, `rch-xcode/event@1` in `schemas/`): the RFC 8785 bytes of
/// `{"data":{…},"kind":K,"seq":N,"stage":S,"ts":RFC3339}` and a LF. `seq` counts from 0 with no gaps; a line
/// is written with one `write(2)` on an `O_APPEND` descriptor, so a reader sees whole lines or a partial last
/// line without its LF (which it leaves for the next read). Stages and kinds the runner emits: `job`
/// (`started`, `finished`), `materialize` (`started`, `finished`, `failed`), `execute` (`started`,
/// `finished`), `artifacts` (`committed`); an executor adds its own (`execute` … `stage_end`).
public final class JobEvents: @unchecked Sendable {
    public let path: String
    private let lock = NSLock()
    private var seq: Int64

    /// Opens (creating) the file; `seq` continues after the lines already there.
    public init(path: String) {
        self.path = path
        let existing = (try? DurableFile.read(path)) ?? []
        seq = Int64(existing.lazy.filter { $0 == 10 }.count)
    }

    public func emit(_ stage: String, _ kind: String, _ data: JSONObject = [:]) {
        lock.withLock {
            let line =
                JSONValue.obj([
                    "ts": .string(Timestamp.now()), "stage": .string(stage), "kind": .string(kind), "seq": .int(seq),
                    "data": .object(data),
                ]).canonicalBytes + [10]
            let fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o644)
            guard fd >= 0 else { return }  // events are a record, never a reason to fail a job
            defer { close(fd) }
            if line.withUnsafeBytes({ write(fd, $0.baseAddress, $0.count) }) == line.count { seq += 1 }
        }
    }

    /// Events from index `from` (at most `max`), whole lines only, each parsed strictly: `(events, next)`.
    public static func read(_ path: String, from: Int64, max: Int) throws -> ([JSONValue], Int64) {
        guard let bytes = try? DurableFile.read(path) else {
            if from > 0 { throw RPCError.invalid("event_cursor \(from) is past the last event (none yet)") }
            return ([], 0)
        }
        var lines = bytes.split(separator: 10, omittingEmptySubsequences: false)
        lines.removeLast()  // after the last LF: empty, or a line still being written
        guard from <= Int64(lines.count) else {
            throw RPCError.invalid("event_cursor \(from) is past the last event (\(lines.count) so far)")
        }
        var out: [JSONValue] = []
        for (i, line) in lines.enumerated().dropFirst(Int(from)).prefix(max) {
            guard let v = try? JSONParser().parse(Array(line)), v["seq"]?.intValue == Int64(i) else {
                throw RPCError(.internalError, "events.jsonl line \(i + 1) is not an event this worker writes")
            }
            out.append(v)
        }
        return (out, from + Int64(out.count))
    }
}
