import Foundation

/// One JSON value as `JSONDecoder` reads it: `true` and `false` are booleans, never numbers; a
/// number that is a whole number within `Int` is an `integer` (`2` and `2.0` alike), any other
/// number a `number`. For the parts of a file whose keys are open (a vector file's `sam`
/// settings) or whose checks need the value as written (a count and its range).
public enum JSONValue: Decodable, Equatable, Sendable, CustomStringConvertible {
    case null
    case bool(Bool)
    case integer(Int)
    case number(Double)
    case string(String)
    case array([JSONValue])
    case object([String: JSONValue])

    public init(from decoder: Decoder) throws {
        let single = try decoder.singleValueContainer()
        if single.decodeNil() {
            self = .null
        } else if let b = try? single.decode(Bool.self) {
            self = .bool(b)
        } else if let i = try? single.decode(Int.self) {
            self = .integer(i)
        } else if let d = try? single.decode(Double.self) {
            self = .number(d)
        } else if let s = try? single.decode(String.self) {
            self = .string(s)
        } else if var list = try? decoder.unkeyedContainer() {
            var items: [JSONValue] = []
            while !list.isAtEnd { items.append(try list.decode(JSONValue.self)) }
            self = .array(items)
        } else if let object = try? decoder.container(keyedBy: JSONKey.self) {
            var members: [String: JSONValue] = [:]
            for key in object.allKeys { members[key.stringValue] = try object.decode(JSONValue.self, forKey: key) }
            self = .object(members)
        } else {
            // A number JSONDecoder cannot hold (1e400).
            throw DecodingError.dataCorruptedError(in: single, debugDescription: "a number beyond the range of Double")
        }
    }

    /// The number, for an integer or a number (nil for anything else: booleans are not numbers).
    public var number: Double? {
        switch self {
        case .integer(let i): Double(i)
        case .number(let d): d
        default: nil
        }
    }

    /// A whole number in `range` (a fraction, a number beyond `Int`, a boolean or a string is not one).
    public func integer(in range: ClosedRange<Int>) -> Int? {
        switch self {
        case .integer(let i): range.contains(i) ? i : nil
        case .number(let d): CheckedSize.integer(d, in: range)
        default: nil
        }
    }

    public var string: String? { if case .string(let s) = self { s } else { nil } }
    public var bool: Bool? { if case .bool(let b) = self { b } else { nil } }

    /// As an error message quotes it: a string bare, anything else as JSON-like text.
    public var description: String {
        switch self {
        case .null: "null"
        case .bool(let b): "\(b)"
        case .integer(let i): "\(i)"
        case .number(let d): "\(d)"
        case .string(let s): s
        case .array(let items): "[" + items.map(\.quoted).joined(separator: ", ") + "]"
        case .object(let members): "{" + members.keys.sorted().map { "\"\($0)\": \(members[$0]!.quoted)" }.joined(separator: ", ") + "}"
        }
    }

    private var quoted: String {
        if case .string(let s) = self { return "\"\(s)\"" }
        return description
    }
}

/// Any key of a JSON object.
struct JSONKey: CodingKey, Hashable {
    var stringValue: String
    var intValue: Int? { nil }
    init(_ string: String) { stringValue = string }
    init?(stringValue: String) { self.stringValue = stringValue }
    init?(intValue: Int) { return nil }
}

extension DecodingError {
    /// The field the error is about, as a file's reader names it: `steps[0].shards[1].grad_at_w`.
    var field: String {
        let path: [CodingKey]
        switch self {
        case .typeMismatch(_, let c), .valueNotFound(_, let c), .dataCorrupted(let c): path = c.codingPath
        case .keyNotFound(let key, let c): path = c.codingPath + [key]
        @unknown default: path = []
        }
        return JSONPath.text(path)
    }

    /// What is wrong with the field: "is not a number", "is missing".
    var problem: String {
        switch self {
        case .typeMismatch(let type, _), .valueNotFound(let type, _):
            return "is not \(JSONPath.kind(type))"
        case .keyNotFound:
            return "is missing"
        case .dataCorrupted(let c):
            return "is not valid (\(c.debugDescription))"
        @unknown default:
            return "is not valid"
        }
    }
}

/// Paths of JSON values, as readers name them in errors and as `JSONAsWritten` keeps them.
enum JSONPath {
    /// Whether `key` is an array index (`JSONDecoder` names those "Index 3"; an object's key
    /// has an `intValue` only when its text is a number).
    static func index(_ key: CodingKey) -> Int? {
        guard let i = key.intValue, Int(key.stringValue) == nil else { return nil }
        return i
    }

    /// `a.b[2].c`.
    static func text(_ path: [CodingKey]) -> String {
        path.reduce("") { text, key in
            if let i = index(key) { return text + "[\(i)]" }
            return text.isEmpty ? key.stringValue : text + "." + key.stringValue
        }
    }

    /// Object keys and array indices ("2"), from the root.
    static func components(_ path: [CodingKey]) -> [String] {
        path.map { key in index(key).map(String.init) ?? key.stringValue }
    }

    /// "a number", "a list", … for a type `JSONDecoder` expected.
    static func kind(_ type: Any.Type) -> String {
        switch type {
        case is Bool.Type: "true or false"
        case is String.Type: "a string"
        case is Double.Type, is Float.Type, is Int.Type: "a number"
        case is [Any].Type: "a list"
        case is [String: Any].Type: "an object"
        default: "\(type)"
        }
    }
}

/// What `JSONDecoder` does not tell about a document: each number's text as written (`1.0`
/// and `1` decode alike), by its path (`JSONPath.components`; of duplicate keys the first, the
/// one `JSONDecoder` takes), and the keys an object gives twice (`JSONDecoder` takes the first
/// silently, `JSONSerialization` took the last: the readers refuse them). Any bytes are safe:
/// the scan never reads past the end, and what is not JSON gives nothing useful but no error.
struct JSONAsWritten: Sendable {
    private var numbers: [[String]: String] = [:]
    /// The line of each key and of each list item (by path, the first of duplicates), and each
    /// object's keys in the order written; kept to the depth numbers are.
    private var lines: [[String]: Int] = [:]
    private var keyOrder: [[String]: [String]] = [:]
    /// The first key given again in its object: the key, its field (`steps[0].loss`) and the
    /// line of the repetition.
    private(set) var repeatedKey: (key: String, field: String, line: Int)?

    /// Numbers are kept up to `depth` containers deep (0: none; the scan is linear in the
    /// document's size, and its memory too, however deeply a hostile file nests).
    init(_ data: Data, numbersToDepth depth: Int) {
        let bytes = [UInt8](data)
        var isObject: [Bool] = []        // the open containers, innermost last
        var path: [String] = []          // each open container's current member
        var keys: [Set<String>] = []     // each open container's keys so far
        var expectingKey = false
        var expectingItem = false        // a list item starts at the next value byte
        var line = 1
        var i = 0
        while i < bytes.count {
            if expectingItem, isObject.last == false, !JSONAsWritten.isSpace(bytes[i]) {
                if bytes[i] != UInt8(ascii: "]"), path.count <= depth, lines[path] == nil { lines[path] = line }
                expectingItem = false
            }
            switch bytes[i] {
            case UInt8(ascii: "{"), UInt8(ascii: "["):
                let object = bytes[i] == UInt8(ascii: "{")
                isObject.append(object)
                path.append(object ? "" : "0")
                keys.append([])
                expectingKey = object
                expectingItem = !object
                i += 1
            case UInt8(ascii: "}"), UInt8(ascii: "]"):
                if !isObject.isEmpty {
                    isObject.removeLast()
                    path.removeLast()
                    keys.removeLast()
                }
                i += 1
            case UInt8(ascii: ","):
                if let object = isObject.last {
                    if object {
                        expectingKey = true
                    } else {
                        path[path.count - 1] = String((Int(path[path.count - 1]) ?? 0) + 1)
                        expectingItem = true
                    }
                }
                i += 1
            case UInt8(ascii: "\""):
                var end = i + 1
                var escaped = false
                while end < bytes.count, bytes[end] != UInt8(ascii: "\"") {
                    if bytes[end] == UInt8(ascii: "\\") {
                        escaped = true
                        end += 1
                    }
                    end += 1
                }
                end = min(end, bytes.count)
                if expectingKey, isObject.last == true {
                    let key = escaped
                        ? (try? JSONDecoder().decode(String.self, from: Data(bytes[i..<min(end + 1, bytes.count)]))) ?? ""
                        : String(decoding: bytes[(i + 1)..<end], as: UTF8.self)
                    path[path.count - 1] = key
                    if path.count <= depth, lines[path] == nil {
                        lines[path] = line
                        keyOrder[Array(path.dropLast()), default: []].append(key)
                    }
                    if !keys[keys.count - 1].insert(key).inserted, repeatedKey == nil {
                        let field = zip(isObject, path).reduce("") { text, level in
                            level.0 ? (text.isEmpty ? level.1 : text + "." + level.1) : text + "[\(level.1)]"
                        }
                        repeatedKey = (key, field, line)
                    }
                    expectingKey = false
                }
                i = end + 1
            case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"):
                var end = i + 1
                while end < bytes.count, JSONAsWritten.isNumberByte(bytes[end]) { end += 1 }
                if path.count <= depth, numbers[path] == nil { numbers[path] = String(decoding: bytes[i..<end], as: UTF8.self) }
                i = end
            case UInt8(ascii: "\n"):
                line += 1
                i += 1
            default:
                i += 1
            }
        }
    }

    private static func isSpace(_ b: UInt8) -> Bool {
        b == UInt8(ascii: " ") || b == UInt8(ascii: "\n") || b == UInt8(ascii: "\r") || b == UInt8(ascii: "\t")
    }

    /// The line of the key or list item at `codingPath`.
    func line(at codingPath: [CodingKey]) -> Int? { lines[JSONPath.components(codingPath)] }

    /// The keys of the object at `codingPath`, in the order written.
    func keys(at codingPath: [CodingKey]) -> [String]? { keyOrder[JSONPath.components(codingPath)] }

    private static func isNumberByte(_ b: UInt8) -> Bool {
        switch b {
        case UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "+"), UInt8(ascii: "."), UInt8(ascii: "e"), UInt8(ascii: "E"): true
        default: false
        }
    }

    /// The number at `codingPath` as the document writes it.
    func number(at codingPath: [CodingKey]) -> String? { numbers[JSONPath.components(codingPath)] }

    /// Whether a number's text is an integer: no fraction, no exponent.
    static func isInteger(_ text: String) -> Bool { !text.contains { $0 == "." || $0 == "e" || $0 == "E" } }
}
