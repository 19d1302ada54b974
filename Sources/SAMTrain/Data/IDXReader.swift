import CZlib
import Foundation

/// Reads IDX files (the MNIST family's format), raw or gzip-compressed: a big-endian
/// header (two zero bytes, a type byte, the number of dimensions, each dimension as a
/// UInt32), then the values. samtrain reads unsigned bytes (type 0x08) only.
public enum IDXReader {
    /// The largest file samtrain reads, decompressed (Fashion-MNIST's largest is 47 MB).
    public static let maximumBytes = 1 << 31

    public struct File {
        public var dimensions: [Int]
        public var bytes: [UInt8]
    }

    /// Reads and validates `path`; `expectedRank` is 3 for images, 1 for labels.
    public static func read(_ path: String, expectedRank: Int) throws -> File {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw SAMTrainError("\(path): cannot read the file")
        }
        let raw = [UInt8](data)
        return try parse(file: raw, path: path, expectedRank: expectedRank)
    }

    /// Parses a whole file's bytes, raw or gzip-compressed (what `read` and the fuzz target use).
    public static func parse(file raw: [UInt8], path: String, expectedRank: Int) throws -> File {
        guard raw.count <= maximumBytes else { throw SAMTrainError("\(path): \(raw.count) bytes, more than samtrain reads (at most \(maximumBytes) bytes)") }
        let contents = raw.count >= 2 && raw[0] == 0x1F && raw[1] == 0x8B ? try gunzip(raw, path: path) : raw
        return try parse(contents, path: path, expectedRank: expectedRank)
    }

    static func parse(_ b: [UInt8], path: String, expectedRank: Int) throws -> File {
        guard b.count >= 4 else { throw SAMTrainError("\(path): truncated: \(b.count) bytes, shorter than the IDX header") }
        guard b[0] == 0, b[1] == 0 else {
            throw SAMTrainError("\(path): not an IDX file (bad magic number \(String(format: "0x%02x%02x%02x%02x", b[0], b[1], b[2], b[3])))")
        }
        guard b[2] == 0x08 else {
            throw SAMTrainError("\(path): IDX data type 0x\(String(b[2], radix: 16)) is not unsigned byte (0x08)")
        }
        let rank = Int(b[3])
        guard rank == expectedRank else {
            throw SAMTrainError("\(path): IDX file has \(rank) dimension(s), expected \(expectedRank) (magic 0x0000080\(expectedRank))")
        }
        let headerSize = 4 + 4 * rank
        guard b.count >= headerSize else { throw SAMTrainError("\(path): truncated inside the IDX header") }
        var dims: [Int] = []
        for d in 0..<rank {
            let o = 4 + 4 * d
            let v = Int(b[o]) << 24 | Int(b[o + 1]) << 16 | Int(b[o + 2]) << 8 | Int(b[o + 3])
            guard v > 0, v <= 100_000_000 else { throw SAMTrainError("\(path): IDX dimension \(d) is \(v), outside 1…100000000") }
            dims.append(v)
        }
        let shape = dims.map(String.init).joined(separator: "×")
        guard let expected = CheckedSize.product(dims, limit: maximumBytes) else {
            throw SAMTrainError("\(path): IDX header says \(shape) bytes of data, more than samtrain reads (at most \(maximumBytes) bytes)")
        }
        let payload = b.count - headerSize
        guard payload == expected else {
            if payload < expected {
                throw SAMTrainError("\(path): truncated: header says \(shape) = \(expected) bytes of data, file has \(payload)")
            }
            throw SAMTrainError("\(path): \(payload - expected) unexpected trailing bytes after \(shape) = \(expected) bytes of data")
        }
        return File(dimensions: dims, bytes: Array(b[headerSize...]))
    }

    /// Decompresses a whole gzip stream with zlib; a stream that ends early is an error.
    static func gunzip(_ input: [UInt8], path: String) throws -> [UInt8] {
        var stream = z_stream()
        guard inflateInit2_(&stream, 15 + 16, ZLIB_VERSION, Int32(MemoryLayout<z_stream>.size)) == Z_OK else {
            throw SAMTrainError("\(path): zlib could not start")
        }
        defer { inflateEnd(&stream) }
        var output = [UInt8]()
        output.reserveCapacity(min(input.count, maximumBytes / 4) * 4)
        var chunk = [UInt8](repeating: 0, count: 1 << 20)
        var status: Int32 = Z_OK
        var input = input
        input.withUnsafeMutableBufferPointer { inp in
            stream.next_in = inp.baseAddress
            stream.avail_in = UInt32(inp.count)
            repeat {
                chunk.withUnsafeMutableBufferPointer { out in
                    stream.next_out = out.baseAddress
                    stream.avail_out = UInt32(out.count)
                    status = inflate(&stream, Z_NO_FLUSH)
                    output.append(contentsOf: out[0..<(out.count - Int(stream.avail_out))])
                }
            } while status == Z_OK && (stream.avail_in > 0 || stream.avail_out == 0) && output.count <= maximumBytes
        }
        guard output.count <= maximumBytes else {
            throw SAMTrainError("\(path): decompresses to more than \(maximumBytes) bytes, more than samtrain reads")
        }
        guard status == Z_STREAM_END else {
            if status == Z_OK || status == Z_BUF_ERROR {
                throw SAMTrainError("\(path): truncated gzip stream (ended after \(output.count) decompressed bytes)")
            }
            throw SAMTrainError("\(path): corrupt gzip data (zlib error \(status))")
        }
        return output
    }
}
