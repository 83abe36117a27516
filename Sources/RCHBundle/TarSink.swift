import Foundation
import RCHCore

/// Where the canonical tar stream goes, for the bundler and the rebuilder: it is counted, size-limited,
/// hashed (`source_sha256`) and optionally zstd-compressed, with the work split over two threads.
///
/// - With compression: hashing runs on the producing thread (file reading, tar encoding) and compression
///   plus writing on the ``ChunkPipeline`` thread — the heavier stage gets its own core.
/// - Digest only: the producer reads and writes tar; hashing runs on the pipeline thread.
/// Headers and file data arrive in pieces; they are batched into 1 MiB chunks for the pipeline. Memory is bounded
/// by the pipeline's few chunks, whatever the size of the stream.
///
/// Checkpoints: ``markBoundary()`` at the end of each entry (after its padding, so at a multiple of 512 bytes)
/// saves the hash state there (``checkpoints``, in order). A sink made with `resume` starts from such a state: its
/// byte count and digest are those of the whole stream, of which only the part after the checkpoint is given.
struct TarSink {
    static let chunkSize = 1 << 20
    private var hasher: ResumableSHA256?
    private let remote: RemoteHasher
    private let pipeline: ChunkPipeline
    let maxBytes: UInt64
    private(set) var byteCount: UInt64 = 0
    private var pending: [UInt8]
    private var localCheckpoints: [SHA256Midstate] = []

    init(maxBytes: UInt64, compressor: ZstdCompressor?, resume: SHA256Midstate? = nil) {
        self.maxBytes = maxBytes
        let start = resume.map { ResumableSHA256(resuming: $0) } ?? ResumableSHA256()
        byteCount = resume?.byteCount ?? 0
        remote = RemoteHasher(start)
        if let compressor {
            hasher = start
            pipeline = ChunkPipeline(consume: { try compressor.compress($0) }, finish: { try compressor.finish() })
        } else {
            let r = remote
            pipeline = ChunkPipeline(consume: { r.consume($0) }, finish: { r.drain() })
        }
        pending = pipeline.takeBuffer()
    }

    mutating func consume(_ buf: UnsafeRawBufferPointer) throws {
        byteCount += UInt64(buf.count)
        if maxBytes > 0 && byteCount > maxBytes {
            throw BundleError.sizeExceeded(limit: maxBytes, actual: byteCount)
        }
        hasher?.update(buf)
        pending.append(contentsOf: buf)
        if pending.count >= Self.chunkSize {
            try pipeline.send(pending)
            pending = pipeline.takeBuffer()
        }
    }

    /// ``consume(_:)`` of a file's data that `file` (the file's own digest) hashes too: with the stream hashed
    /// here, both states take the same blocks in one pass (``ResumableSHA256/update(_:_:with:)``).
    mutating func consume(_ buf: UnsafeRawBufferPointer, alsoHashing file: inout ResumableSHA256) throws {
        guard hasher != nil else {
            file.update(buf)
            return try consume(buf)
        }
        byteCount += UInt64(buf.count)
        if maxBytes > 0 && byteCount > maxBytes {
            throw BundleError.sizeExceeded(limit: maxBytes, actual: byteCount)
        }
        ResumableSHA256.update(&hasher!, &file, with: buf)
        pending.append(contentsOf: buf)
        if pending.count >= Self.chunkSize {
            try pipeline.send(pending)
            pending = pipeline.takeBuffer()
        }
    }

    /// Records the hash state at this point of the stream (an entry boundary: a multiple of 512 bytes).
    mutating func markBoundary() {
        if let m = hasher?.midstate {
            localCheckpoints.append(m)
        } else if hasher == nil {
            remote.mark(byteCount)
        }
    }

    /// Flushes, waits for the pipeline, and returns the digest of the whole stream.
    mutating func finish() throws -> SHA256Digest {
        if !pending.isEmpty { try pipeline.send(pending) }
        pending = []
        try pipeline.finish()
        return (hasher ?? remote.hasher).finalize()
    }

    /// The states saved by ``markBoundary()``, in order (complete after ``finish()``).
    var checkpoints: [SHA256Midstate] { hasher == nil ? remote.checkpoints : localCheckpoints }

    /// Stops the pipeline thread after a failure on the producing side (idempotent after ``finish()``).
    func abandon() { pipeline.abandon() }
}

/// The digest-only hasher on the pipeline thread, and the boundaries it must save states at: offsets are
/// marked by the producer before any byte after them is sent, so each is reached by the hashing at the start
/// of a later chunk, inside one, or at the drain.
final class RemoteHasher: @unchecked Sendable {
    private(set) var hasher: ResumableSHA256
    private let lock = NSLock()
    private var marks: [UInt64] = []
    private var nextMark = 0
    private(set) var checkpoints: [SHA256Midstate] = []

    init(_ start: ResumableSHA256) { hasher = start }

    func mark(_ offset: UInt64) {
        lock.lock()
        marks.append(offset)
        lock.unlock()
    }

    func consume(_ chunk: UnsafeRawBufferPointer) {
        var at = 0
        while true {
            save()
            let position = hasher.byteCount
            lock.lock()
            let mark = nextMark < marks.count ? marks[nextMark] : nil
            lock.unlock()
            guard let mark, mark > position, mark < position + UInt64(chunk.count - at) else { break }
            let n = Int(mark - position)
            hasher.update(UnsafeRawBufferPointer(rebasing: chunk[at..<(at + n)]))
            at += n
        }
        hasher.update(UnsafeRawBufferPointer(rebasing: chunk[at...]))
    }

    func drain() { save() }

    /// Saves the state for every mark at the current position.
    private func save() {
        lock.lock()
        defer { lock.unlock() }
        while nextMark < marks.count && marks[nextMark] == hasher.byteCount, let m = hasher.midstate {
            checkpoints.append(m)
            nextMark += 1
        }
    }
}

/// A second thread fed chunks through a bounded queue (`capacity` chunks); `consume` runs on it for each
/// chunk in order, then `finish` once. Errors on that side reach the producer at its next ``send(_:)`` or
/// at ``finish()``.
final class ChunkPipeline: @unchecked Sendable {
    private let condition = NSCondition()
    private var queue: [[UInt8]] = []
    private var free: [[UInt8]] = []
    private var finished = false
    private var stopped = false
    private var failure: (any Error)?
    private let done = DispatchSemaphore(value: 0)
    private let capacity: Int
    private let consumeChunk: (UnsafeRawBufferPointer) throws -> Void
    private let finishStream: () throws -> Void

    init(
        capacity: Int = 4, consume: @escaping (UnsafeRawBufferPointer) throws -> Void,
        finish: @escaping () throws -> Void
    ) {
        self.capacity = capacity
        consumeChunk = consume
        finishStream = finish
        let t = Thread { [unowned self] in self.run() }
        t.stackSize = 1 << 20
        t.start()
    }

    /// An empty chunk buffer to fill (recycled when possible).
    func takeBuffer() -> [UInt8] {
        condition.lock()
        defer { condition.unlock() }
        var b = free.popLast() ?? []
        b.removeAll(keepingCapacity: true)
        if b.capacity < TarSink.chunkSize { b.reserveCapacity(TarSink.chunkSize) }
        return b
    }

    /// Hands a chunk to the thread; blocks while the queue is full.
    func send(_ chunk: [UInt8]) throws {
        condition.lock()
        defer { condition.unlock() }
        while queue.count >= capacity && failure == nil { condition.wait() }
        if let failure { throw failure }
        queue.append(chunk)
        condition.broadcast()
    }

    /// Waits for everything sent to be consumed and `finish` to run.
    func finish() throws {
        condition.lock()
        finished = true
        condition.broadcast()
        condition.unlock()
        waitStopped()
        if let failure { throw failure }
    }

    /// Stops the thread after an error on the producer side.
    func abandon() {
        condition.lock()
        if failure == nil && !stopped { failure = CancellationError() }
        finished = true
        queue.removeAll()
        condition.broadcast()
        condition.unlock()
        waitStopped()
    }

    private func waitStopped() {
        condition.lock()
        if stopped {
            condition.unlock()
            return
        }
        condition.unlock()
        done.wait()
        condition.lock()
        stopped = true
        condition.unlock()
    }

    private func run() {
        while true {
            condition.lock()
            while queue.isEmpty && !finished { condition.wait() }
            if queue.isEmpty || failure != nil {
                condition.unlock()
                break
            }
            let chunk = queue.removeFirst()
            condition.broadcast()
            condition.unlock()
            do {
                try chunk.withUnsafeBytes { try consumeChunk($0) }
            } catch {
                condition.lock()
                failure = error
                condition.broadcast()
                condition.unlock()
                break
            }
            condition.lock()
            if free.count < capacity { free.append(chunk) }
            condition.unlock()
        }
        condition.lock()
        let ok = failure == nil
        condition.unlock()
        if ok {
            do { try finishStream() } catch {
                condition.lock()
                failure = error
                condition.unlock()
            }
        }
        done.signal()
    }
}
