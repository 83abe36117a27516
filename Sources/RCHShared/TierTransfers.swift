import Foundation
import RCHCore
import RCHS3
import RCHStore
import SystemPackage

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Blob transfers between the local store and the tier, `concurrency` at a time.
///
/// Downloads land in `<store>/incoming/.tmp-tier-<random>` (same filesystem as the blobs), are hashed and
/// compared with the digest they were requested by, and only then adopted into the caller's batch; a
/// mismatch (a flipped byte in the tier, a truncated object) is counted as `corrupt`, logged, and the whole
/// pull is a miss — nothing of it is stored. Uploads stream the local blob file with its digest signed.
extension SharedTier {
    func download(_ digests: [SHA256Digest], into batch: BlobBatch, what: String) throws -> Pull {
        let wanted = Array(Set(digests)).filter { !store.blobs.has($0) }
        let incoming = store.root + "/incoming"
        try Syscalls.makeDirectories(incoming)
        struct Got { var path: String, digest: SHA256Digest, size: UInt64 }
        let results = Mutex<[Result<Got?, Error>]>([])
        parallel(wanted.count) { i in
            let d = wanted[i]
            let temp = incoming + "/.tmp-tier-" + String(UInt64.random(in: 0...UInt64.max), radix: 36)
            let r: Result<Got?, Error> = Result {
                guard try self.client.download(self.layout.blob(d), to: temp) else { return nil }
                let fd = try FileDescriptor.open(temp, .readOnly)
                defer { try? fd.close() }
                let (actual, size) = try FileChunks.sha256(fd, path: temp)
                guard actual == d else { throw StoreError.corruptBlob(d) }
                return Got(path: temp, digest: d, size: size)
            }
            if case .success(.some) = r {} else { unlink(temp) }
            results.withLock { $0.append(r) }
        }
        let all = results.withLock { $0 }
        func cleanup() {
            for case .success(.some(let g)) in all { unlink(g.path) }
        }
        if let e = all.lazy.compactMap({ r -> Error? in
            if case .failure(let e) = r, e is S3Error { return e }
            return nil
        }).first {
            cleanup()
            throw e
        }
        if let e = all.lazy.compactMap({ r -> Error? in
            if case .failure(let e) = r { return e }
            return nil
        }).first {
            cleanup()
            if case StoreError.corruptBlob(let d) = e {
                health.add(.corrupt)
                health.log(
                    "corrupt object \(layout.blob(d)) (its bytes do not hash to its name) while pulling \(what); not used"
                )
                return .miss("blob \(d.hex) in the shared tier is corrupt")
            }
            throw e
        }
        if all.contains(where: {
            if case .success(nil) = $0 { return true }
            return false
        }) {
            cleanup()
            return .miss("the shared tier's \(what) is incomplete (a blob is missing)")
        }
        var bytes: UInt64 = 0
        for case .success(.some(let g)) in all {
            try batch.adopt(g.path, digest: g.digest, size: g.size)
            bytes += g.size
        }
        return .pulled(blobs: wanted.count, bytes: bytes)
    }

    /// Uploads every digest the tier lacks (create-only; 412 = already there). Returns (uploaded, bytes).
    func upload(_ digests: [SHA256Digest]) throws -> (blobs: Int, bytes: UInt64) {
        let unique = Array(Set(digests))
        let results = Mutex<[Result<UInt64, Error>]>([])
        parallel(unique.count) { i in
            let d = unique[i]
            let r = Result<UInt64, Error> {
                guard let size = self.store.blobs.size(d) else { throw StoreError.missingBlob(d) }
                let outcome = try self.client.putFile(
                    self.layout.blob(d), path: self.store.blobs.path(d), sha256: d, size: size)
                return outcome == .preconditionFailed ? 0 : size + 1
            }
            results.withLock { $0.append(r) }
        }
        var count = 0
        var bytes: UInt64 = 0
        for r in results.withLock({ $0 }) {
            let n = try r.get()
            if n > 0 {
                count += 1
                bytes += n - 1
            }
        }
        return (count, bytes)
    }

    /// Runs `body(0..<n)` on `config.concurrency` threads of its own. (Not `concurrentPerform`: that is
    /// as wide as the CPU count, and these threads mostly wait on the network.)
    func parallel(_ n: Int, _ body: @escaping @Sendable (Int) -> Void) {
        guard n > 0 else { return }
        let next = Mutex(0)
        let done = DispatchGroup()
        for _ in 0..<min(n, config.concurrency) {
            done.enter()
            Thread {
                while true {
                    let i = next.withLock { v -> Int in
                        v += 1
                        return v - 1
                    }
                    if i >= n { break }
                    body(i)
                }
                done.leave()
            }.start()
        }
        done.wait()
    }
}

/// A value behind a lock.
final class Mutex<T>: @unchecked Sendable {
    private var value: T
    private let lock = NSLock()
    init(_ v: T) { value = v }
    func withLock<R>(_ body: (inout T) throws -> R) rethrows -> R {
        lock.lock()
        defer { lock.unlock() }
        return try body(&value)
    }
}
