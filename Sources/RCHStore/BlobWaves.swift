import Foundation
import RCHCore
import SystemPackage

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Publishing a large batch in waves while it is still being staged (``BlobBatch/publishInWaves(everyBytes:everyBlobs:)``).
///
/// Invariants:
/// - A wave is a prefix of the blobs staged so far, each already under its digest in the staging directory
///   with all its bytes written. The wave's thread makes the filesystem durable (`syncfs`; Darwin: every
///   staged file was `F_FULLFSYNC`ed when closed) and only *then* renames the wave's blobs to their final
///   names — so, as in a one-shot commit, no blob is visible before its bytes are durable.
/// - One wave at a time: a wave offered while another is being published is refused and the caller keeps
///   accumulating; ``BlobBatch/commit()`` joins the thread before it publishes the rest.
/// - The batch's entry is still published only after ``BlobBatch/commit()``. A batch that fails after a wave
///   leaves that wave's blobs in the store: complete, durable, named by the digest of their own bytes and
///   referenced by nothing — orphans, which gc removes after the grace period like any other.
/// - The renamer is used by one thread at a time: the wave thread, then ``BlobBatch/commit()`` once the
///   thread was joined (the join orders every access).
final class WavePublisher: @unchecked Sendable {
    private let lock = NSCondition()
    private var pending: [SHA256Digest]?
    private var busy = false
    private var stopping = false
    private var failure: (any Error)?
    private let done = DispatchSemaphore(value: 0)
    let renamer: ShardRenamer
    let staging: String
    private var published = 0
    /// Waves published so far (for tests and reports).
    var waves: Int { lock.withLock { published } }

    init(renamer: ShardRenamer, staging: String) {
        self.renamer = renamer
        self.staging = staging
        Thread { [self] in work() }.start()
    }

    /// Hands the wave `make` returns over; false (and `make` is not called) while the previous wave is still
    /// being published or after a failure.
    func offer(_ make: () -> [SHA256Digest]) -> Bool {
        lock.withLock {
            guard !busy, !stopping, failure == nil else { return false }
            pending = make()
            busy = true
            lock.broadcast()
            return true
        }
    }

    /// Waits for the wave in flight and stops the thread; rethrows a wave's failure. Idempotent.
    func finish() throws {
        let wasRunning = lock.withLock {
            let running = !stopping
            stopping = true
            lock.broadcast()
            return running
        }
        if wasRunning { done.wait() }
        if let failure = lock.withLock({ failure }) { throw failure }
    }

    private func work() {
        while true {
            let wave: [SHA256Digest]? = lock.withLock {
                while pending == nil && !stopping { lock.wait() }
                defer { pending = nil }
                return pending
            }
            guard let wave else { break }
            do {
                _ = try Syscalls.syncFilesystem(of: staging)
                try renamer.rename(wave)
            } catch {
                lock.withLock { failure = error }
            }
            lock.withLock {
                busy = false
                published += 1
            }
        }
        done.signal()
    }
}

/// Renames staged blobs (named by their digest in the staging directory) to `<ab>/<hex>` without replacing,
/// relative to open directories: one component looked up on each side, thousands of times per ingest.
final class ShardRenamer {
    let blobs: BlobStore
    private let from: Int32
    private var shardFDs = [Int32](repeating: -1, count: 256)
    private var shards: [String] = []
    /// Blobs that were new to the store.
    private(set) var newBlobs = 0

    init(blobs: BlobStore, staging: String) throws {
        self.blobs = blobs
        from = open(staging, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard from >= 0 else { throw SystemError("open", path: staging, errno: Errno(rawValue: errno)) }
    }

    deinit {
        close(from)
        for fd in shardFDs where fd >= 0 { close(fd) }
    }

    /// Renames each staged blob; an existing final name means the blob is already stored (the staged copy
    /// stays behind and goes with the staging directory).
    func rename(_ digests: some Sequence<SHA256Digest>) throws {
        for d in digests {
            let index = Int(d.bytes[0])
            if shardFDs[index] < 0 {
                let final = blobs.path(d)
                let shard = String(final[..<final.lastIndex(of: "/")!])
                try Syscalls.makeDirectories(shard)
                shardFDs[index] = open(shard, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
                guard shardFDs[index] >= 0 else {
                    throw SystemError("open", path: shard, errno: Errno(rawValue: errno))
                }
                shards.append(shard)
            }
            if try Syscalls.renameNoReplace(d.hex, fromDirectory: from, toDirectory: shardFDs[index]) {
                newBlobs += 1
            }
        }
    }

    /// Makes every rename so far durable: one `syncfs`, or (`eachDirectory`, and on Darwin) an `fsync` of
    /// each touched shard directory.
    func makeDurable(eachDirectory: Bool = false) throws {
        if try eachDirectory || !Syscalls.syncFilesystem(of: blobs.root) {
            for s in shards { try Syscalls.fsyncDirectory(s) }
        }
    }
}
