import XCTest
@testable import SAMTrain

final class SafeTensorsTests: XCTestCase {
    let sample = SafeTensors.File(
        tensors: [.init(name: "0.weight", shape: [2, 3], values: [1, 2, 3, 4, 5, -6.5]),
                  .init(name: "0.bias", shape: [2], values: [0.25, -0])],
        metadata: ["step": "7", "note": "a \"quoted\" value"])

    func testByteLayout() throws {
        let bytes = SafeTensors.encode(sample)
        let n = bytes[0..<8].enumerated().reduce(UInt64(0)) { $0 | UInt64($1.element) << (8 * UInt64($1.offset)) }
        XCTAssertEqual(n % 8, 0, "header padded to 8 bytes")
        XCTAssertEqual(bytes.count, 8 + Int(n) + 8 * 4)
        let header = try JSONSerialization.jsonObject(with: Data(bytes[8..<(8 + Int(n))])) as! [String: Any]
        let w = header["0.weight"] as! [String: Any]
        XCTAssertEqual(w["dtype"] as? String, "F32")
        XCTAssertEqual(w["shape"] as? [Int], [2, 3])
        XCTAssertEqual(w["data_offsets"] as? [Int], [0, 24])
        XCTAssertEqual((header["0.bias"] as! [String: Any])["data_offsets"] as? [Int], [24, 32])
        XCTAssertEqual((header["__metadata__"] as! [String: String])["step"], "7")
        // Data: little-endian float32, in order.
        let first = UInt32(bytes[8 + Int(n)]) | UInt32(bytes[9 + Int(n)]) << 8 | UInt32(bytes[10 + Int(n)]) << 16 | UInt32(bytes[11 + Int(n)]) << 24
        XCTAssertEqual(Float(bitPattern: first), 1)
    }

    func testRoundTrip() throws {
        let back = try SafeTensors.decode(SafeTensors.encode(sample), source: "x")
        XCTAssertEqual(back.metadata, sample.metadata)
        XCTAssertEqual(back.tensor("0.weight"), sample.tensors[0])
        XCTAssertEqual(back.tensor("0.bias")?.values.map(\.bitPattern), sample.tensors[1].values.map(\.bitPattern))
    }

    func testDamagedFilesAreRefusedWithTheReason() {
        let good = SafeTensors.encode(sample)
        func expect(_ bytes: [UInt8], _ fragment: String, line: UInt = #line) {
            XCTAssertThrowsError(try SafeTensors.decode(bytes, source: "ck.safetensors"), line: line) { e in
                XCTAssertTrue("\(e)".contains("ck.safetensors"), "\(e)", line: line)
                XCTAssertTrue("\(e)".contains(fragment), "\(e)", line: line)
            }
        }
        expect(Array(good.prefix(5)), "shorter than the 8-byte")
        expect(Array(good.dropLast(4)), "outside")                 // truncated data
        var huge = good; huge[5] = 0x10                              // header length ≈ 2^44
        expect(huge, "100 MB")
        var beyond = good; beyond[0] = 0xF8; beyond[1] = 0xFF; beyond[2] = 0x0F   // ~1 MB > file
        expect(beyond, "past the end")
        func withHeader(_ json: String, data: Int) -> [UInt8] {
            var h = Array(json.utf8); while h.count % 8 != 0 { h.append(0x20) }
            var out: [UInt8] = []
            withUnsafeBytes(of: UInt64(h.count).littleEndian) { out.append(contentsOf: $0) }
            return out + h + [UInt8](repeating: 0, count: data)
        }
        expect(withHeader("{\"a\":{\"dtype\":\"F16\",\"shape\":[2],\"data_offsets\":[0,4]}}", data: 4), "dtype F16")
        expect(withHeader("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", data: 8), "overlap")
        expect(withHeader("{\"a\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", data: 8), "shape [3]")
        expect(withHeader("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,80]}}", data: 8), "outside")
        expect(withHeader("not json", data: 0), "not a JSON object")
    }
}
