import Foundation

/// The keys of a JSON object's top level, in order, as they are written. A JSON parser keeps
/// one of two equal keys without a word; a file that names one tensor twice must be refused.
enum JSONObjectKeys {
    /// The first top-level key that appears twice in the JSON object `text` (nil when none, or
    /// when `text` is not an object: the parser reports that).
    static func firstDuplicate(in text: [UInt8]) -> String? {
        var seen = Set<String>()
        var depth = 0, i = 0
        var lastString: Range<Int>?
        while i < text.count {
            let c = text[i]
            if c == UInt8(ascii: "\"") {
                // A string: skip to its closing quote, past escapes.
                let start = i
                i += 1
                while i < text.count, text[i] != UInt8(ascii: "\"") { i += text[i] == UInt8(ascii: "\\") ? 2 : 1 }
                lastString = start..<min(i + 1, text.count)
            } else if c == UInt8(ascii: ":") {
                if depth == 1, let range = lastString, let key = decode(Array(text[range])) {
                    if !seen.insert(key).inserted { return key }
                }
                lastString = nil
            } else if c == UInt8(ascii: "{") || c == UInt8(ascii: "[") {
                depth += 1
                lastString = nil
            } else if c == UInt8(ascii: "}") || c == UInt8(ascii: "]") {
                depth -= 1
                lastString = nil
            } else if c > 0x20 {
                lastString = nil
            }
            i += 1
        }
        return nil
    }

    /// A quoted JSON string's value, escapes resolved ("\u0061" and "a" are one key).
    private static func decode(_ quoted: [UInt8]) -> String? {
        let array = [UInt8(ascii: "[")] + quoted + [UInt8(ascii: "]")]
        return (try? JSONSerialization.jsonObject(with: Data(array))).flatMap { ($0 as? [String])?.first }
    }
}
