/// NumPy's `.npy` array format, versions 1.0, 2.0 (4-byte header length) and 3.0 (UTF-8
/// header): a magic string, a header that is a Python dict literal
/// (`{'descr': '<u1', 'fortran_order': False, 'shape': (60000, 28, 28), }`), then the data.
/// Everything a file says is hostile until checked: the header is read by a small strict
/// parser (never `eval`, never unpickled), and sizes are multiplied with `CheckedSize`.
public enum NPY {
    /// `\x93NUMPY`.
    static let magic: [UInt8] = [0x93, 0x4E, 0x55, 0x4D, 0x50, 0x59]
    /// Longest header read. NumPy itself refuses more than 10,000 bytes unless told otherwise;
    /// a header only ever holds a dtype and a shape.
    static let maximumHeaderLength = 1 << 20
    /// Widest string element (characters): class names are short, and 4 × this cannot overflow.
    static let maximumStringWidth = 1 << 20

    /// Decodes one `.npy` file held in memory. The data is moved, not copied: the header is
    /// removed from the front of `bytes` in place, and big-endian data is swapped in place.
    /// - Parameters:
    ///   - name: the array's name, for messages and the result (`train_images`).
    ///   - source: the file it came from, for messages.
    /// - Throws: `SAMTrainError` naming `source` and `name` for anything but a plain array.
    public static func decode(_ bytes: consuming [UInt8], name: String, source: String) throws -> NumericArray {
        let context = "\(source): array \(name)"
        let layout = try bytes.withUnsafeBytes { raw -> Layout in
            let pre = try preamble(raw, context: context)
            let headerEnd = pre.size + pre.headerLength
            guard headerEnd <= raw.count else {
                throw SAMTrainError("\(context): truncated: the .npy header says it is \(pre.headerLength) bytes, only \(raw.count - pre.size) follow")
            }
            return try NPY.layout(header: UnsafeRawBufferPointer(rebasing: raw[pre.size..<headerEnd]),
                              utf8: pre.utf8, dataOffset: headerEnd, context: context)
        }
        try checkDataSize(layout, present: bytes.count - layout.dataOffset, context: context)
        // A memmove within the one buffer when the caller handed its last reference over.
        bytes.removeSubrange(0..<layout.dataOffset)
        layout.toLittleEndian(&bytes)
        return NumericArray(name: name, type: layout.type, shape: layout.shape, bytes: bytes)
    }

    /// What a header says: the element type, the shape, and where and how long the data is.
    struct Layout {
        var type: NumericArray.ElementType
        var shape: [Int]
        /// Bytes swapped as a unit when the data is big-endian (an element, or one UTF-32 code
        /// unit of a `<U` string); 1 when nothing is swapped.
        var swapUnit: Int
        /// Bytes before the data: preamble and header.
        var dataOffset: Int
        /// Exactly `elementCount * type.size`, checked for overflow.
        var dataSize: Int

        /// Big-endian data made little-endian, in place.
        func toLittleEndian(_ data: inout [UInt8]) {
            guard swapUnit > 1 else { return }
            data.withUnsafeMutableBytes { raw in
                switch swapUnit {
                case 2: swap(raw, UInt16.self)
                case 4: swap(raw, UInt32.self)
                default: swap(raw, UInt64.self)
                }
            }
        }

        private func swap<T: FixedWidthInteger>(_ raw: UnsafeMutableRawBufferPointer, _: T.Type) {
            let size = MemoryLayout<T>.size
            for o in stride(from: 0, to: raw.count - size + 1, by: size) {
                raw.storeBytes(of: raw.loadUnaligned(fromByteOffset: o, as: T.self).byteSwapped, toByteOffset: o, as: T.self)
            }
        }
    }

    /// The fixed start of a `.npy`: magic, version, header length. Needs 10 bytes for version
    /// 1.0, 12 for 2.0 and 3.0 (`size`).
    static func preamble(_ p: UnsafeRawBufferPointer, context: String) throws -> (size: Int, headerLength: Int, utf8: Bool) {
        guard p.count >= 8, p.prefix(6).elementsEqual(magic) else {
            throw SAMTrainError("\(context): not a .npy array (it does not start with \\x93NUMPY)")
        }
        let major = p[6], minor = p[7]
        guard minor == 0, (1...3).contains(major) else {
            throw SAMTrainError("\(context): .npy format version \(major).\(minor) is not one samtrain reads (1.0, 2.0, 3.0)")
        }
        let size = major == 1 ? 10 : 12
        guard p.count >= size else { throw SAMTrainError("\(context): truncated .npy preamble (\(p.count) bytes)") }
        var length = 0
        for i in (8..<size).reversed() { length = length << 8 | Int(p[i]) }
        guard length <= maximumHeaderLength else {
            throw SAMTrainError("\(context): .npy header of \(length) bytes is longer than samtrain reads (at most \(maximumHeaderLength))")
        }
        return (size, length, major == 3)
    }

    /// Parses a header's dict and checks it describes a plain C-order array samtrain reads.
    static func layout(header: UnsafeRawBufferPointer, utf8: Bool, dataOffset: Int, context: String) throws -> Layout {
        var parser = LiteralParser(bytes: header, utf8: utf8)
        let entries: [(key: String, value: LiteralParser.Value)]
        do {
            entries = try parser.header()
        } catch let error as LiteralParser.Failure {
            throw SAMTrainError("\(context): .npy header is not a valid Python dict literal: \(error.message)")
        }
        var dict: [String: LiteralParser.Value] = [:]
        for (k, v) in entries {
            guard dict.updateValue(v, forKey: k) == nil else { throw SAMTrainError("\(context): .npy header repeats the key '\(k)'") }
        }
        guard Set(dict.keys) == ["descr", "fortran_order", "shape"] else {
            throw SAMTrainError("\(context): .npy header has the keys \(dict.keys.sorted()), not descr, fortran_order and shape")
        }
        let (type, swapUnit) = try elementType(dict["descr"]!, context: context)
        guard case .bool(let fortran) = dict["fortran_order"]! else {
            throw SAMTrainError("\(context): .npy header's fortran_order is not True or False")
        }
        guard !fortran else { throw SAMTrainError("\(context): Fortran order: save it with np.ascontiguousarray") }
        guard case .tuple(let dims) = dict["shape"]! else { throw SAMTrainError("\(context): .npy header's shape is not a tuple") }
        var shape: [Int] = []
        for d in dims {
            guard case .integer(let n) = d, let n, n >= 0 else {
                throw SAMTrainError("\(context): .npy shape has a dimension that is not a whole number in 0…\(Int.max)")
            }
            shape.append(n)
        }
        // Left to right as NumericArray multiplies, so its own product cannot overflow either.
        guard let dataSize = CheckedSize.product(shape + [type.size]), dataOffset <= Int.max - dataSize else {
            throw SAMTrainError("\(context): shape \(shape.map(String.init).joined(separator: "×")) of \(type) is too large (its byte count overflows)")
        }
        return Layout(type: type, shape: shape, swapUnit: swapUnit, dataOffset: dataOffset, dataSize: dataSize)
    }

    /// `present` bytes of data follow the header: exactly the shape's, or an error.
    static func checkDataSize(_ layout: Layout, present: Int, context: String) throws {
        guard present != layout.dataSize else { return }
        let what = "shape \(layout.shape.isEmpty ? "scalar" : layout.shape.map(String.init).joined(separator: "×")) of \(layout.type)"
        if present < layout.dataSize {
            throw SAMTrainError("\(context): truncated: \(what) needs \(layout.dataSize) bytes of data, the file has \(present)")
        }
        throw SAMTrainError("\(context): \(present - layout.dataSize) unexpected trailing bytes after the \(layout.dataSize) bytes of \(what)")
    }

    /// A `descr` as NumPy writes it (`dtype.str`): byte order `<` `>` `=` or `|`, kind, size.
    static func elementType(_ descr: LiteralParser.Value, context: String) throws -> (NumericArray.ElementType, swapUnit: Int) {
        guard case .string(let text) = descr else {
            if case .list = descr {
                throw SAMTrainError("\(context): structured (record) dtype: refused, samtrain reads plain arrays and never unpickles")
            }
            throw SAMTrainError("\(context): .npy header's descr is not a string")
        }
        let c = Array(text.utf8)
        let unsupported = "\(context): unsupported dtype '\(text)'"
        guard c.count >= 2, let order = c.first, "<>=|".utf8.contains(order) else { throw SAMTrainError(unsupported) }
        let kind = Character(Unicode.Scalar(c[1]))
        if kind == "O" { throw SAMTrainError("\(context): object (pickled) array: refused, samtrain never unpickles") }
        let digits = c[2...]
        guard !digits.isEmpty, digits.count <= 8, digits.allSatisfy({ (0x30...0x39).contains($0) }) else {
            switch kind {
            case "c": throw SAMTrainError(unsupported + " (complex)")
            case "M", "m": throw SAMTrainError(unsupported + " (datetime)")
            case "V": throw SAMTrainError(unsupported + " (raw void bytes)")
            default: throw SAMTrainError(unsupported)
            }
        }
        let size = digits.reduce(0) { $0 * 10 + Int($1 - 0x30) }
        let type: NumericArray.ElementType
        var unit: Int
        switch (kind, size) {
        case ("b", 1): type = .bool; unit = 1
        case ("u", 1): type = .uint8; unit = 1
        case ("u", 2): type = .uint16; unit = 2
        case ("u", 4): type = .uint32; unit = 4
        case ("u", 8): type = .uint64; unit = 8
        case ("i", 1): type = .int8; unit = 1
        case ("i", 2): type = .int16; unit = 2
        case ("i", 4): type = .int32; unit = 4
        case ("i", 8): type = .int64; unit = 8
        case ("f", 2): type = .float16; unit = 2
        case ("f", 4): type = .float32; unit = 4
        case ("f", 8): type = .float64; unit = 8
        case ("U", _), ("S", _):
            guard size <= maximumStringWidth else {
                throw SAMTrainError("\(unsupported): strings wider than \(maximumStringWidth) characters are not read")
            }
            (type, unit) = kind == "U" ? (.unicode(count: size), 4) : (.bytes(count: size), 1)
        case ("c", _): throw SAMTrainError(unsupported + " (complex)")
        case ("M", _), ("m", _): throw SAMTrainError(unsupported + " (datetime)")
        case ("V", _): throw SAMTrainError(unsupported + " (raw void bytes)")
        default: throw SAMTrainError(unsupported)
        }
        // NumPy writes '|' only where byte order means nothing.
        if order == UInt8(ascii: "|") && unit > 1 {
            throw SAMTrainError("\(unsupported): byte order '|' on a multi-byte type")
        }
        // '=' is native, and every platform samtrain runs on is little-endian.
        return (type, order == UInt8(ascii: ">") ? unit : 1)
    }
}

/// The subset of Python literals a `.npy` header holds: strings, whole numbers, True, False,
/// None, tuples, lists and dicts, nested at most `maximumDepth` deep (hostile nesting must not
/// exhaust the stack).
struct LiteralParser {
    enum Value {
        case string(String)
        /// nil: beyond `Int`.
        case integer(Int?)
        case bool(Bool)
        case none
        case tuple([Value])
        case list([Value])
        case dict([(key: String, value: Value)])
    }

    struct Failure: Error { var message: String }

    static let maximumDepth = 32
    let bytes: UnsafeRawBufferPointer
    /// Version 3.0 headers are UTF-8; 1.0 and 2.0 are Latin-1.
    let utf8: Bool
    var i = 0

    init(bytes: UnsafeRawBufferPointer, utf8: Bool) {
        self.bytes = bytes
        self.utf8 = utf8
    }

    /// The whole header: one dict, then only whitespace (NumPy pads with spaces and a newline).
    mutating func header() throws -> [(key: String, value: Value)] {
        skipSpace()
        guard peek == UInt8(ascii: "{") else { throw fail("the header does not start with '{'") }
        guard case .dict(let entries) = try value(depth: 0) else { throw fail("the header is not a dict") }
        skipSpace()
        guard i == bytes.count else { throw fail("unexpected text after the dict") }
        return entries
    }

    private var peek: UInt8? { i < bytes.count ? bytes[i] : nil }

    private func fail(_ what: String) -> Failure { Failure(message: "\(what) (at byte \(i))") }

    private mutating func skipSpace() {
        while let c = peek, c == 0x20 || c == 0x09 || c == 0x0A || c == 0x0D { i += 1 }
    }

    private mutating func expect(_ c: Character) throws {
        skipSpace()
        guard peek == c.asciiValue else { throw fail("expected '\(c)'") }
        i += 1
    }

    private mutating func value(depth: Int) throws -> Value {
        guard depth < Self.maximumDepth else { throw fail("nested more than \(Self.maximumDepth) deep") }
        skipSpace()
        guard let c = peek else { throw fail("the header ends in the middle of a value") }
        switch c {
        case UInt8(ascii: "'"), UInt8(ascii: "\""): return .string(try string())
        case UInt8(ascii: "("):
            i += 1
            let (items, sawComma) = try sequence(until: ")", depth: depth)
            // `(5)` is 5 in Python; only `(5,)` is a 1-tuple.
            if items.count == 1 && !sawComma { return items[0] }
            return .tuple(items)
        case UInt8(ascii: "["):
            i += 1
            return .list(try sequence(until: "]", depth: depth).items)
        case UInt8(ascii: "{"):
            i += 1
            var entries: [(key: String, value: Value)] = []
            while true {
                skipSpace()
                if peek == UInt8(ascii: "}") { i += 1; return .dict(entries) }
                guard case .string(let key) = try value(depth: depth + 1) else { throw fail("a dict key is not a string") }
                try expect(":")
                entries.append((key, try value(depth: depth + 1)))
                skipSpace()
                if peek == UInt8(ascii: ",") { i += 1; continue }
                try expect("}")
                return .dict(entries)
            }
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return .integer(try integer())
        default:
            for (word, v) in [("True", Value.bool(true)), ("False", .bool(false)), ("None", .none)] {
                let w = Array(word.utf8)
                if bytes.count - i >= w.count && bytes[i..<(i + w.count)].elementsEqual(w) {
                    i += w.count
                    return v
                }
            }
            throw fail("unexpected character")
        }
    }

    /// Items separated by commas, a trailing comma allowed, up to `close`.
    private mutating func sequence(until close: Character, depth: Int) throws -> (items: [Value], sawComma: Bool) {
        var items: [Value] = []
        var sawComma = false
        while true {
            skipSpace()
            if peek == close.asciiValue { i += 1; return (items, sawComma) }
            items.append(try value(depth: depth + 1))
            skipSpace()
            if peek == UInt8(ascii: ",") { i += 1; sawComma = true; continue }
            try expect(close)
            return (items, sawComma)
        }
    }

    /// A decimal whole number, with Python 2's `L` suffix allowed; nil past `Int`.
    private mutating func integer() throws -> Int? {
        let negative = peek == UInt8(ascii: "-")
        if negative { i += 1 }
        let start = i
        var n: Int? = 0
        while let c = peek, (0x30...0x39).contains(c) {
            if let v = n {
                let (m, o1) = v.multipliedReportingOverflow(by: 10)
                let (s, o2) = m.addingReportingOverflow(Int(c - 0x30))
                n = o1 || o2 ? nil : s
            }
            i += 1
        }
        guard i > start else { throw fail("expected a digit") }
        if peek == UInt8(ascii: "L") || peek == UInt8(ascii: "l") { i += 1 }
        return negative ? n.map { -$0 } : n
    }

    /// A quoted string; a backslash escapes the character after it.
    private mutating func string() throws -> String {
        let quote = bytes[i]
        i += 1
        var out: [UInt8] = []
        while true {
            guard var c = peek else { throw fail("unterminated string") }
            i += 1
            if c == quote { break }
            if c == UInt8(ascii: "\\") {
                guard let next = peek else { throw fail("unterminated string") }
                c = next
                i += 1
            }
            out.append(c)
        }
        if utf8 {
            guard let s = String(validating: out, as: UTF8.self) else { throw fail("a string is not valid UTF-8") }
            return s
        }
        return String(String.UnicodeScalarView(out.map { Unicode.Scalar($0) }))
    }
}
