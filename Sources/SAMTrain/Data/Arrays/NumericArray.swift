/// One array read from a user's file (a NumPy `.npy` inside an `.npz`, or a safetensors
/// tensor): its element type, shape and raw bytes, little-endian and in C (row-major) order.
/// The readers check that `bytes.count == elementCount * type.size` before they return one.
public struct NumericArray: Sendable {
    /// The element types samtrain reads. Strings are for class names only.
    public enum ElementType: Sendable, Equatable, CustomStringConvertible {
        case bool
        case uint8, uint16, uint32, uint64
        case int8, int16, int32, int64
        case float16, bfloat16, float32, float64
        /// A fixed-width string of `count` characters: NumPy's `<U` (UTF-32, 4 bytes each)
        /// or `|S` (bytes).
        case unicode(count: Int)
        case bytes(count: Int)

        /// Bytes per element.
        public var size: Int {
            switch self {
            case .bool, .uint8, .int8: 1
            case .uint16, .int16, .float16, .bfloat16: 2
            case .uint32, .int32, .float32: 4
            case .uint64, .int64, .float64: 8
            case .unicode(let n): 4 * n
            case .bytes(let n): n
            }
        }

        public var isInteger: Bool {
            switch self {
            case .uint8, .uint16, .uint32, .uint64, .int8, .int16, .int32, .int64: true
            default: false
            }
        }

        public var isFloat: Bool {
            switch self {
            case .float16, .bfloat16, .float32, .float64: true
            default: false
            }
        }

        public var isString: Bool {
            switch self {
            case .unicode, .bytes: true
            default: false
            }
        }

        /// NumPy's name ("uint8", "float32", "<U5").
        public var description: String {
            switch self {
            case .bool: "bool"
            case .uint8: "uint8"
            case .uint16: "uint16"
            case .uint32: "uint32"
            case .uint64: "uint64"
            case .int8: "int8"
            case .int16: "int16"
            case .int32: "int32"
            case .int64: "int64"
            case .float16: "float16"
            case .bfloat16: "bfloat16"
            case .float32: "float32"
            case .float64: "float64"
            case .unicode(let n): "<U\(n)"
            case .bytes(let n): "|S\(n)"
            }
        }
    }

    /// The array's name in its file (`train_images`; an `.npz` member without its `.npy`).
    public var name: String
    public var type: ElementType
    public var shape: [Int]
    /// Little-endian, C order; exactly `elementCount * type.size` bytes.
    public var bytes: [UInt8]

    public init(name: String, type: ElementType, shape: [Int], bytes: [UInt8]) {
        precondition(bytes.count == shape.reduce(1, *) * type.size, "NumericArray: byte count does not match the shape")
        self.name = name
        self.type = type
        self.shape = shape
        self.bytes = bytes
    }

    public var elementCount: Int { shape.reduce(1, *) }

    /// "60000×28×28", for messages.
    public var shapeText: String { shape.isEmpty ? "scalar" : shape.map(String.init).joined(separator: "×") }

    /// The values of an integer (or bool) array, nil for other types.
    public func integers() -> [Int64]? {
        let n = elementCount
        return bytes.withUnsafeBytes { raw -> [Int64]? in
            func load<T: FixedWidthInteger>(_: T.Type) -> [Int64] {
                (0..<n).map { Int64(truncatingIfNeeded: T(littleEndian: raw.loadUnaligned(fromByteOffset: $0 * MemoryLayout<T>.size, as: T.self))) }
            }
            switch type {
            case .bool, .uint8: return load(UInt8.self)
            case .int8: return load(Int8.self)
            case .uint16: return load(UInt16.self)
            case .int16: return load(Int16.self)
            case .uint32: return load(UInt32.self)
            case .int32: return load(Int32.self)
            case .int64: return load(Int64.self)
            case .uint64:
                // Above Int64.max is out of any range a caller checks for: clamp, never wrap negative.
                return (0..<n).map { i in
                    let v = UInt64(littleEndian: raw.loadUnaligned(fromByteOffset: i * 8, as: UInt64.self))
                    return v > UInt64(Int64.max) ? Int64.max : Int64(v)
                }
            default: return nil
            }
        }
    }

    /// The values of a float array converted to Float (float16, bfloat16 and float64
    /// rounded to nearest), nil for other types.
    public func floats() -> [Float]? {
        let n = elementCount
        return bytes.withUnsafeBytes { raw -> [Float]? in
            switch type {
            case .float32:
                return (0..<n).map { Float(bitPattern: UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: $0 * 4, as: UInt32.self))) }
            case .float64:
                return (0..<n).map { Float(Double(bitPattern: UInt64(littleEndian: raw.loadUnaligned(fromByteOffset: $0 * 8, as: UInt64.self)))) }
            case .float16:
                return (0..<n).map { Float(Float16(bitPattern: UInt16(littleEndian: raw.loadUnaligned(fromByteOffset: $0 * 2, as: UInt16.self)))) }
            case .bfloat16:
                // bfloat16 is the upper half of a float32.
                return (0..<n).map { Float(bitPattern: UInt32(UInt16(littleEndian: raw.loadUnaligned(fromByteOffset: $0 * 2, as: UInt16.self))) << 16) }
            default: return nil
            }
        }
    }

    /// The values of a string array (trailing NULs removed), nil for other types or for
    /// bytes that are not valid text.
    public func strings() -> [String]? {
        let n = elementCount, size = type.size
        switch type {
        case .unicode(let count):
            var out: [String] = []
            for i in 0..<n {
                var scalars = String.UnicodeScalarView()
                for j in 0..<count {
                    let o = i * size + 4 * j
                    let code = UInt32(bytes[o]) | UInt32(bytes[o + 1]) << 8 | UInt32(bytes[o + 2]) << 16 | UInt32(bytes[o + 3]) << 24
                    if code == 0 { break }
                    guard let s = Unicode.Scalar(code) else { return nil }
                    scalars.append(s)
                }
                out.append(String(scalars))
            }
            return out
        case .bytes:
            var out: [String] = []
            for i in 0..<n {
                var slice = bytes[(i * size)..<((i + 1) * size)]
                while let last = slice.last, last == 0 { slice = slice.dropLast() }
                guard let s = String(validating: slice, as: UTF8.self) else { return nil }
                out.append(s)
            }
            return out
        default: return nil
        }
    }
}
