import Foundation
import RCHCore
import RCHTestSupport
import Testing

@testable import RCHStore

/// The ingest's blob pipeline: files cut at every buffer boundary come back with the digests of their
/// bytes, in file order, staged exactly once; a failure on its thread reaches the caller and stops it.
@Suite("Blob pipeline: files staged on a thread of their own")
struct BlobPipelineTests {
    struct Layout: CustomTestStringConvertible, Sendable {
        var name: String
        var sizes: [Int]
        var testDescription: String { name }
    }

    /// Buffers of 64 bytes: small files that fill a buffer exactly, one byte over, empty files between,
    /// large files spanning several buffers and starting mid-buffer or at its end.
    static let layouts: [Layout] = [
        .init(name: "one empty file", sizes: [0]),
        .init(name: "files that fill a buffer exactly", sizes: [32, 32, 64, 1, 63]),
        .init(name: "a file one byte too big for what is left", sizes: [40, 25, 0, 0, 64]),
        .init(name: "large files across buffers", sizes: [65, 200, 3, 128, 64, 129]),
        .init(name: "a large file starting where a buffer ends", sizes: [64, 300, 64]),
        .init(name: "many small files", sizes: (0..<200).map { $0 % 37 }),
        .init(name: "duplicate contents", sizes: [10, 10, 10, 100, 100]),
    ]

    static func content(_ i: Int, _ size: Int, duplicates: Bool) -> [UInt8] {
        (0..<size).map { UInt8(truncatingIfNeeded: (duplicates ? size : i) * 31 + $0) }
    }

    @Test("digests in file order, every blob staged and committed", arguments: layouts)
    func layout(_ l: Layout) throws {
        let d = TempDir()
        let store = try LocalStore(root: d.sub("store"))
        let batch = try store.blobs.batch()
        let pipeline = BlobPipeline(batch: batch, buffers: 3, bufferSize: 64)
        let duplicates = l.name.hasPrefix("duplicate")
        var expected: [SHA256Digest] = []
        for (i, size) in l.sizes.enumerated() {
            let bytes = Self.content(i, size, duplicates: duplicates)
            expected.append(.of(bytes))
            try pipeline.beginFile(size: UInt64(size))
            // Fed in uneven pieces, as a decompressor hands them out.
            var offset = 0
            var piece = 1
            while offset < size {
                let n = min(piece, size - offset)
                try bytes[offset..<(offset + n)].withUnsafeBytes { try pipeline.fileData($0) }
                offset += n
                piece = piece * 3 % 97 + 1
            }
            pipeline.endFile(digest: .of(bytes))
        }
        #expect(try pipeline.finish() == expected)
        try batch.commit()
        for digest in Set(expected) {
            #expect(store.blobs.has(digest))
            #expect(SHA256Digest.of(try DurableFile.read(store.blobs.path(digest))) == digest)
        }
        #expect(batch.newBlobs == Set(expected).count)
    }

    @Test("a file longer than announced is refused, not truncated or overflowed")
    func overlong() throws {
        let d = TempDir()
        let store = try LocalStore(root: d.sub("store"))
        let batch = try store.blobs.batch()
        let pipeline = BlobPipeline(batch: batch, buffers: 2, bufferSize: 64)
        try pipeline.beginFile(size: 60)
        let bytes = [UInt8](repeating: 1, count: 70)
        #expect(throws: StoreError.self) { try bytes.withUnsafeBytes { try pipeline.fileData($0) } }
        pipeline.abandon()
        batch.discard()
    }

    @Test("a failure on the pipeline's thread (store full) reaches the caller; nothing is published")
    func failureReachesCaller() throws {
        let d = TempDir()
        // A free-space floor no filesystem meets: the first staged write fails with STORE_FULL.
        var store = try LocalStore(root: d.sub("store"))
        store.minFreeBytes = UInt64.max / 4
        let batch = try store.blobs.batch()
        let pipeline = BlobPipeline(batch: batch, buffers: 2, bufferSize: 64)
        let caught = #expect(throws: StoreError.self) {
            for i in 0..<100 {
                try pipeline.beginFile(size: 50)
                let bytes = [UInt8](repeating: UInt8(i), count: 50)
                try bytes.withUnsafeBytes { try pipeline.fileData($0) }
                pipeline.endFile(digest: .of(bytes))
            }
            _ = try pipeline.finish()
        }
        if case .storeFull = caught {} else { Issue.record("expected storeFull, got \(String(describing: caught))") }
        pipeline.abandon()
        batch.discard()
        #expect(!FileManager.default.fileExists(atPath: batch.staging))
    }
}
