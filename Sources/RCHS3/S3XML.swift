/// A strict reader for the small XML documents S3 answers with (`ListBucketResult`, `Error`,
/// `InitiateMultipartUploadResult`, `CompleteMultipartUploadResult`, `DeleteResult`).
///
/// Supported: an optional `<?xml …?>` declaration, elements with attributes (ignored), text with the five
/// predefined entities and numeric character references. Not supported, and refused: DOCTYPE, comments,
/// CDATA, processing instructions inside the document, mismatched or unclosed tags. Whitespace-only text
/// between elements is dropped.
public struct XMLElement: Sendable, Equatable {
    public var name: String
    public var children: [XMLElement] = []
    public var text: String = ""

    /// The first child named `name`.
    public func child(_ name: String) -> XMLElement? { children.first { $0.name == name } }
    /// All children named `name`, in order.
    public func all(_ name: String) -> [XMLElement] { children.filter { $0.name == name } }
    /// The text of the first child named `name`.
    public func value(_ name: String) -> String? { child(name)?.text }
}

public struct XMLError: Error, CustomStringConvertible {
    public var description: String
}

public enum S3XML {
    public static func parse(_ bytes: [UInt8]) throws -> XMLElement {
        var i = 0
        let n = bytes.count
        func fail(_ m: String) -> XMLError { XMLError(description: "malformed XML at byte \(i): \(m)") }
        func skipSpace() { while i < n, [9, 10, 13, 32].contains(bytes[i]) { i += 1 } }
        if bytes.starts(with: [0xEF, 0xBB, 0xBF]) { i = 3 }
        skipSpace()
        if bytes[i...].starts(with: Array("<?xml".utf8)) {
            guard let end = find(bytes, Array("?>".utf8), from: i) else { throw fail("unterminated declaration") }
            i = end + 2
        }
        var stack: [XMLElement] = []
        var root: XMLElement?
        var text: [UInt8] = []
        while i < n {
            if bytes[i] != UInt8(ascii: "<") {
                guard !stack.isEmpty else {
                    guard [9, 10, 13, 32].contains(bytes[i]) else { throw fail("text outside the root element") }
                    i += 1
                    continue
                }
                text.append(bytes[i])
                i += 1
                continue
            }
            guard i + 1 < n else { throw fail("unterminated tag") }
            if bytes[i + 1] == UInt8(ascii: "!") || bytes[i + 1] == UInt8(ascii: "?") {
                throw fail("comments, CDATA, DOCTYPE and processing instructions are not accepted")
            }
            guard let close = bytes[i...].firstIndex(of: UInt8(ascii: ">")) else { throw fail("unterminated tag") }
            var tag = Array(bytes[(i + 1)..<close])
            i = close + 1
            if tag.first == UInt8(ascii: "/") {
                let name = String(decoding: tag.dropFirst(), as: UTF8.self).trimmingSpaces()
                guard var top = stack.popLast(), top.name == name else { throw fail("unexpected </\(name)>") }
                if top.children.isEmpty { top.text = try decodeText(text) }
                text = []
                if stack.isEmpty {
                    guard root == nil else { throw fail("more than one root element") }
                    root = top
                } else {
                    stack[stack.count - 1].children.append(top)
                }
                continue
            }
            text = []
            let selfClosing = tag.last == UInt8(ascii: "/")
            if selfClosing { tag.removeLast() }
            let nameEnd = tag.firstIndex(where: { [9, 10, 13, 32].contains($0) }) ?? tag.count
            let name = String(decoding: tag[0..<nameEnd], as: UTF8.self)
            guard !name.isEmpty else { throw fail("empty tag name") }
            let element = XMLElement(name: name)
            if selfClosing {
                if stack.isEmpty {
                    guard root == nil else { throw fail("more than one root element") }
                    root = element
                } else {
                    stack[stack.count - 1].children.append(element)
                }
            } else {
                guard root == nil else { throw fail("more than one root element") }
                stack.append(element)
            }
        }
        guard stack.isEmpty, let root else { throw XMLError(description: "malformed XML: unclosed element") }
        return root
    }

    static func find(_ b: [UInt8], _ needle: [UInt8], from: Int) -> Int? {
        guard b.count >= needle.count else { return nil }
        var k = from
        while k + needle.count <= b.count {
            if b[k..<(k + needle.count)].elementsEqual(needle) { return k }
            k += 1
        }
        return nil
    }

    static func decodeText(_ raw: [UInt8]) throws -> String {
        guard raw.contains(UInt8(ascii: "&")) else { return String(decoding: raw, as: UTF8.self) }
        var out: [UInt8] = []
        var k = 0
        while k < raw.count {
            guard raw[k] == UInt8(ascii: "&") else {
                out.append(raw[k])
                k += 1
                continue
            }
            guard let semi = raw[k...].firstIndex(of: UInt8(ascii: ";")), semi - k <= 10 else {
                throw XMLError(description: "malformed XML: a bare '&' in text")
            }
            let entity = String(decoding: raw[(k + 1)..<semi], as: UTF8.self)
            switch entity {
            case "amp": out.append(UInt8(ascii: "&"))
            case "lt": out.append(UInt8(ascii: "<"))
            case "gt": out.append(UInt8(ascii: ">"))
            case "quot": out.append(UInt8(ascii: "\""))
            case "apos": out.append(UInt8(ascii: "'"))
            default:
                let scalar: UInt32?
                if entity.hasPrefix("#x") {
                    scalar = UInt32(entity.dropFirst(2), radix: 16)
                } else if entity.hasPrefix("#") {
                    scalar = UInt32(entity.dropFirst(1))
                } else {
                    scalar = nil
                }
                guard let scalar, let u = Unicode.Scalar(scalar) else {
                    throw XMLError(description: "malformed XML: unknown entity &\(entity);")
                }
                out.append(contentsOf: Array(String(Character(u)).utf8))
            }
            k = semi + 1
        }
        return String(decoding: out, as: UTF8.self)
    }
}

extension String {
    func trimmingSpaces() -> String {
        var s = Substring(self)
        while let f = s.first, f == " " || f == "\n" || f == "\t" || f == "\r" { s = s.dropFirst() }
        while let l = s.last, l == " " || l == "\n" || l == "\t" || l == "\r" { s = s.dropLast() }
        return String(s)
    }
}
