internal import CZstd

/// Streaming zstd compression for transport (never part of any digest).
///
/// Settings: level 1–19 (default 3), content checksum on, a single frame, the level's own windowLog (at most 23
/// for levels ≤19; long mode is never enabled), `nbWorkers` threads when > 0 (output differs from
/// single-threaded output, which is fine because only the uncompressed tar is hashed).
final class ZstdCompressor {
    private let cctx: OpaquePointer
    private var out: [UInt8]
    private let emit: (UnsafeRawBufferPointer) throws -> Void

    init(level: Int, workers: Int, emit: @escaping (UnsafeRawBufferPointer) throws -> Void) throws {
        guard let c = ZSTD_createCCtx() else {
            throw BundleError.library(operation: "ZSTD_createCCtx", message: "out of memory")
        }
        cctx = c
        self.emit = emit
        out = [UInt8](repeating: 0, count: ZSTD_CStreamOutSize())
        try Self.check(ZSTD_CCtx_setParameter(c, ZSTD_c_compressionLevel, Int32(level)), "set compression level")
        try Self.check(ZSTD_CCtx_setParameter(c, ZSTD_c_checksumFlag, 1), "set checksum flag")
        if workers > 0 {
            // A libzstd built without threads rejects this; single-threaded output is equally valid.
            _ = ZSTD_CCtx_setParameter(c, ZSTD_c_nbWorkers, Int32(workers))
            // Small jobs keep the buffer pool (and so peak memory) small; 1 MiB is near zstd's minimum.
            _ = ZSTD_CCtx_setParameter(c, ZSTD_c_jobSize, 1 << 20)
        }
    }

    deinit { ZSTD_freeCCtx(cctx) }

    func compress(_ input: UnsafeRawBufferPointer) throws {
        var inb = ZSTD_inBuffer(src: input.baseAddress, size: input.count, pos: 0)
        repeat {
            try drive(&inb, ZSTD_e_continue)
        } while inb.pos < inb.size
    }

    func finish() throws {
        var inb = ZSTD_inBuffer(src: nil, size: 0, pos: 0)
        while try drive(&inb, ZSTD_e_end) != 0 {}
    }

    @discardableResult
    private func drive(_ inb: inout ZSTD_inBuffer, _ mode: ZSTD_EndDirective) throws -> Int {
        try out.withUnsafeMutableBytes { o in
            var outb = ZSTD_outBuffer(dst: o.baseAddress, size: o.count, pos: 0)
            let r = ZSTD_compressStream2(cctx, &outb, &inb, mode)
            try Self.check(r, "ZSTD_compressStream2")
            if outb.pos > 0 { try emit(UnsafeRawBufferPointer(rebasing: o[0..<outb.pos])) }
            return r
        }
    }

    static func check(_ r: Int, _ op: String) throws {
        if ZSTD_isError(r) != 0 {
            throw BundleError.library(operation: op, message: String(cString: ZSTD_getErrorName(r)))
        }
    }

    static var version: String { String(cString: ZSTD_versionString()) }
}

/// Streaming zstd decompression with limits, for untrusted bundles.
///
/// Accepts exactly one zstd frame: a window larger than 2^`maxWindowLog` is refused, as are skippable
/// or concatenated frames, trailing bytes and a truncated frame.
final class ZstdDecompressor {
    private let dctx: OpaquePointer
    private let read: (UnsafeMutableRawBufferPointer) throws -> Int
    private var inBuf: [UInt8]
    private var inPos = 0
    private var inLen = 0
    private var inputEOF = false
    private var frameDone = false
    private var lastHint = 1
    /// Compressed bytes consumed so far.
    private(set) var compressedBytes: UInt64 = 0

    init(maxWindowLog: Int = 23, read: @escaping (UnsafeMutableRawBufferPointer) throws -> Int) throws {
        guard let d = ZSTD_createDCtx() else {
            throw BundleError.library(operation: "ZSTD_createDCtx", message: "out of memory")
        }
        dctx = d
        self.read = read
        inBuf = [UInt8](repeating: 0, count: ZSTD_DStreamInSize())
        try ZstdCompressor.check(
            ZSTD_DCtx_setParameter(d, ZSTD_d_windowLogMax, Int32(maxWindowLog)), "set window log max")
    }

    deinit { ZSTD_freeDCtx(dctx) }

    /// Fills `out` with decompressed bytes; returns 0 only at the (verified) end of the frame.
    func decompress(into out: UnsafeMutableRawBufferPointer) throws -> Int {
        while true {
            if frameDone {
                try ensureNoTrailingInput()
                return 0
            }
            if inPos == inLen && !inputEOF {
                let n = try inBuf.withUnsafeMutableBytes { try read($0) }
                if n == 0 {
                    inputEOF = true
                } else {
                    inPos = 0
                    inLen = n
                    compressedBytes += UInt64(n)
                }
            }
            var produced = 0
            var consumed = 0
            let r: Int = inBuf.withUnsafeBytes { ib in
                var inb = ZSTD_inBuffer(src: ib.baseAddress, size: inLen, pos: inPos)
                var outb = ZSTD_outBuffer(dst: out.baseAddress, size: out.count, pos: 0)
                let r = ZSTD_decompressStream(dctx, &outb, &inb)
                produced = outb.pos
                consumed = inb.pos - inPos
                return r
            }
            inPos += consumed
            if ZSTD_isError(r) != 0 {
                let code = ZSTD_getErrorCode(r)
                if code == ZSTD_error_frameParameter_windowTooLarge {
                    throw BundleError.limitExceeded("the zstd frame needs a window larger than the allowed 2^23 bytes")
                }
                throw BundleError.invalidArchive("zstd: \(String(cString: ZSTD_getErrorName(r)))")
            }
            if r == 0 { frameDone = true }
            lastHint = r
            if produced > 0 { return produced }
            if frameDone { continue }
            if inputEOF && inPos == inLen { throw BundleError.invalidArchive("the zstd stream is truncated") }
        }
    }

    private func ensureNoTrailingInput() throws {
        if inPos < inLen {
            throw BundleError.invalidArchive("unexpected data after the zstd frame (concatenated or trailing bytes)")
        }
        if !inputEOF {
            let n = try inBuf.withUnsafeMutableBytes { try read($0) }
            if n > 0 {
                throw BundleError.invalidArchive(
                    "unexpected data after the zstd frame (concatenated or trailing bytes)")
            }
            inputEOF = true
        }
    }
}
