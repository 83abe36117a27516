import RCHCore

/// Limits applied to untrusted bundles.
public struct ExtractLimits: Sendable {
    /// Largest uncompressed tar stream accepted.
    public var maxTarBytes: UInt64 = 8 << 30
    /// Most entries accepted.
    public var maxEntries: Int = 250_000
    /// Largest decompressed/compressed ratio accepted once the output passes `ratioFloorBytes`.
    public var maxRatio: UInt64 = 1000
    public var ratioFloorBytes: UInt64 = 64 << 20
    /// Largest zstd window (log2) accepted; our producer stays at or below 23.
    public var maxWindowLog: Int = 23
    /// Largest pax extended header accepted.
    public var maxPaxBytes: Int = 8192

    public init() {}
}

/// Receives the entries of a canonical tar, in order.
public protocol TarVisitor {
    mutating func beginFile(path: String, executable: Bool, size: UInt64) throws
    mutating func fileData(_ chunk: UnsafeRawBufferPointer) throws
    mutating func endFile() throws
    mutating func symlink(path: String, target: String) throws
    /// True if the visitor wants each file's SHA-256 (``endFile(sha256:)``): the reader then hashes a file's
    /// data in the same pass as the stream's hash (``ResumableSHA256/update(_:_:with:)``).
    var wantsFileDigests: Bool { get }
    /// ``endFile()`` with the digest of the file's data, for visitors that want it.
    mutating func endFile(sha256: SHA256Digest) throws
}

extension TarVisitor {
    public var wantsFileDigests: Bool { false }
    public mutating func endFile(sha256: SHA256Digest) throws { try endFile() }
}

/// A strict reader for bundle format v1 that accepts only what ``CanonicalTarWriter`` produces.
///
/// Canonical rule: after an entry's fields are parsed and checked, its header bytes (pax block, records,
/// padding and ustar header) are encoded again with ``TarHeaderEncoder`` and must be **identical** to the
/// bytes read — so a tree has exactly one accepted stream and one `source_sha256` in any store (leading
/// spaces, other terminators, junk after a name's NUL or in unused header bytes are all refused).
///
/// Accepted: ustar headers (magic `ustar\0`, version `00`, valid checksum) of type `0` (regular,
/// mode 0644 or 0755) and `2` (symlink, mode 0777, size 0), each optionally preceded by one pax `x`
/// header holding only `path` and/or `linkpath`; uid/gid 0, mtime 0, empty user/group names; paths that
/// are already canonical (``PathRules``), in strictly ascending byte order (so no duplicates), no `._*`
/// names; then exactly two zero blocks and the end of the stream.
/// Everything else — hardlinks, directories, devices, FIFOs, sparse/GNU/global headers, other pax keys,
/// odd modes, owners, trailing bytes — is rejected with the entry named.
struct CanonicalTarReader {
    let limits: ExtractLimits
    private(set) var hasher = ResumableSHA256()
    private(set) var entries: [String] = []
    /// The stream's hash state after each entry (a pax header belongs to its entry), as a stored source keeps them.
    private(set) var checkpoints: [SHA256Midstate] = []
    private var input: (UnsafeMutableRawBufferPointer) throws -> Int
    private var buf: UnsafeMutableRawBufferPointer
    private var start = 0, end = 0
    var compressedBytes: () -> UInt64 = { 0 }

    init(limits: ExtractLimits, input: @escaping (UnsafeMutableRawBufferPointer) throws -> Int) {
        self.limits = limits
        self.input = input
        buf = .allocate(byteCount: 1 << 20, alignment: 16)
    }

    func deallocate() { buf.deallocate() }

    /// Bytes of the tar stream consumed so far.
    var tarBytes: UInt64 { hasher.byteCount }

    /// Reads the whole stream, calling `visitor`; returns after verifying the end of the stream.
    mutating func read(_ visitor: inout some TarVisitor) throws {
        var pax: (path: [UInt8]?, link: [UInt8]?)? = nil
        var paxBytes: [UInt8] = []
        var previous: [UInt8]? = nil
        while true {
            if pax == nil, previous != nil, let m = hasher.midstate { checkpoints.append(m) }
            let header = try block()
            if header.allSatisfy({ $0 == 0 }) {
                if pax != nil { throw BundleError.invalidArchive("a pax header is not followed by an entry") }
                guard try block().allSatisfy({ $0 == 0 }) else {
                    throw BundleError.invalidArchive("a zero block is not followed by a second one")
                }
                guard try fill(1) == false else {
                    throw BundleError.invalidArchive("unexpected data after the end-of-archive blocks")
                }
                return
            }
            try verifyChecksum(header)
            guard header[257..<263].elementsEqual(Array("ustar\0".utf8)), header[263..<265].elementsEqual([48, 48])
            else {
                throw BundleError.invalidArchive("a header is not in ustar/pax format")
            }
            let type = header[156]
            let size = try octal(header[124..<136], "size")
            let shownName = PathRules.display(cString(header[0..<100]))
            if type == UInt8(ascii: "x") {
                if pax != nil { throw BundleError.invalidArchive("two pax headers in a row") }
                guard size <= UInt64(limits.maxPaxBytes) else {
                    throw BundleError.limitExceeded(
                        "a pax header of \(size) bytes is larger than \(limits.maxPaxBytes)")
                }
                let record = try data(Int(size))
                let padding = size % 512 != 0 ? try data(Int(512 - size % 512)) : []
                pax = try parsePax(record)
                paxBytes = header + record + padding
                continue
            }
            guard type == UInt8(ascii: "0") || type == UInt8(ascii: "2") else {
                throw BundleError.invalidArchive(
                    "'\(shownName)' has entry type '\(Self.typeName(type))'; only regular files and symlinks are allowed"
                )
            }
            var raw = pax?.path ?? Self.ustarPath(header)
            if raw.last == 47 {
                raw.removeLast()
                if type == UInt8(ascii: "0") {
                    throw BundleError.invalidArchive("'\(PathRules.display(raw))/' is a file name ending in '/'")
                }
            }
            let path = try PathRules.canonicalPath(raw)
            guard Array(path.utf8) == raw else {
                throw BundleError.invalidArchive("'\(path)' is not in canonical (NFC) form")
            }
            if path.split(separator: "/").contains(where: { $0.hasPrefix("._") }) {
                throw BundleError.invalidArchive("'\(path)' is an AppleDouble (._*) name")
            }
            if let previous, !previous.lexicographicallyPrecedes(raw) {
                throw BundleError.invalidArchive(
                    previous == raw ? "'\(path)' appears twice" : "'\(path)' is out of canonical order")
            }
            previous = raw
            entries.append(path)
            if entries.count > limits.maxEntries {
                throw BundleError.limitExceeded("more than \(limits.maxEntries) entries")
            }
            let mode = try octal(header[100..<108], "mode")
            guard try octal(header[108..<116], "uid") == 0, try octal(header[116..<124], "gid") == 0,
                try octal(header[136..<148], "mtime") == 0,
                cString(header[265..<297]).isEmpty, cString(header[297..<329]).isEmpty
            else {
                throw BundleError.invalidArchive("'\(path)' has an owner, group or mtime; canonical bundles have none")
            }
            if type == UInt8(ascii: "2") {
                guard mode == 0o777, size == 0 else {
                    throw BundleError.invalidArchive("symlink '\(path)' has mode \(String(mode, radix: 8)) or data")
                }
                let rawTarget = pax?.link ?? cString(header[157..<257])
                let target = try PathRules.canonicalSymlinkTarget(rawTarget, linkPath: path)
                guard Array(target.utf8) == rawTarget else {
                    throw BundleError.invalidArchive("symlink '\(path)' target is not in canonical form")
                }
                try requireCanonical(paxBytes + header, path: raw, kind: .symlink(target: rawTarget))
                try visitor.symlink(path: path, target: target)
            } else {
                guard mode == 0o644 || mode == 0o755 else {
                    throw BundleError.invalidArchive(
                        "'\(path)' has mode \(String(mode, radix: 8)); only 644 and 755 are allowed")
                }
                guard pax?.link == nil, cString(header[157..<257]).isEmpty else {
                    throw BundleError.invalidArchive("'\(path)' is a file with a link name")
                }
                guard size <= limits.maxTarBytes else {
                    throw BundleError.limitExceeded("'\(path)' declares \(size) bytes")
                }
                try requireCanonical(paxBytes + header, path: raw, kind: .file(size: size, executable: mode == 0o755))
                try visitor.beginFile(path: path, executable: mode == 0o755, size: size)
                var fileHasher: ResumableSHA256? = visitor.wantsFileDigests ? ResumableSHA256() : nil
                var remaining = size
                while remaining > 0 {
                    guard try fill(1) else { throw BundleError.invalidArchive("the archive ends inside '\(path)'") }
                    let n = Int(min(UInt64(end - start), remaining))
                    try consume(n, alsoHashing: &fileHasher) { try visitor.fileData($0) }
                    remaining -= UInt64(n)
                }
                let pad = Int((512 - size % 512) % 512)
                if pad > 0, try data(pad).contains(where: { $0 != 0 }) {
                    throw BundleError.invalidArchive(
                        "the padding after '\(path)' is not zero bytes (not a canonical bundle)")
                }
                if let fileHasher {
                    try visitor.endFile(sha256: fileHasher.finalize())
                } else {
                    try visitor.endFile()
                }
            }
            pax = nil
            paxBytes = []
        }
    }

    /// The entry's header bytes must be exactly what the canonical encoder writes for it.
    private func requireCanonical(_ read: [UInt8], path: [UInt8], kind: TarHeaderEncoder.Kind) throws {
        if case .file(let size, _) = kind, size > TarHeaderEncoder.maxFileSize {
            throw BundleError.invalidArchive(
                "'\(PathRules.display(path))' is 8 GiB or larger; canonical bundles hold smaller files only")
        }
        let expected = TarHeaderEncoder.encode(path: path, kind: kind)
        guard read == expected else {
            let at =
                zip(read, expected).enumerated().first { $0.element.0 != $0.element.1 }?.offset
                ?? min(read.count, expected.count)
            throw BundleError.invalidArchive(
                "the header of '\(PathRules.display(path))' is not in canonical form (byte \(at) of its \(read.count) header bytes differs from the canonical encoding)"
            )
        }
    }

    // MARK: pieces

    private static func ustarPath(_ h: [UInt8]) -> [UInt8] {
        let name = Array(h[0..<100].prefix { $0 != 0 })
        let prefix = Array(h[345..<500].prefix { $0 != 0 })
        return prefix.isEmpty ? name : prefix + [47] + name
    }

    private func cString(_ s: ArraySlice<UInt8>) -> [UInt8] { Array(s.prefix { $0 != 0 }) }

    private func octal(_ field: ArraySlice<UInt8>, _ what: String) throws -> UInt64 {
        if let f = field.first, f & 0x80 != 0 {
            throw BundleError.invalidArchive("base-256 \(what) field (values that large are never canonical)")
        }
        var v: UInt64 = 0
        var seenDigit = false
        for c in field {
            if c == 0 || (c == 32 && seenDigit) { break }
            if c == 32 { continue }
            guard c >= 48 && c <= 55 else { throw BundleError.invalidArchive("malformed \(what) field") }
            seenDigit = true
            v = v << 3 | UInt64(c - 48)
            if v > (1 << 40) { throw BundleError.limitExceeded("\(what) field too large") }
        }
        return v
    }

    private func verifyChecksum(_ h: [UInt8]) throws {
        var sum: UInt64 = 0
        for (i, b) in h.enumerated() { sum += (148..<156).contains(i) ? 32 : UInt64(b) }
        guard try octal(h[148..<156], "checksum") == sum else {
            throw BundleError.invalidArchive(
                "the header at offset \(tarBytes - 512) has a wrong checksum (corrupt archive)")
        }
    }

    private func parsePax(_ d: [UInt8]) throws -> (path: [UInt8]?, link: [UInt8]?) {
        var path: [UInt8]? = nil
        var link: [UInt8]? = nil
        var i = 0
        while i < d.count {
            guard let sp = d[i...].firstIndex(of: 32), let len = Int(String(decoding: d[i..<sp], as: UTF8.self)),
                len > sp - i + 1, i + len <= d.count, d[i + len - 1] == 10
            else {
                throw BundleError.invalidArchive("malformed pax record")
            }
            let rec = d[(sp + 1)..<(i + len - 1)]
            guard let eq = rec.firstIndex(of: 61) else { throw BundleError.invalidArchive("malformed pax record") }
            let key = String(decoding: rec[rec.startIndex..<eq], as: UTF8.self)
            let value = Array(rec[(eq + 1)...])
            if value.contains(0) { throw BundleError.invalidArchive("NUL inside pax '\(key)'") }
            switch key {
            case "path":
                if path != nil { throw BundleError.invalidArchive("duplicate pax path") }
                path = value
            case "linkpath":
                if link != nil { throw BundleError.invalidArchive("duplicate pax linkpath") }
                link = value
            default: throw BundleError.invalidArchive("pax key '\(key)' is not allowed (only path and linkpath)")
            }
            i += len
        }
        return (path, link)
    }

    static func typeName(_ t: UInt8) -> String {
        switch t {
        case UInt8(ascii: "1"): "hardlink"
        case UInt8(ascii: "3"): "character device"
        case UInt8(ascii: "4"): "block device"
        case UInt8(ascii: "5"): "directory"
        case UInt8(ascii: "6"): "FIFO"
        case UInt8(ascii: "7"): "contiguous file"
        case UInt8(ascii: "g"): "pax global header"
        case UInt8(ascii: "L"), UInt8(ascii: "K"): "GNU long name"
        case UInt8(ascii: "S"): "GNU sparse file"
        case 0: "old-style regular file"
        default: t >= 32 && t < 127 ? String(UnicodeScalar(t)) : "0x" + String(t, radix: 16)
        }
    }

    private mutating func block() throws -> [UInt8] {
        guard try fill(512) else {
            throw BundleError.invalidArchive(
                tarBytes == 0 ? "the archive is empty" : "the archive is truncated (no end-of-archive blocks)")
        }
        var out = [UInt8]()
        try consume(512) { out = Array($0) }
        return out
    }

    private mutating func data(_ n: Int) throws -> [UInt8] {
        var out = [UInt8]()
        out.reserveCapacity(n)
        var remaining = n
        while remaining > 0 {
            guard try fill(1) else { throw BundleError.invalidArchive("the archive is truncated") }
            let k = min(remaining, end - start)
            try consume(k) { out.append(contentsOf: $0) }
            remaining -= k
        }
        return out
    }

    /// Ensures at least `n` (≤ buffer size) bytes are buffered; false at a clean end of input before any.
    private mutating func fill(_ n: Int) throws -> Bool {
        while end - start < n {
            if start > 0 {
                if end > start { buf.baseAddress!.copyMemory(from: buf.baseAddress! + start, byteCount: end - start) }
                end -= start
                start = 0
            }
            let k = try input(UnsafeMutableRawBufferPointer(rebasing: buf[end...]))
            if k == 0 {
                if end - start == 0 { return false }
                throw BundleError.invalidArchive("the archive is truncated")
            }
            end += k
        }
        return true
    }

    private mutating func consume(_ n: Int, _ body: (UnsafeRawBufferPointer) throws -> Void) throws {
        var none: ResumableSHA256? = nil
        try consume(n, alsoHashing: &none, body)
    }

    /// ``consume(_:_:)`` that also hashes the bytes into `file` (one pass with the stream's hash).
    private mutating func consume(
        _ n: Int, alsoHashing file: inout ResumableSHA256?, _ body: (UnsafeRawBufferPointer) throws -> Void
    ) throws {
        let chunk = UnsafeRawBufferPointer(rebasing: buf[start..<(start + n)])
        if file != nil {
            ResumableSHA256.update(&hasher, &file!, with: chunk)
        } else {
            hasher.update(chunk)
        }
        start += n
        if tarBytes > limits.maxTarBytes {
            throw BundleError.limitExceeded("the tar stream is larger than \(limits.maxTarBytes) bytes")
        }
        if tarBytes > limits.ratioFloorBytes, tarBytes / max(1, compressedBytes()) > limits.maxRatio {
            throw BundleError.limitExceeded("the compression ratio exceeds \(limits.maxRatio):1 (decompression bomb?)")
        }
        try body(chunk)
    }
}
