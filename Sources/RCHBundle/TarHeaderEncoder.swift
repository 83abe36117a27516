/// The header bytes of bundle format v1 (PLAN §2.7), defined here byte for byte — they do not depend on
/// which libarchive (or any other library) is installed, so one tree has one `source_sha256` everywhere.
///
/// Invariants this type owns:
/// - one entry = optionally a pax `x` header block + its records padded to 512, then one ustar header;
/// - ustar fields: mode `%06o \0`, uid/gid `000000 \0`, size `%011o ` (files < 8 GiB only: larger files are
///   refused by the bundler), mtime `00000000000 `, checksum `%06o\0 ` over the header with the checksum
///   field counted as spaces, magic `ustar\0` + `00`, empty uname/gname, devmajor/devminor `000000 \0`;
/// - names: ≤ 100 bytes in `name`; longer ASCII paths split at the first `/` at or after byte
///   `len − 101` (a `/` at byte 0 skipped) into `prefix` (≤ 155) and `name` (≤ 100, non-empty); a path
///   that is non-ASCII or cannot be split gets a pax `path` record and a fallback ustar name
///   (``fallbackName(_:insert:)``, the classic libarchive algorithm with a 99-byte budget);
/// - link targets: ≤ 100 bytes in `linkname` (raw UTF-8); a `linkpath` record when the target is
///   non-ASCII or longer than 100 bytes, and then (longer) `linkname` = `././@LongSymLink`;
/// - the pax header block: typeflag `x`, the entry's mode, size = record bytes, name = the fallback name of
///   the path with `PaxHeader` inserted before the file name; records `"<len> path=…\n"` then
///   `"<len> linkpath=…\n"`, `<len>` counting the whole record including its own digits.
public enum TarHeaderEncoder {
    /// Largest file size a ustar `size` field holds (8 GiB − 1).
    public static let maxFileSize: UInt64 = 0o77777777777
    public static let blockSize = 512
    /// Recorded in source manifests (`tools.tar`) and stat-cache tags.
    public static let identity = "rch-canonical-tar/1"

    public enum Kind: Sendable, Equatable {
        case file(size: UInt64, executable: Bool)
        case symlink(target: [UInt8])
    }

    /// The bytes that precede an entry's data: [pax header + records] + ustar header (a multiple of 512).
    public static func encode(path: [UInt8], kind: Kind) -> [UInt8] {
        let mode: UInt32
        let size: UInt64
        var linkname: [UInt8] = []
        var records: [UInt8] = []
        switch kind {
        case .file(let s, let x):
            precondition(s <= maxFileSize, "files of 8 GiB or more are refused before encoding")
            mode = x ? 0o755 : 0o644
            size = s
        case .symlink(let target):
            mode = 0o777
            size = 0
            linkname = target.count > 100 ? Array("././@LongSymLink".utf8) : target
        }
        var split = ustarSplit(path)
        if split == nil || !isASCII(path) {
            records += record("path", path)
            split = ustarSplit(fallbackName(path, insert: nil))
        }
        if case .symlink(let target) = kind, target.count > 100 || !isASCII(target) {
            records += record("linkpath", target)
        }
        var out: [UInt8] = []
        out.reserveCapacity(records.isEmpty ? 512 : 1536)
        if !records.isEmpty {
            guard let paxName = ustarSplit(fallbackName(path, insert: Array("PaxHeader".utf8))) else {
                preconditionFailure("a fallback name always fits ustar")
            }
            out += header(name: paxName, mode: mode, size: UInt64(records.count), type: UInt8(ascii: "x"), linkname: [])
            out += records
            out += [UInt8](repeating: 0, count: padding(UInt64(records.count)))
        }
        let type: UInt8
        if case .file = kind { type = UInt8(ascii: "0") } else { type = UInt8(ascii: "2") }
        guard let name = split else { preconditionFailure("a fallback name always fits ustar") }
        out += header(name: name, mode: mode, size: size, type: type, linkname: linkname)
        return out
    }

    /// Zero bytes that complete a file of `size` bytes to a whole number of blocks.
    public static func padding(_ size: UInt64) -> Int { Int((512 - size % 512) % 512) }

    /// The end of the archive: two zero blocks.
    public static let end = [UInt8](repeating: 0, count: 1024)

    // MARK: pieces

    static func isASCII(_ b: [UInt8]) -> Bool { b.allSatisfy { $0 < 0x80 } }

    /// `(prefix, name)` as the ustar writer stores a path, or nil if it does not fit.
    static func ustarSplit(_ p: [UInt8]) -> (prefix: ArraySlice<UInt8>, name: ArraySlice<UInt8>)? {
        if p.count <= 100 { return (p[0..<0], p[...]) }
        var i = p.count - 101
        func nextSlash(from start: Int) -> Int? {
            var k = start
            while k < p.count {
                if p[k] == UInt8(ascii: "/") { return k }
                k += 1
            }
            return nil
        }
        guard var slash = nextSlash(from: i) else { return nil }
        if slash == 0 {
            i = 1
            guard let s = nextSlash(from: i) else { return nil }
            slash = s
        }
        guard slash + 1 < p.count, slash <= 155 else { return nil }
        return (p[0..<slash], p[(slash + 1)...])
    }

    /// libarchive's `build_ustar_entry_name` with a 99-byte budget: a name for the ustar header of an
    /// entry whose real path travels in a pax record (`insert` adds a directory before the file name).
    static func fallbackName(_ src: [UInt8], insert: [UInt8]?) -> [UInt8] {
        if src.count < 100 && insert == nil { return src }
        let slash = UInt8(ascii: "/")
        var suffixLength = 99
        let insertLength = insert.map { $0.count + 2 } ?? 0
        // Our paths never end in "/" or "/.": the file name is the last component.
        let filenameEnd0 = src.count
        var filename = filenameEnd0 - 1
        while filename > 0 && src[filename] != slash { filename -= 1 }
        if src[filename] == slash && filename < filenameEnd0 - 1 { filename += 1 }
        suffixLength -= insertLength
        var filenameEnd = filenameEnd0
        if filenameEnd > filename + suffixLength { filenameEnd = filename + suffixLength }
        suffixLength -= filenameEnd - filename
        // The prefix: the longest directory part ending in "/" within 155 bytes.
        var prefixEnd = min(155, filename)
        while prefixEnd > 0 && src[prefixEnd] != slash { prefixEnd -= 1 }
        if prefixEnd < filename && src[prefixEnd] == slash { prefixEnd += 1 }
        // The suffix: from there, the longest piece ending in "/" within what remains.
        let suffix = prefixEnd
        var suffixEnd = suffix + suffixLength
        if suffixEnd > filename { suffixEnd = filename }
        if suffixEnd < suffix { suffixEnd = suffix }
        while suffixEnd > suffix && src[suffixEnd] != slash { suffixEnd -= 1 }
        if suffixEnd < filename && src[suffixEnd] == slash { suffixEnd += 1 }
        var out = Array(src[0..<prefixEnd]) + Array(src[suffix..<suffixEnd])
        if let insert { out += insert + [slash] }
        out += src[filename..<filenameEnd]
        return out
    }

    /// One pax record: `"<len> <key>=<value>\n"`.
    static func record(_ key: String, _ value: [UInt8]) -> [UInt8] {
        let base = 1 + key.utf8.count + 1 + value.count + 1
        var total = base + 1
        while total != base + String(total).utf8.count { total = base + String(total).utf8.count }
        return Array("\(total) \(key)=".utf8) + value + [10]
    }

    static func header(
        name: (prefix: ArraySlice<UInt8>, name: ArraySlice<UInt8>), mode: UInt32, size: UInt64, type: UInt8,
        linkname: [UInt8]
    ) -> [UInt8] {
        var h = [UInt8](repeating: 0, count: 512)
        func put(_ bytes: some Collection<UInt8>, at offset: Int) {
            var i = offset
            for b in bytes {
                h[i] = b
                i += 1
            }
        }
        func octal(_ v: UInt64, digits: Int) -> [UInt8] {
            var out = [UInt8](repeating: UInt8(ascii: "0"), count: digits)
            var x = v
            var i = digits - 1
            while x > 0 && i >= 0 {
                out[i] = UInt8(ascii: "0") + UInt8(x & 7)
                x >>= 3
                i -= 1
            }
            return out
        }
        put(name.name, at: 0)
        put(octal(UInt64(mode), digits: 6) + [32, 0], at: 100)
        put(octal(0, digits: 6) + [32, 0], at: 108)
        put(octal(0, digits: 6) + [32, 0], at: 116)
        put(octal(size, digits: 11) + [32], at: 124)
        put(octal(0, digits: 11) + [32], at: 136)
        h[156] = type
        put(linkname, at: 157)
        put(Array("ustar".utf8) + [0, UInt8(ascii: "0"), UInt8(ascii: "0")], at: 257)
        put(octal(0, digits: 6) + [32, 0], at: 329)
        put(octal(0, digits: 6) + [32, 0], at: 337)
        put(name.prefix, at: 345)
        var sum: UInt64 = 0
        for (i, b) in h.enumerated() { sum += (148..<156).contains(i) ? 32 : UInt64(b) }
        put(octal(sum, digits: 6) + [0, 32], at: 148)
        return h
    }
}
