import Foundation
import RCHCore

/// The second stage of bundling: compresses the canonical tar stream and writes the output, on its own thread, fed through a bounded queue of 1 MiB chunks.
///
/// Memory is bounded by `capacity` chunks plus the compressor's state, whatever the bundle size. The
/// producer (file reading, per-file hashing, libarchive) and this stage each keep one core busy.
/// Errors on this side are reported to the producer at its next ``send(_:)`` or at ``finish()``.
final class CompressionPipeline: @unchecked Sendable {
    private let condition = NSCondition()
    private var queue: [[UInt8]] = []
    private var free: [[UInt8]] = []
    private var finished = false
    private var failure: (any Error)?
    private var thread: Thread?
    private let done = DispatchSemaphore(value: 0)
    private let capacity: Int
    private let compressor: ZstdCompressor

    init(compressor: ZstdCompressor, capacity: Int = 4) {
        self.compressor = compressor
        self.capacity = capacity
        let t = Thread { [unowned self] in self.consume() }
        t.stackSize = 1 << 20
        thread = t
        t.start()
    }

    /// An empty chunk buffer to fill (recycled when possible).
    func takeBuffer() -> [UInt8] {
        condition.lock()
        defer { condition.unlock() }
        var b = free.popLast() ?? []
        b.removeAll(keepingCapacity: true)
        if b.capacity < Bundler.chunkSize { b.reserveCapacity(Bundler.chunkSize) }
        return b
    }

    /// Hands a chunk to the compression thread; blocks while the queue is full.
    func send(_ chunk: [UInt8]) throws {
        condition.lock()
        defer { condition.unlock() }
        while queue.count >= capacity && failure == nil { condition.wait() }
        if let failure { throw failure }
        queue.append(chunk)
        condition.broadcast()
    }

    /// Waits for everything sent to be compressed and written.
    func finish() throws {
        condition.lock()
        finished = true
        condition.broadcast()
        condition.unlock()
        done.wait()
        if let failure { throw failure }
    }

    /// Stops the thread after an error on the producer side.
    func abandon() {
        condition.lock()
        if failure == nil { failure = CancellationError() }
        finished = true
        queue.removeAll()
        condition.broadcast()
        condition.unlock()
        done.wait()
    }

    private func consume() {
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
                try chunk.withUnsafeBytes { try compressor.compress($0) }
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
        if failure == nil {
            do { try compressor.finish() } catch {
                condition.lock(); failure = error; condition.unlock()
            }
        }
        done.signal()
    }
}
