import FuzzSupport
import RCHCore

@testable import RCHBundle

/// libFuzzer target: the strict canonical tar reader (ingest, `upload_source`, `extract`). Property: any
/// stream it accepts is exactly what the canonical writer produces for the entries it read — one tree,
/// one stream, one `source_sha256`.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzTar(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let input = Array(UnsafeBufferPointer(start: data, count: size))
    let cursor = Cursor(input)
    var limits = ExtractLimits()
    limits.maxEntries = 64
    var reader = CanonicalTarReader(limits: limits) { cursor.read(into: $0) }
    defer { reader.deallocate() }
    var collector = Collector()
    do { try reader.read(&collector) } catch { return 0 }
    // Accepted: writing the same entries again must give the same bytes.
    var out: [UInt8] = []
    do {
        let writer = try CanonicalTarWriter { out.append(contentsOf: $0) }
        for e in collector.entries {
            switch e.kind {
            case .symlink(let target): try writer.symlink(path: e.path, target: target)
            case .file(let executable, let bytes):
                try writer.beginFile(path: e.path, size: UInt64(bytes.count), executable: executable)
                try bytes.withUnsafeBytes { try writer.writeData($0) }
            }
        }
        try writer.finish()
    } catch {
        fatalError("an accepted stream could not be written again: \(error)")
    }
    precondition(out == input, "an accepted stream is not the canonical encoding of its entries")
    return 0
}

/// Hands out the input in reads, like a file.
final class Cursor {
    let bytes: [UInt8]
    var offset = 0
    init(_ b: [UInt8]) { bytes = b }

    func read(into buf: UnsafeMutableRawBufferPointer) -> Int {
        let n = min(buf.count, bytes.count - offset)
        guard n > 0 else { return 0 }
        bytes.withUnsafeBytes { src in
            buf.copyMemory(from: UnsafeRawBufferPointer(rebasing: src[offset..<(offset + n)]))
        }
        offset += n
        return n
    }
}

struct Collector: TarVisitor {
    enum Kind { case file(executable: Bool, bytes: [UInt8]), symlink(String) }
    var entries: [(path: String, kind: Kind)] = []
    var current: (path: String, executable: Bool, bytes: [UInt8])?

    mutating func beginFile(path: String, executable: Bool, size: UInt64) throws { current = (path, executable, []) }
    mutating func fileData(_ chunk: UnsafeRawBufferPointer) throws { current?.bytes.append(contentsOf: chunk) }
    mutating func endFile() throws {
        if let c = current { entries.append((c.path, .file(executable: c.executable, bytes: c.bytes))) }
        current = nil
    }
    mutating func symlink(path: String, target: String) throws { entries.append((path, .symlink(target))) }
}

@_cdecl("FuzzTar_main")
public func main(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    runFuzzer(argc, argv, fuzzTar)
}
