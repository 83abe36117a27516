import Foundation
import RCHCore
import RCHTestSupport
import Testing

@testable import RCHBundle

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

enum Fixtures {
    /// Bundles `root` into `out` (a .tar.zst); returns the result.
    @discardableResult
    static func bundle(_ root: String, to out: String? = nil, options: BundleOptions = BundleOptions()) throws
        -> BundleResult
    {
        let dest = out ?? root + ".tar.zst"
        let tmp = try TempFile(directory: (dest as NSString).deletingLastPathComponent)
        let r = try Bundler.bundle(root: root, options: options, output: tmp)
        try tmp.commit(to: dest, durable: false)
        return r
    }

    static func digest(_ root: String, options: BundleOptions = BundleOptions()) throws -> String {
        try Bundler.bundle(root: root, options: options, output: nil).sourceSHA256.hex
    }

    static var packageRoot: String { TestPaths.packageRoot }
    static func executable(_ name: String) -> String { TestPaths.executable(name) }
}

/// Hand-made tar archives, for extraction attacks.
struct RawTar {
    var bytes: [UInt8] = []

    struct Header {
        var name: String
        var mode: Int = 0o644
        var uid: Int = 0
        var gid: Int = 0
        var size: Int = 0
        var mtime: Int = 0
        var type: UInt8 = UInt8(ascii: "0")
        var link: String = ""
        var uname: String = ""
        var gname: String = ""
        var prefix: String = ""
        var magic: [UInt8] = Array("ustar\0".utf8) + [48, 48]
        var rawName: [UInt8]? = nil
    }

    /// Numeric fields as the canonical writer formats them: 8-byte fields `%06o \0`, 12-byte `%011o `.
    static func field(_ v: Int, _ width: Int) -> [UInt8] {
        let s = String(v, radix: 8)
        let digits = width == 8 ? 6 : 11
        let tail: [UInt8] = width == 8 ? [32, 0] : [32]
        return Array((String(repeating: "0", count: max(0, digits - s.count)) + s).utf8) + tail
    }

    mutating func header(_ h: Header) {
        var b = [UInt8](repeating: 0, count: 512)
        func put(_ off: Int, _ v: [UInt8]) { for (i, c) in v.enumerated() where off + i < 512 { b[off + i] = c } }
        put(0, h.rawName ?? Array(h.name.utf8))
        put(100, Self.field(h.mode, 8))
        put(108, Self.field(h.uid, 8))
        put(116, Self.field(h.gid, 8))
        put(124, Self.field(h.size, 12))
        put(136, Self.field(h.mtime, 12))
        b[156] = h.type
        put(157, Array(h.link.utf8))
        put(257, h.magic)
        put(265, Array(h.uname.utf8))
        put(297, Array(h.gname.utf8))
        put(345, Array(h.prefix.utf8))
        put(329, Self.field(0, 8))
        put(337, Self.field(0, 8))
        for i in 148..<156 { b[i] = 32 }
        let sum = b.reduce(0) { $0 + Int($1) }
        put(
            148,
            Array((String(repeating: "0", count: 6 - String(sum, radix: 8).count) + String(sum, radix: 8)).utf8) + [
                0, 32,
            ])
        bytes += b
    }

    mutating func data(_ d: [UInt8]) {
        bytes += d
        if d.count % 512 != 0 { bytes += [UInt8](repeating: 0, count: 512 - d.count % 512) }
    }

    mutating func file(_ name: String, _ content: String = "hi", mode: Int = 0o644) {
        header(Header(name: name, mode: mode, size: content.utf8.count))
        data(Array(content.utf8))
    }

    mutating func symlink(_ name: String, _ target: String) {
        header(Header(name: name, mode: 0o777, type: UInt8(ascii: "2"), link: target))
    }

    mutating func pax(_ records: [(String, [UInt8])], for name: String = "PaxHeader/x") {
        var d: [UInt8] = []
        for (k, v) in records {
            let body = Array(" \(k)=".utf8) + v + [10]
            var len = body.count + 1
            while String(len).utf8.count + body.count != len { len = String(len).utf8.count + body.count }
            d += Array(String(len).utf8) + body
        }
        header(Header(name: name, size: d.count, type: UInt8(ascii: "x")))
        data(d)
    }

    mutating func end() { bytes += [UInt8](repeating: 0, count: 1024) }

    /// zstd-compresses with our own compressor.
    func zstd(level: Int = 3, workers: Int = 0) throws -> [UInt8] {
        var out: [UInt8] = []
        let c = try ZstdCompressor(level: level, workers: workers) { out += $0 }
        try bytes.withUnsafeBytes { try c.compress($0) }
        try c.finish()
        return out
    }
}

func write(_ bytes: [UInt8], to path: String) {
    FileManager.default.createFile(atPath: path, contents: Data(bytes))
}

func bundleError(_ body: () throws -> Void) -> BundleError? {
    do {
        try body()
        return nil
    } catch let e as BundleError { return e } catch { return nil }
}
