import Foundation
import RCHCore

/// Stages the files of one ingest on a thread of its own while the caller goes on decoding the stream
/// (reading, decompression, tar parsing and hashing — the tar's hash and each file's, in one pass — stay on
/// the caller's thread): an upload is decoded as it arrives on one core and its blobs are written on another.
///
/// Invariants:
/// - Only the pipeline's thread touches the batch between `init` and the return of ``finish()`` or
///   ``abandon()``; the caller commits or discards the batch only after that.
/// - File data is copied into a fixed pool of buffers (`buffers × bufferSize` bytes, whatever the tree);
///   a caller that runs ahead waits for a free buffer.
/// - Each file is staged under the digest the caller computed from the very bytes it hands over (the
///   reader's pass, ``ResumableSHA256/update(_:_:with:)``); digests come back in file order, one per file.
/// - A failure on the pipeline's thread (e.g. the disk is full) stops its work; the caller gets the error
///   at its next call, and nothing is published (the batch is discarded by its owner).
final class BlobPipeline: @unchecked Sendable {
    private enum Kind { case small, largeBegin, largeData, largeEnd }
    private struct Segment {
        var kind: Kind
        var start: Int
        var count: Int
        var digest: SHA256Digest? = nil
    }
    private final class Buffer {
        let bytes: UnsafeMutableRawBufferPointer
        var used = 0
        var segments: [Segment] = []
        init(size: Int) { bytes = .allocate(byteCount: size, alignment: 16) }
        deinit { bytes.deallocate() }
    }

    private let batch: BlobBatch
    private let bufferSize: Int
    private let lock = NSCondition()
    private var free: [Buffer]
    private var queued: [Buffer?] = []  // nil: no more work
    private var failure: (any Error)?
    private var digests: [SHA256Digest] = []
    private var stopped = false
    private let done = DispatchSemaphore(value: 0)
    // Caller side.
    private var current: Buffer
    private var fileStart = 0
    private var fileIsLarge = false

    init(batch: BlobBatch, buffers: Int = 8, bufferSize: Int = 1 << 20) {
        self.batch = batch
        self.bufferSize = bufferSize
        free = (1..<buffers).map { _ in Buffer(size: bufferSize) }
        current = Buffer(size: bufferSize)
        Thread { [self] in work() }.start()
    }

    // MARK: caller side

    func beginFile(size: UInt64) throws {
        fileIsLarge = size > UInt64(bufferSize)
        if fileIsLarge {
            current.segments.append(Segment(kind: .largeBegin, start: current.used, count: 0))
        } else if current.used + Int(size) > bufferSize {
            try submit()
        }
        fileStart = current.used
    }

    func fileData(_ chunk: UnsafeRawBufferPointer) throws {
        var rest = chunk
        while !rest.isEmpty {
            if current.used == bufferSize {
                guard fileIsLarge else { throw StoreError.invalid("a file's data is longer than its announced size") }
                current.segments.append(Segment(kind: .largeData, start: fileStart, count: current.used - fileStart))
                try submit()
                fileStart = 0
            }
            let n = min(rest.count, bufferSize - current.used)
            UnsafeMutableRawBufferPointer(rebasing: current.bytes[current.used..<(current.used + n)])
                .copyMemory(from: UnsafeRawBufferPointer(rebasing: rest[0..<n]))
            current.used += n
            rest = UnsafeRawBufferPointer(rebasing: rest[n...])
        }
    }

    /// Ends the file whose bytes hash to `digest` (computed by the caller from the bytes it handed over).
    func endFile(digest: SHA256Digest) {
        if fileIsLarge {
            current.segments.append(Segment(kind: .largeData, start: fileStart, count: current.used - fileStart))
            current.segments.append(Segment(kind: .largeEnd, start: current.used, count: 0, digest: digest))
        } else {
            current.segments.append(
                Segment(kind: .small, start: fileStart, count: current.used - fileStart, digest: digest))
        }
        fileIsLarge = false
    }

    /// Waits for every file to be staged; their digests in file order.
    func finish() throws -> [SHA256Digest] {
        if !current.segments.isEmpty { try submit() }
        stop()
        if let failure { throw failure }
        return digests
    }

    /// Stops the thread without waiting for the rest of the work (the caller failed); idempotent.
    func abandon() {
        lock.withLock { failure = failure ?? CancellationError() }
        stop()
    }

    private func stop() {
        let wasRunning = lock.withLock {
            let running = !stopped
            if running {
                stopped = true
                queued.append(nil)
                lock.broadcast()
            }
            return running
        }
        if wasRunning { done.wait() }
    }

    /// Hands the current buffer over and takes a free one (waiting if all are in flight).
    private func submit() throws {
        let next: Buffer = try lock.withLock {
            if let failure { throw failure }
            queued.append(current)
            lock.broadcast()
            while free.isEmpty { lock.wait() }
            return free.removeLast()
        }
        next.used = 0
        next.segments.removeAll(keepingCapacity: true)
        current = next
    }

    // MARK: the pipeline's thread

    private func work() {
        var large: StagedBlob?
        while true {
            let item: Buffer? = lock.withLock {
                while queued.isEmpty { lock.wait() }
                return queued.removeFirst()
            }
            guard let buffer = item else { break }
            if lock.withLock({ failure == nil }) {
                do { try stage(buffer, &large) } catch { lock.withLock { failure = error } }
            }
            lock.withLock {
                free.append(buffer)
                lock.broadcast()
            }
        }
        done.signal()
    }

    private func stage(_ buffer: Buffer, _ large: inout StagedBlob?) throws {
        for s in buffer.segments {
            let bytes = UnsafeRawBufferPointer(rebasing: buffer.bytes[s.start..<(s.start + s.count)])
            switch s.kind {
            case .small: digests.append(try batch.add(bytes, hashedAs: s.digest!))
            case .largeBegin: large = try batch.stream(hashing: false)
            case .largeData: try large!.write(bytes)
            case .largeEnd:
                digests.append(try large!.finish(hashedAs: s.digest!))
                large = nil
            }
        }
    }
}
