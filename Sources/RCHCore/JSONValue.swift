/// A JSON value as the lane's artifacts use it.
///
/// Objects keep their members as an ordered list of pairs and compare keys by their exact UTF-8
/// bytes: Swift `String` equality uses canonical equivalence, which would silently merge an NFC and an
/// NFD spelling of one key. Serialisation (``JSONValue/canonicalBytes``) is RFC 8785 (JCS): members
/// sorted by UTF-16 code units, no whitespace, ECMAScript number formatting, minimal string escaping.
public enum JSONValue: Sendable, Equatable {
    case null
    case bool(Bool)
    /// An integer; serialised exactly when |value| ≤ 2^53, otherwise as the nearest double (as JCS does).
    case int(Int64)
    case double(Double)
    case string(String)
    case array([JSONValue])
    case object(JSONObject)

    public static func obj(_ pairs: KeyValuePairs<String, JSONValue>) -> JSONValue {
        .object(JSONObject(pairs.map { ($0.key, $0.value) }))
    }

    public subscript(key: String) -> JSONValue? {
        if case .object(let o) = self { return o[key] }
        return nil
    }

    public var stringValue: String? {
        if case .string(let s) = self { return s }
        return nil
    }
    public var arrayValue: [JSONValue]? {
        if case .array(let a) = self { return a }
        return nil
    }
    public var objectValue: JSONObject? {
        if case .object(let o) = self { return o }
        return nil
    }
    public var boolValue: Bool? {
        if case .bool(let b) = self { return b }
        return nil
    }
    public var intValue: Int64? {
        switch self {
        case .int(let i): return i
        case .double(let d) where d.rounded() == d && abs(d) <= 9_007_199_254_740_992: return Int64(d)
        default: return nil
        }
    }
}

/// A JSON object: ordered members, keys unique by exact UTF-8 bytes.
public struct JSONObject: Sendable, Equatable {
    public private(set) var members: [(key: String, value: JSONValue)]

    public init(_ members: [(String, JSONValue)] = []) {
        self.members = []
        for (k, v) in members { self[k] = v }
    }

    public subscript(key: String) -> JSONValue? {
        get { members.first { $0.key.utf8.elementsEqual(key.utf8) }?.value }
        set {
            if let i = members.firstIndex(where: { $0.key.utf8.elementsEqual(key.utf8) }) {
                if let newValue { members[i].value = newValue } else { members.remove(at: i) }
            } else if let newValue {
                members.append((key, newValue))
            }
        }
    }

    /// Appends a member known not to be present (the parser has already checked uniqueness).
    mutating func appendUnique(_ key: String, _ value: JSONValue) { members.append((key, value)) }
    mutating func reserve(_ n: Int) { members.reserveCapacity(n) }

    public var keys: [String] { members.map(\.key) }
    public var count: Int { members.count }

    public static func == (a: JSONObject, b: JSONObject) -> Bool {
        guard a.members.count == b.members.count else { return false }
        for (k, v) in a.members { guard b[k] == v else { return false } }
        return true
    }
}

extension JSONObject: ExpressibleByDictionaryLiteral {
    /// Members in literal order (keys must be distinct).
    public init(dictionaryLiteral elements: (String, JSONValue)...) { self.init(elements) }
}
