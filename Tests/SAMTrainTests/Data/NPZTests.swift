import Foundation
import XCTest
@testable import SAMTrain

/// The .npz and .npy readers against files NumPy itself writes (np.savez, np.savez_compressed,
/// np.lib.format.write_array), and against hostile files, each of which must be refused with
/// one message naming the file and, where there is one, the array.
final class NPZTests: XCTestCase {
    private var dir: URL!

    override func setUpWithError() throws {
        try Self.requireNumPy()
        dir = Subprocess.temporaryDirectory("samtrain-npz")
    }

    override func tearDownWithError() throws {
        if let dir { try? FileManager.default.removeItem(at: dir) }
    }

    static func requireNumPy() throws {
        if try Subprocess.run("/usr/bin/env", ["python3", "-c", "import numpy"]).status == 0 { return }
        let install = try Subprocess.run("/usr/bin/env", ["python3", "-m", "pip", "install", "-q", "numpy"], timeout: 600)
        if try Subprocess.run("/usr/bin/env", ["python3", "-c", "import numpy"]).status != 0 {
            throw XCTSkip("NumPy is not installable here (pip install numpy: \(install.stderr.suffix(300)))")
        }
    }

    /// Runs `code` with `np`, `io`, `struct`, `zipfile` imported and `path` set to a new file
    /// in the test's directory; returns that path.
    private func python(_ name: String, _ code: String) throws -> String {
        let path = dir.appendingPathComponent(name).path
        let script = "import io, struct, sys, zipfile\nimport numpy as np\npath = sys.argv[1]\n" + code
        let result = try Subprocess.run("/usr/bin/env", ["python3", "-c", script, path], timeout: 120)
        XCTAssertEqual(result.status, 0, result.stderr)
        return path
    }

    private func array(_ arrays: [NumericArray], _ name: String, file: StaticString = #filePath, line: UInt = #line) throws -> NumericArray {
        try XCTUnwrap(arrays.first { $0.name == name }, "no array \(name) in \(arrays.map(\.name))", file: file, line: line)
    }

    /// The file is refused with a message starting with its path and holding each fragment.
    private func assertRefused(_ path: String, _ fragments: String..., file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertThrowsError(try NPZ.read(path: path), file: file, line: line) { error in
            let message = (error as? SAMTrainError)?.message ?? "not a SAMTrainError: \(error)"
            XCTAssertTrue(message.hasPrefix(path + ": "), message, file: file, line: line)
            for f in fragments { XCTAssertTrue(message.contains(f), "«\(message)» lacks «\(f)»", file: file, line: line) }
            XCTAssertFalse(message.contains("\n"), message, file: file, line: line)
        }
        // The in-memory decoder says the same.
        if let bytes = FileManager.default.contents(atPath: path) {
            XCTAssertThrowsError(try NPZ.decode([UInt8](bytes), source: path), file: file, line: line)
        }
    }

    /// An MNIST-like dataset file: every dtype a dataset uses, written by `function`.
    private func datasetFile(_ function: String) throws -> String {
        try python("data.npz", """
            images = (np.arange(5 * 4 * 3 * 2) * 7 % 256).astype(np.uint8).reshape(5, 4, 3, 2)
            np.\(function)(path, train_images=images, train_labels=np.array([3, -1, 2**40, 0, 9], dtype=np.int64),
                     test_labels=np.array([7, -2147483648, 2147483647], dtype=np.int32),
                     small_labels=np.array([0, 255, 1], dtype=np.uint8),
                     mean=np.array([0.5, -1.25, 3.0e-8], dtype=np.float32),
                     class_names=np.array(['cat', 'dog', 'ünïcödé', '']))
            """)
    }

    private func checkDataset(_ arrays: [NumericArray]) throws {
        XCTAssertEqual(arrays.map(\.name), ["train_images", "train_labels", "test_labels", "small_labels", "mean", "class_names"])
        let images = try array(arrays, "train_images")
        XCTAssertEqual(images.type, .uint8)
        XCTAssertEqual(images.shape, [5, 4, 3, 2])
        XCTAssertEqual(images.bytes, (0..<120).map { UInt8($0 * 7 % 256) })
        let labels = try array(arrays, "train_labels")
        XCTAssertEqual(labels.type, .int64)
        XCTAssertEqual(labels.integers(), [3, -1, 1 << 40, 0, 9])
        let test = try array(arrays, "test_labels")
        XCTAssertEqual(test.type, .int32)
        XCTAssertEqual(test.integers(), [7, -2147483648, 2147483647])
        XCTAssertEqual(try array(arrays, "small_labels").integers(), [0, 255, 1])
        let mean = try array(arrays, "mean")
        XCTAssertEqual(mean.type, .float32)
        XCTAssertEqual(mean.floats(), [0.5, -1.25, 3.0e-8])
        let names = try array(arrays, "class_names")
        XCTAssertEqual(names.type, .unicode(count: 7))
        XCTAssertEqual(names.shape, [4])
        XCTAssertEqual(names.strings(), ["cat", "dog", "ünïcödé", ""])
    }

    func testSavezStored() throws {
        let path = try datasetFile("savez")
        try checkDataset(try NPZ.read(path: path))
        try checkDataset(try NPZ.decode([UInt8](try Data(contentsOf: URL(fileURLWithPath: path))), source: path))
    }

    func testSavezCompressed() throws {
        let path = try datasetFile("savez_compressed")
        try checkDataset(try NPZ.read(path: path))
    }

    /// A member large enough to take many inflate calls, compared byte for byte with NumPy's
    /// own raw dump of it.
    func testLargeCompressedMemberMatchesRawBytes() throws {
        let path = try python("big.npz", """
            rng = np.random.default_rng(3)
            images = rng.integers(0, 256, size=(300, 28, 28, 1), dtype=np.uint8)
            images[:100] = 0   # long runs compress well
            np.savez_compressed(path, images=images, noise=rng.standard_normal(5000).astype(np.float64))
            images.tofile(path + '.images.raw')
            """)
        let arrays = try NPZ.read(path: path)
        let images = try array(arrays, "images")
        XCTAssertEqual(images.shape, [300, 28, 28, 1])
        XCTAssertEqual(images.bytes, [UInt8](try Data(contentsOf: URL(fileURLWithPath: path + ".images.raw"))))
        XCTAssertEqual(try array(arrays, "noise").shape, [5000])
    }

    func testNPYVersions() throws {
        for version in ["(1, 0)", "(2, 0)", "(3, 0)"] {
            let path = try python("v.npy", """
                with open(path, 'wb') as f:
                    np.lib.format.write_array(f, np.array([[1.5, -2.0, 65504.0]], dtype=np.float16), version=\(version))
                """)
            let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
            XCTAssertEqual(bytes[6], UInt8(version.dropFirst().prefix(1))!)
            let a = try NPY.decode(bytes, name: "half", source: path)
            XCTAssertEqual(a.type, .float16, version)
            XCTAssertEqual(a.shape, [1, 3], version)
            XCTAssertEqual(a.floats(), [1.5, -2.0, 65504.0], version)
        }
    }

    /// Big-endian arrays come out little-endian, each element (each UTF-32 unit) swapped.
    func testBigEndian() throws {
        let path = try python("be.npz", """
            np.savez(path, i4=np.array([1, -2, 0x01020304], dtype='>i4'), f8=np.array([0.1, -1e300], dtype='>f8'),
                     u2=np.array([[0x0102, 65535]], dtype='>u2'), u8=np.array([2**64 - 1, 5], dtype='>u8'),
                     names=np.array(['ab', 'ç'], dtype='>U2'), f2=np.array([0.5], dtype='>f2'))
            """)
        let arrays = try NPZ.read(path: path)
        XCTAssertEqual(try array(arrays, "i4").integers(), [1, -2, 0x01020304])
        XCTAssertEqual(try array(arrays, "i4").bytes.prefix(4), [1, 0, 0, 0])
        XCTAssertEqual(try array(arrays, "f8").floats(), [Float(0.1), -.infinity])
        XCTAssertEqual(try array(arrays, "u2").integers(), [0x0102, 65535])
        XCTAssertEqual(try array(arrays, "u2").shape, [1, 2])
        XCTAssertEqual(try array(arrays, "u8").integers(), [Int64.max, 5])
        XCTAssertEqual(try array(arrays, "names").strings(), ["ab", "ç"])
        XCTAssertEqual(try array(arrays, "f2").floats(), [0.5])
    }

    func testScalarsBoolsBytesAndEmptyArrays() throws {
        let path = try python("misc.npz", """
            np.savez(path, scalar=np.float64(2.5), one=np.array([7], dtype=np.int8), flags=np.array([True, False, True]),
                     raw=np.array([b'abc', b'']), empty=np.zeros((0, 3), dtype=np.uint16), mixed=np.array([-1, 2], dtype=np.int16))
            """)
        let arrays = try NPZ.read(path: path)
        let scalar = try array(arrays, "scalar")
        XCTAssertEqual(scalar.shape, [])
        XCTAssertEqual(scalar.floats(), [2.5])
        XCTAssertEqual(try array(arrays, "one").integers(), [7])
        XCTAssertEqual(try array(arrays, "flags").type, .bool)
        XCTAssertEqual(try array(arrays, "flags").integers(), [1, 0, 1])
        XCTAssertEqual(try array(arrays, "raw").type, .bytes(count: 3))
        XCTAssertEqual(try array(arrays, "raw").strings(), ["abc", ""])
        XCTAssertEqual(try array(arrays, "empty").shape, [0, 3])
        XCTAssertEqual(try array(arrays, "empty").bytes, [])
        XCTAssertEqual(try array(arrays, "mixed").integers(), [-1, 2])
    }

    /// The header parser: keys in any order, spaces, padding, a Python 2 long, 1-tuples.
    func testHandWrittenHeaders() throws {
        func npy(_ header: String, _ data: [UInt8]) -> [UInt8] {
            var h = Array(header.utf8)
            h += [UInt8](repeating: 0x20, count: (64 - (10 + h.count + 1) % 64) % 64) + [0x0A]
            return NPY.magic + [1, 0, UInt8(h.count & 255), UInt8(h.count >> 8)] + h + data
        }
        let a = try NPY.decode(npy("{ 'shape' : (2L, 1,) ,'fortran_order':False, \"descr\": '<i2' }", [1, 0, 0xFF, 0xFF]), name: "a", source: "h.npy")
        XCTAssertEqual(a.shape, [2, 1])
        XCTAssertEqual(a.integers(), [1, -1])
        let b = try NPY.decode(npy("{'descr': '|u1', 'fortran_order': False, 'shape': (3,), }", [9, 8, 7]), name: "b", source: "h.npy")
        XCTAssertEqual(b.integers(), [9, 8, 7])
        let s = try NPY.decode(npy("{'descr': '=u4', 'fortran_order': False, 'shape': (), }", [1, 2, 0, 0]), name: "s", source: "h.npy")
        XCTAssertEqual(s.integers(), [0x0201])
        for (header, fragment) in [
            ("{'descr': '<i2', 'fortran_order': False, 'shape': (2), }", "shape is not a tuple"),
            ("{'descr': '<i2', 'fortran_order': False, 'shape': (-2,), }", "not a whole number"),
            ("{'descr': '<i2', 'fortran_order': False, 'shape': (99999999999999999999,), }", "not a whole number"),
            ("{'descr': '<i2', 'fortran_order': False, 'shape': (2,), 'extra': 1}", "keys"),
            ("{'descr': '<i2', 'descr': '<i2', 'fortran_order': False, 'shape': (2,)}", "repeats the key 'descr'"),
            ("{'descr': '<i2', 'fortran_order': 0, 'shape': (2,)}", "fortran_order is not True or False"),
            ("{'descr': '|i2', 'fortran_order': False, 'shape': (2,)}", "byte order '|'"),
            ("{'descr': '<i2', 'fortran_order': False, 'shape': (2,)} x", "not a valid Python dict literal"),
            ("{'descr': '<i2', 'fortran_order': False, 'shape': " + String(repeating: "(", count: 100), "nested more than"),
            ("{'descr': '<U99999999', 'fortran_order': False, 'shape': (2,)}", "strings wider"),
            ("{'descr': '<f16', 'fortran_order': False, 'shape': (2,)}", "unsupported dtype '<f16'"),
        ] {
            XCTAssertThrowsError(try NPY.decode(npy(header, [1, 0, 2, 0]), name: "arr", source: "h.npy"), header) { error in
                let message = "\(error)"
                XCTAssertTrue(message.hasPrefix("h.npy: array arr: "), message)
                XCTAssertTrue(message.contains(fragment), "«\(message)» lacks «\(fragment)»")
            }
        }
    }

    // MARK: - Hostile arrays (the member is a sound zip entry; its .npy is not)

    /// A stored .npz with one member `train_images.npy` of the given raw bytes.
    private func npzWithMember(_ name: String, npy: String) throws -> String {
        try python(name, """
            def npy(header, data=b'', version=1):
                h = header.encode('latin1')
                h += b' ' * (-(10 + len(h) + 1) % 64) + b'\\n'
                return b'\\x93NUMPY' + bytes([version, 0]) + struct.pack('<H', len(h)) + h + data
            with zipfile.ZipFile(path, 'w') as z:
                z.writestr('train_images.npy', \(npy))
            """)
    }

    func testObjectArrayIsRefused() throws {
        let path = try python("object.npz", "np.savez(path, train_images=np.array([{'a': 1}, None], dtype=object))")
        assertRefused(path, "array train_images: object (pickled) array: refused, samtrain never unpickles")
    }

    func testRecordArrayIsRefused() throws {
        let path = try python("record.npz", "np.savez(path, train_images=np.zeros(3, dtype=[('x', '<i4'), ('y', '<f8')]))")
        assertRefused(path, "array train_images: structured (record) dtype")
    }

    func testFortranOrderIsRefused() throws {
        let path = try python("fortran.npz", "np.savez(path, train_images=np.asfortranarray(np.zeros((2, 3), dtype=np.uint8)))")
        assertRefused(path, "array train_images: Fortran order: save it with np.ascontiguousarray")
    }

    func testComplexIsRefused() throws {
        let path = try python("complex.npz", "np.savez(path, train_images=np.zeros(2, dtype=np.complex128))")
        assertRefused(path, "array train_images: unsupported dtype '<c16' (complex)")
    }

    func testDatetimeIsRefused() throws {
        let path = try python("datetime.npz", "np.savez(path, train_images=np.array(['2020-01-01'], dtype='datetime64[D]'))")
        assertRefused(path, "array train_images: unsupported dtype '<M8[D]' (datetime)")
    }

    func testShapeOverflowIsRefused() throws {
        let path = try npzWithMember("overflow.npz", npy: "npy(\"{'descr': '<u8', 'fortran_order': False, 'shape': (4294967296, 4294967296), }\")")
        assertRefused(path, "array train_images: shape 4294967296×4294967296 of uint64 is too large")
    }

    func testTruncatedDataIsRefused() throws {
        let path = try npzWithMember("short.npz", npy: "npy(\"{'descr': '|u1', 'fortran_order': False, 'shape': (60000, 28, 28), }\", b'abc')")
        assertRefused(path, "array train_images: truncated: shape 60000×28×28 of uint8 needs 47040000 bytes of data, the file has 3")
    }

    func testTrailingBytesAreRefused() throws {
        let path = try npzWithMember("long.npz", npy: "npy(\"{'descr': '|u1', 'fortran_order': False, 'shape': (2,), }\", b'abcd')")
        assertRefused(path, "array train_images: 2 unexpected trailing bytes")
    }

    func testBadMagicIsRefused() throws {
        let path = try npzWithMember("magic.npz", npy: "b'\\x93NUMPI\\x01\\x00\\x00\\x00'")
        assertRefused(path, "array train_images: not a .npy array")
    }

    func testBadVersionIsRefused() throws {
        let path = try npzWithMember("version.npz", npy: "npy(\"{'descr': '|u1', 'fortran_order': False, 'shape': (2,), }\", b'ab', version=4)")
        assertRefused(path, "array train_images: .npy format version 4.0 is not one samtrain reads")
    }

    func testHeaderLengthPastTheEndIsRefused() throws {
        let path = try npzWithMember("header.npz", npy: "b'\\x93NUMPY\\x01\\x00\\xff\\x7f{}'")
        assertRefused(path, "array train_images: truncated: the .npy header says it is 32767 bytes, only 2 follow")
    }

    func testNPYDecodeRefusesTheSame() throws {
        let path = try python("bad.npy", "np.save(path, np.asfortranarray(np.zeros((2, 2))))")
        XCTAssertThrowsError(try NPY.decode([UInt8](try Data(contentsOf: URL(fileURLWithPath: path))), name: "x", source: path)) {
            XCTAssertEqual("\($0)", "\(path): array x: Fortran order: save it with np.ascontiguousarray")
        }
        XCTAssertThrowsError(try NPY.decode(Array(NPY.magic.prefix(4)), name: "x", source: "t.npy")) {
            XCTAssertEqual("\($0)", "t.npy: array x: not a .npy array (it does not start with \\x93NUMPY)")
        }
    }

    // MARK: - Hostile archives

    func testTruncatedZipIsRefused() throws {
        let path = try python("cut.npz", """
            np.savez_compressed(path, train_images=np.arange(1000, dtype=np.int32))
            data = open(path, 'rb').read()
            open(path, 'wb').write(data[:len(data) // 2])
            """)
        assertRefused(path, "not a valid .npz (zip) file: no end-of-central-directory record")
    }

    func testBadCRCIsRefused() throws {
        let path = try python("crc.npz", """
            np.savez(path, train_images=np.arange(100, dtype=np.uint8))
            data = bytearray(open(path, 'rb').read())
            i = data.index(bytes(range(40, 60)))
            data[i] ^= 1
            open(path, 'wb').write(bytes(data))
            """)
        assertRefused(path, "not a valid .npz (zip) file: member 'train_images.npy': CRC-32 mismatch")
    }

    /// Damage in the .npy header is reported as damage (the CRC), not as a bad header.
    func testCorruptHeaderIsReportedAsCRCMismatch() throws {
        let path = try python("crc-header.npz", """
            np.savez(path, train_images=np.arange(100, dtype=np.uint8))
            data = bytearray(open(path, 'rb').read())
            i = data.index(b"'descr'")
            data[i + 1] = ord('x')
            open(path, 'wb').write(bytes(data))
            """)
        assertRefused(path, "member 'train_images.npy': CRC-32 mismatch")
    }

    func testCorruptDeflateIsRefused() throws {
        let path = try python("deflate.npz", """
            np.savez_compressed(path, train_images=np.arange(1000, dtype=np.int32))
            data = bytearray(open(path, 'rb').read())
            start = 30 + len('train_images.npy') + 20
            for i in range(start + 5, start + 40): data[i] ^= 0x55
            open(path, 'wb').write(bytes(data))
            """)
        assertRefused(path, "not a valid .npz (zip) file: member 'train_images.npy'")
    }

    func testMemberThatIsNotNPYIsRefused() throws {
        let path = try python("readme.npz", """
            np.savez(path, train_images=np.zeros(2))
            with zipfile.ZipFile(path, 'a') as z: z.writestr('README.txt', 'hi')
            """)
        assertRefused(path, "not a valid .npz (zip) file: member 'README.txt' is not a .npy array")
    }

    func testDuplicateMemberIsRefused() throws {
        let path = try python("dup.npz", """
            import warnings; warnings.simplefilter('ignore')
            with zipfile.ZipFile(path, 'w') as z:
                for _ in range(2):
                    with z.open('train_images.npy', 'w') as f: np.lib.format.write_array(f, np.zeros(2))
            """)
        assertRefused(path, "not a valid .npz (zip) file: member 'train_images.npy' appears twice")
    }

    func testEncryptedMemberIsRefused() throws {
        let path = try python("encrypted.npz", """
            np.savez(path, train_images=np.zeros(2))
            data = bytearray(open(path, 'rb').read())
            for sig, flag in ((b'PK\\x03\\x04', 6), (b'PK\\x01\\x02', 8)):
                i = data.index(sig); data[i + flag] |= 1
            open(path, 'wb').write(bytes(data))
            """)
        assertRefused(path, "not a valid .npz (zip) file: member 'train_images.npy' is encrypted")
    }

    /// A member declaring far more than its compressed bytes can hold is refused before
    /// anything is allocated.
    func testZipBombDeclaredSizeIsRefused() throws {
        let path = try python("bomb.npz", """
            np.savez_compressed(path, train_images=np.zeros(10, dtype=np.uint8))
            data = bytearray(open(path, 'rb').read())
            i = data.index(b'PK\\x01\\x02'); struct.pack_into('<I', data, i + 24, 0xFFFFFFF0)
            open(path, 'wb').write(bytes(data))
            """)
        assertRefused(path, "member 'train_images.npy' declares 4294967280 bytes from", "zip bomb")
    }

    /// ZIPFoundation 0.9.20 loops forever on this: a deflate stream that runs to the end of the
    /// file.
    func testDeflateStreamRunningToTheEndIsRefused() throws {
        let path = try python("to-eof.npz", """
            data = bytes([0x00, 0xff, 0xff, 0x00, 0x00]) + b'x' * 10
            name = b'train_images.npy'
            lh = struct.pack('<IHHHHHIIIHH', 0x04034b50, 20, 0, 8, 0, 0, 0, len(data), 100, len(name), 0) + name + data
            cd = struct.pack('<IHHHHHHIIIHHHHHII', 0x02014b50, 20, 20, 0, 8, 0, 0, 0, len(data), 100, len(name), 0, 0, 0, 0, 0, 0) + name
            eocd = struct.pack('<IHHHHIIH', 0x06054b50, 0, 0, 1, 1, len(cd), len(lh), 0)
            open(path, 'wb').write(lh + cd + eocd)
            """)
        assertRefused(path, "member 'train_images.npy': truncated")
    }

    /// ZIPFoundation 0.9.20 traps on this: a zip64 central directory offset of 2⁶³.
    func testZip64OffsetBeyondTheFileIsRefused() throws {
        let path = try python("zip64.npz", """
            rec = struct.pack('<IQHHIIQQQQ', 0x06064b50, 44, 45, 45, 0, 0, 1, 1, 46, 2**63)
            loc = struct.pack('<IIQI', 0x07064b50, 0, 8, 1)
            eocd = struct.pack('<IHHHHIIH', 0x06054b50, 0, 0, 0xffff, 0xffff, 0xffffffff, 0xffffffff, 0)
            open(path, 'wb').write(b'\\0' * 8 + rec + loc + eocd)
            """)
        assertRefused(path, "not a valid .npz (zip) file: the central directory's offset and size do not match")
    }

    func testTwoEntriesSharingOneMemberAreRefused() throws {
        let path = try python("overlap.npz", """
            buf = io.BytesIO(); np.savez_compressed(buf, a=np.zeros(1000))
            data = buf.getvalue()
            e = data.rindex(b'PK\\x05\\x06'); cd_off = struct.unpack_from('<I', data, e + 16)[0]
            entry = data[cd_off:e]
            second = bytearray(entry); second[46:46 + 5] = b'b.npy'
            cd = entry + bytes(second)
            eocd = bytearray(data[e:]); struct.pack_into('<HHI', eocd, 8, 2, 2, len(cd))
            open(path, 'wb').write(data[:cd_off] + cd + bytes(eocd))
            """)
        assertRefused(path, "not a valid .npz (zip) file:")
    }

    func testNotAZipIsRefused() throws {
        let path = try python("text.npz", "open(path, 'w').write('just some text, long enough to scan')")
        assertRefused(path, "not a valid .npz (zip) file: no end-of-central-directory record")
        XCTAssertThrowsError(try NPZ.read(path: dir.appendingPathComponent("missing.npz").path)) {
            XCTAssertTrue("\($0)".contains("missing.npz: cannot open"), "\($0)")
        }
    }
}
