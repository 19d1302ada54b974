import Foundation

/// The safetensors file format (Hugging Face): an 8-byte little-endian header length, a
/// JSON header mapping each tensor name to its dtype, shape and byte range, an optional
/// `__metadata__` map of strings, then the raw little-endian data.
///
/// samtrain writes float32 tensors only; the reader validates everything a damaged or
/// foreign file can get wrong before any value is used.
public enum SafeTensors {
    public struct TensorEntry: Equatable {
        public var name: String
        public var shape: [Int]
        public var values: [Float]
        public init(name: String, shape: [Int], values: [Float]) {
            self.name = name
            self.shape = shape
            self.values = values
        }
    }

    public struct File {
        public var tensors: [TensorEntry]
        public var metadata: [String: String]

        public init(tensors: [TensorEntry], metadata: [String: String]) {
            self.tensors = tensors
            self.metadata = metadata
        }

        public func tensor(_ name: String) -> TensorEntry? { tensors.first { $0.name == name } }
    }

    public static let maximumHeaderBytes = 100 * 1024 * 1024

    /// Serializes tensors (in the given order) and metadata.
    public static func encode(_ file: File) -> [UInt8] {
        var header = "{"
        var offset = 0
        var parts: [String] = []
        if !file.metadata.isEmpty {
            let items = file.metadata.keys.sorted().map { "\(jsonString($0)):\(jsonString(file.metadata[$0]!))" }
            parts.append("\"__metadata__\":{\(items.joined(separator: ","))}")
        }
        for t in file.tensors {
            let bytes = t.values.count * 4
            parts.append("\(jsonString(t.name)):{\"dtype\":\"F32\",\"shape\":[\(t.shape.map(String.init).joined(separator: ","))],\"data_offsets\":[\(offset),\(offset + bytes)]}")
            offset += bytes
        }
        header += parts.joined(separator: ",") + "}"
        var headerBytes = Array(header.utf8)
        while headerBytes.count % 8 != 0 { headerBytes.append(0x20) }   // pad with spaces (alignment)
        var out = [UInt8]()
        out.reserveCapacity(8 + headerBytes.count + offset)
        withUnsafeBytes(of: UInt64(headerBytes.count).littleEndian) { out.append(contentsOf: $0) }
        out.append(contentsOf: headerBytes)
        for t in file.tensors {
            t.values.withUnsafeBufferPointer { p in
                for v in p { withUnsafeBytes(of: v.bitPattern.littleEndian) { out.append(contentsOf: $0) } }
            }
        }
        return out
    }

    /// One tensor's place in the file, validated: its dtype, shape and byte range.
    struct Entry {
        var name: String
        var dtype: String
        var shape: [Int]
        var begin: Int
        var end: Int
    }

    /// The dtypes samtrain reads, as safetensors names them, and what each becomes.
    static let elementTypes: [String: NumericArray.ElementType] = [
        "BOOL": .bool, "U8": .uint8, "I8": .int8, "U16": .uint16, "I16": .int16, "U32": .uint32, "I32": .int32,
        "U64": .uint64, "I64": .int64, "F16": .float16, "BF16": .bfloat16, "F32": .float32, "F64": .float64,
    ]

    /// Parses and checks the header: every entry's dtype known, shape and byte range whole
    /// numbers that fit the data, no two tensors overlapping, no name twice, every data byte
    /// covered. Returns the entries in file order and where the data starts.
    static func parseHeader(_ bytes: [UInt8], fail: (String) -> SAMTrainError) throws
        -> (entries: [Entry], metadata: [String: String], dataStart: Int) {
        guard bytes.count >= 8 else { throw fail("file is \(bytes.count) bytes, shorter than the 8-byte header length") }
        var n: UInt64 = 0
        for i in 0..<8 { n |= UInt64(bytes[i]) << (8 * UInt64(i)) }
        guard n <= UInt64(maximumHeaderBytes) else { throw fail("header length \(n) is above the 100 MB limit") }
        guard n <= UInt64(bytes.count - 8) else { throw fail("header length \(n) runs past the end of the \(bytes.count)-byte file (truncated?)") }
        let headerEnd = 8 + Int(n)
        let headerBytes = Array(bytes[8..<headerEnd])
        guard let json = try? JSONSerialization.jsonObject(with: Data(headerBytes)),
              let header = json as? [String: Any] else { throw fail("the header is not a JSON object") }
        // A JSON parser keeps one of two equal keys silently; two tensors of one name are an error.
        if let twice = JSONObjectKeys.firstDuplicate(in: headerBytes) {
            throw fail("the header names tensor \(twice) twice")
        }
        var metadata: [String: String] = [:]
        if let m = header["__metadata__"] {
            guard let map = m as? [String: Any] else { throw fail("__metadata__ is not a map of strings") }
            for (k, v) in map {
                guard let s = v as? String else { throw fail("__metadata__[\(k)] is not a string") }
                metadata[k] = s
            }
        }
        let dataSize = bytes.count - headerEnd
        var entries: [Entry] = []
        for (name, value) in header where name != "__metadata__" {
            guard let info = value as? [String: Any] else { throw fail("entry \(name) is not an object") }
            guard let dtype = info["dtype"] as? String else { throw fail("tensor \(name) has no dtype") }
            guard let type = elementTypes[dtype] else {
                throw fail("tensor \(name) has dtype \(dtype); samtrain reads \(elementTypes.keys.sorted().joined(separator: ", "))")
            }
            // Every number is checked before use: a dimension or offset ≥ 2⁶³ or a product
            // that overflows is an error, not a trap.
            guard let shapeAny = info["shape"] as? [Any], shapeAny.count <= 16,
                  let shape = shapeAny.map({ CheckedSize.integer($0, in: 0...Int(Int32.max)) }) as? [Int] else {
                throw fail("tensor \(name) has no valid shape (at most 16 whole dimensions in 0…\(Int32.max))")
            }
            guard let offsets = info["data_offsets"] as? [Any], offsets.count == 2,
                  let begin = CheckedSize.integer(offsets[0], in: 0...dataSize), let end = CheckedSize.integer(offsets[1], in: 0...dataSize),
                  begin <= end else {
                throw fail("tensor \(name)'s data_offsets \(info["data_offsets"].map { "\($0)" } ?? "(missing)") are outside the \(dataSize) data bytes (truncated?); they must be two whole numbers 0 ≤ begin ≤ end ≤ \(dataSize)")
            }
            let elements = CheckedSize.product(shape, limit: dataSize / type.size)
            guard let elements, end - begin == elements * type.size else {
                let size = elements.map { "\($0 * type.size) bytes" } ?? "more than the \(dataSize) data bytes"
                throw fail("tensor \(name) has shape \(shape) (\(size) of \(dtype)) but data_offsets span \(end - begin) bytes")
            }
            entries.append(Entry(name: name, dtype: dtype, shape: shape, begin: begin, end: end))
        }
        entries.sort { $0.begin < $1.begin || ($0.begin == $1.begin && $0.end < $1.end) }
        var covered = 0
        for e in entries {
            guard e.begin >= covered else { throw fail("tensor \(e.name)'s bytes overlap another tensor's") }
            covered = e.end
        }
        guard covered == dataSize else {
            throw fail("the tensors cover \(covered) of the \(dataSize) data bytes")
        }
        return (entries, metadata, headerEnd)
    }

    /// Parses and validates a samtrain checkpoint (float32 tensors only); `source` names it in errors.
    public static func decode(_ bytes: [UInt8], source: String) throws -> File {
        func fail(_ why: String) -> SAMTrainError { SAMTrainError("\(source): not a valid safetensors checkpoint: \(why)") }
        let (entries, metadata, headerEnd) = try parseHeader(bytes, fail: fail)
        if let other = entries.first(where: { $0.dtype != "F32" }) {
            throw fail("tensor \(other.name) has dtype \(other.dtype); a samtrain checkpoint holds F32 only")
        }
        let tensors = entries.map { e -> TensorEntry in
            let count = (e.end - e.begin) / 4
            var values = [Float](repeating: 0, count: count)
            bytes.withUnsafeBytes { raw in
                for i in 0..<count {
                    let bits = raw.loadUnaligned(fromByteOffset: headerEnd + e.begin + 4 * i, as: UInt32.self)
                    values[i] = Float(bitPattern: UInt32(littleEndian: bits))
                }
            }
            return TensorEntry(name: e.name, shape: e.shape, values: values)
        }
        return File(tensors: tensors, metadata: metadata)
    }

    /// Parses and validates any safetensors file (a user's dataset, a PyTorch `state_dict`):
    /// every tensor as a `NumericArray` of its own dtype, in file order, and the metadata.
    public static func decodeArrays(_ bytes: [UInt8], source: String) throws -> (arrays: [NumericArray], metadata: [String: String]) {
        func fail(_ why: String) -> SAMTrainError { SAMTrainError("\(source): not a valid safetensors file: \(why)") }
        let (entries, metadata, headerEnd) = try parseHeader(bytes, fail: fail)
        let arrays = entries.map { e in
            NumericArray(name: e.name, type: elementTypes[e.dtype]!, shape: e.shape,
                         bytes: Array(bytes[(headerEnd + e.begin)..<(headerEnd + e.end)]))
        }
        return (arrays, metadata)
    }

    private static func jsonString(_ s: String) -> String {
        let data = try! JSONSerialization.data(withJSONObject: [s], options: [.withoutEscapingSlashes])
        let text = String(decoding: data, as: UTF8.self)
        return String(text.dropFirst().dropLast())
    }
}
