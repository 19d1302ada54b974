/// TFRecord framing, the container of TensorBoard event files: each record is
///
///     uint64 length (little-endian) · uint32 masked CRC-32C of those 8 bytes ·
///     data · uint32 masked CRC-32C of the data
public enum TFRecord {
    public static func frame(_ data: [UInt8]) -> [UInt8] {
        var length = [UInt8]()
        withUnsafeBytes(of: UInt64(data.count).littleEndian) { length.append(contentsOf: $0) }
        var out = length
        out += littleEndian(CRC32C.masked(length))
        out += data
        out += littleEndian(CRC32C.masked(data))
        return out
    }

    static func littleEndian(_ v: UInt32) -> [UInt8] {
        withUnsafeBytes(of: v.littleEndian) { Array($0) }
    }
}
