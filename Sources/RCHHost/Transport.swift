import Foundation
import RCHCore
import RCHProtocol
import SystemPackage

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Failure to reach a worker or to get a well-formed reply (failure kind SSH, exit 20).
public struct TransportError: LaneError {
    public let message: String
    public init(_ m: String) { message = m }
    public var failureKind: FailureKind { .ssh }
    public var failureSubkind: String? { "CONNECT" }
    public var description: String { message }
}

/// Bytes and round trips one client spent (what `push` prints and the benchmark compares).
public final class WireCounter: @unchecked Sendable {
    public var roundTrips = 0
    public var bytesSent: UInt64 = 0
    public var bytesReceived: UInt64 = 0
    public init() {}
    public var json: JSONValue {
        .obj([
            "round_trips": .int(Int64(roundTrips)), "bytes_sent": .int(Int64(bytesSent)),
            "bytes_received": .int(Int64(bytesReceived)),
            "bytes_total": .int(Int64(bytesSent + bytesReceived)),
        ])
    }
}

/// One request/response exchange with a worker process (local `rch-worker rpc`, or the same behind
/// `ssh`). Every exchange is a new process; with SSH, connection multiplexing makes that cheap.
///
/// Protocol: stdin gets the header line, then the body file (if any), then EOF — written by a helper
/// thread, so a worker that answers early (e.g. PAYLOAD_TOO_LARGE, or "already present") is read at once
/// and the unsent rest is dropped (EPIPE is expected then). stdout is read as one header line, then for
/// framed replies exactly `stream.content_length` bytes into `body`. stderr goes to a temp file and is
/// quoted if the exchange fails.
public struct ProcessTransport: Sendable {
    public var argv: [String]
    public var counter: WireCounter
    /// Bound on a reply header (a fetch header carries the manifest).
    public var maxReplyHeader = 256 << 20
    /// If set, every request and reply header line is also written to `<trace>/NNN.request.json` and
    /// `NNN.reply.json` (debugging; the tests validate them against the schemas).
    public var trace: String?

    /// The process of the next exchange, started early (``prestart()``).
    let spare = SpareExchange()

    public init(argv: [String], counter: WireCounter = WireCounter()) {
        self.argv = argv
        self.counter = counter
    }

    /// Starts the next exchange's process now (see ``StartedExchange``), so that its start-up — with SSH
    /// the session, the login shell and the worker's own — overlaps what the caller does before it sends.
    public func prestart() throws { try spare.prestart(argv: argv) }

    /// Ends a process started by ``prestart()`` that no exchange used.
    public func dropStarted() { spare.drop() }

    public struct Reply {
        public var header: JSONValue
        /// For framed replies: where the body went.
        public var bodyBytes: UInt64
    }

    /// - Parameters:
    ///   - body: a file whose first `length` bytes follow the header.
    ///   - receiveBody: for framed replies, given the header, returns a sink for the body (nil: error reply).
    public func exchange(
        header: [UInt8], body: (path: String, length: UInt64)? = nil,
        receiveBody: ((JSONValue) throws -> ((UnsafeRawBufferPointer) throws -> Void)?)? = nil
    ) throws -> Reply {
        let process = try spare.take(argv: argv) ?? StartedExchange(argv: argv)
        let pid = process.pid
        defer { close(process.errors) }
        signal(SIGPIPE, SIG_IGN)
        let writeFD = process.input
        let counter = self.counter
        counter.roundTrips += 1
        let started = DispatchTime.now().uptimeNanoseconds
        let sentBefore = counter.bytesSent
        let receivedBefore = counter.bytesReceived
        let done = DispatchSemaphore(value: 0)
        let writer = Thread {
            defer {
                close(writeFD)
                done.signal()
            }
            let out = FileDescriptor(rawValue: writeFD)
            do {
                try writeAll(out, header)
                counter.bytesSent += UInt64(header.count)
                if let body {
                    Activity.shared.begin("uploading", totalBytes: body.length)
                    defer { Activity.shared.end("uploading") }
                    // What went on the wire, chunk by chunk (a worker that answers early stops the stream).
                    try sendFile(body.path, to: out, count: body.length) {
                        counter.bytesSent += UInt64($0)
                        Activity.shared.advance(bytes: UInt64($0))
                    }
                }
            } catch {}  // EPIPE: the worker answered early; its reply says why
        }
        writer.start()
        let reader = FrameReader(fd: FileDescriptor(rawValue: process.output))
        defer { close(process.output) }
        func failure(_ what: String) -> TransportError {
            _ = Spawn.wait(pid)
            let stderr = process.stderrText()
            return TransportError(
                "\(what) from \(argv.joined(separator: " ").prefix(200))" + (stderr.isEmpty ? "" : ": \(stderr)"))
        }
        let line: [UInt8]
        do { line = try reader.readHeaderLine(maxBytes: maxReplyHeader) } catch {
            done.wait()
            throw failure("no reply")
        }
        let json: JSONValue
        do { json = try JSONParser().parse(line) } catch {
            done.wait()
            throw failure("malformed reply (\(error))")
        }
        var bodyBytes: UInt64 = 0
        if let receiveBody, json["ok"]?.boolValue == true, let sink = try receiveBody(json) {
            let stream = try StreamDescriptor(json: json["stream"])
            Activity.shared.begin("downloading", totalBytes: stream.contentLength)
            defer { Activity.shared.end("downloading") }
            bodyBytes = try reader.readBody(count: stream.contentLength) { chunk in
                try sink(chunk)
                Activity.shared.advance(bytes: UInt64(chunk.count))
            }
            guard bodyBytes == stream.contentLength else {
                done.wait()
                throw failure("the reply stream ended after \(bodyBytes) of \(stream.contentLength) bytes")
            }
        }
        counter.bytesReceived += reader.bytesRead
        if let trace {
            let n = String(counter.roundTrips + 1000).dropFirst()
            _ = try? DurableFile.write(
                Array(header.prefix { $0 != 10 }), to: "\(trace)/\(n).request.json", durable: false)
            _ = try? DurableFile.write(line, to: "\(trace)/\(n).reply.json", durable: false)
        }
        _ = try? reader.atEnd()
        done.wait()
        _ = Spawn.wait(pid)
        Activity.shared.detail(
            "rpc \(json["ok"]?.boolValue == true ? "ok" : "error") in \((DispatchTime.now().uptimeNanoseconds - started) / 1_000_000) ms: "
                + "sent \(counter.bytesSent - sentBefore) B, received \(counter.bytesReceived - receivedBefore) B")
        return Reply(header: json, bodyBytes: bodyBytes)
    }
}
