import Foundation
import XCTest
@testable import SAMTrain
@testable import samtrain

/// The reproducers of issue 12, one per class, against the readers themselves: each gives an
/// error naming the file and the field (never a trap, an allocation from an unchecked size or
/// a read out of bounds). `launch/fuzz` replays the same inputs (Fuzz/regression).
final class HostileInputTests: XCTestCase {
    func expectError(_ fragments: [String], line: UInt = #line, _ body: () throws -> Void) {
        XCTAssertThrowsError(try body(), line: line) { e in
            for f in fragments { XCTAssertTrue("\(e)".contains(f), "'\(f)' not in: \(e)", line: line) }
        }
    }

    func testCheckedProductsAndIntegers() {
        XCTAssertEqual(CheckedSize.product([3, 4, 5]), 60)
        XCTAssertNil(CheckedSize.product([1 << 40, 1 << 40]))
        XCTAssertNil(CheckedSize.product([-1, 4]))
        XCTAssertNil(CheckedSize.product([1000, 1000], limit: 999_999))
        XCTAssertEqual(CheckedSize.integer(NSNumber(value: 12), in: 0...100), 12)
        XCTAssertEqual(CheckedSize.integer(12.0, in: 0...100), 12)
        XCTAssertNil(CheckedSize.integer(12.5, in: 0...100))
        XCTAssertNil(CheckedSize.integer(1e19, in: Int.min...Int.max))
        XCTAssertNil(CheckedSize.integer(Double.nan, in: Int.min...Int.max))
        XCTAssertNil(CheckedSize.integer(true, in: 0...1))
        XCTAssertNil(CheckedSize.integer("3", in: 0...10))
        // What JSONSerialization makes of 2⁶³ and beyond.
        let json = try! JSONSerialization.jsonObject(with: Data("[9223372036854775808, 1e300, -9223372036854775809, 18446744073709551616]".utf8)) as! [Any]
        for v in json { XCTAssertNil(CheckedSize.integer(v, in: Int.min...Int.max), "\(v)") }
    }

    /// Every file of the fuzzers' regression corpus (Fuzz/regression/<reader>) is refused by
    /// its reader with an error (launch/fuzz replays them under libFuzzer as well).
    func testEveryRegressionInputIsRefused() throws {
        let root = Subprocess.repositoryRoot.appendingPathComponent("Fuzz/regression")
        // Each reader, given the file's name and bytes (a CIFAR file's name starts with its format).
        let readers: [String: (String, [UInt8]) throws -> Void] = [
            "IDX": { _ = try IDXReader.parse(file: $1, path: $0, expectedRank: 3) },
            "CIFAR": { name, bytes in
                var pixels = [UInt8](repeating: 0, count: CIFAR.imageBytes), labels: [Int32] = [0]
                try CIFAR.decode(bytes, records: 1, CIFAR.format(name.hasPrefix("cifar100") ? .cifar100 : .cifar10), path: name,
                                 pixels: &pixels, labels: &labels, at: 0)
            },
            // A checkpoint, then its recorded settings as `samtrain sharpness` reads them.
            "SafeTensors": {
                let settings = try Checkpoint(bytes: $1, source: $0).settings
                _ = try CheckpointModel.split(settings, source: $0)
                _ = try ModelConfiguration(recorded: settings, source: $0)
            },
            "Conformance": { _ = try ConformanceCase(data: Data($1), source: $0) },
            "Sweep": { try SweepFile(data: Data($1), source: $0, quick: false).validate() },
            "CSV": { _ = try CSVTable(data: Data($1), source: $0) },
        ]
        var count = 0
        for (reader, read) in readers {
            let dir = root.appendingPathComponent(reader)
            let names = try FileManager.default.contentsOfDirectory(atPath: dir.path).sorted()
            XCTAssertFalse(names.isEmpty, reader)
            for name in names {
                let bytes = try [UInt8](Data(contentsOf: dir.appendingPathComponent(name)))
                XCTAssertThrowsError(try read(name, bytes), "\(reader)/\(name) was accepted")
                count += 1
            }
        }
        XCTAssertGreaterThanOrEqual(count, 30)
    }

    // MARK: IDX

    func idx(dims: [UInt32], payload: [UInt8] = []) -> [UInt8] {
        var b: [UInt8] = [0, 0, 8, UInt8(dims.count)]
        for d in dims { b += [UInt8(d >> 24), UInt8(d >> 16 & 255), UInt8(d >> 8 & 255), UInt8(d & 255)] }
        return b + payload
    }

    func testIDXDimensionsWhoseProductOverflows() {
        expectError(["x.idx", "100000000×100000000×100000000", "at most"]) {
            _ = try IDXReader.parse(file: idx(dims: [100_000_000, 100_000_000, 100_000_000]), path: "x.idx", expectedRank: 3)
        }
        expectError(["x.idx", "dimension 1 is 4294967295", "outside 1…100000000"]) {
            _ = try IDXReader.parse(file: idx(dims: [1, 0xFFFF_FFFF, 1]), path: "x.idx", expectedRank: 3)
        }
    }

    /// A training split of 14×14 and a test split of 28×28 images; images too small for cnn.
    func testImageShapesAreCheckedAgainstEachOtherAndTheModel() throws {
        let dir = Subprocess.temporaryDirectory("samtrain-shapes")
        defer { try? FileManager.default.removeItem(at: dir) }
        try MNISTFiles.write(to: dir, train: (4, 14), test: (2, 28))
        expectError([dir.path, "training images are 1×14×14", "test images are 1×28×28"]) {
            _ = try DatasetKind.fashionMNIST.load(data: dir.path)
        }
        try MNISTFiles.write(to: dir, train: (4, 2), test: (2, 2))
        let (train, _) = try DatasetKind.fashionMNIST.load(data: dir.path).splits
        expectError([dir.path, "1×2×2", "--model cnn", "≥ 4"]) {
            try Architecture.cnn.check(imageShape: train.imageShape, classes: train.classes, source: dir.path)
        }
        XCTAssertNoThrow(try Architecture.mlp.check(imageShape: train.imageShape, classes: train.classes, source: dir.path))
    }

    // MARK: safetensors and checkpoints

    /// A safetensors file with the given header JSON and `data` bytes.
    func safetensors(_ header: String, data: Int = 0) -> [UInt8] {
        var h = Array(header.utf8)
        while h.count % 8 != 0 { h.append(0x20) }
        var out = [UInt8]()
        withUnsafeBytes(of: UInt64(h.count).littleEndian) { out.append(contentsOf: $0) }
        return out + h + [UInt8](repeating: 0, count: data)
    }

    func testSafeTensorsShapesAndOffsetsThatOverflow() {
        expectError(["c.safetensors", "tensor w has shape", "more than the 16 data bytes"]) {
            _ = try SafeTensors.decode(safetensors(#"{"w":{"dtype":"F32","shape":[2147483647,2147483647,2147483647],"data_offsets":[0,16]}}"#, data: 16), source: "c.safetensors")
        }
        expectError(["c.safetensors", "tensor w has no valid shape"]) {
            _ = try SafeTensors.decode(safetensors(#"{"w":{"dtype":"F32","shape":[9223372036854775808],"data_offsets":[0,16]}}"#, data: 16), source: "c.safetensors")
        }
        expectError(["c.safetensors", "data_offsets"]) {
            _ = try SafeTensors.decode(safetensors(#"{"w":{"dtype":"F32","shape":[4],"data_offsets":[-16,1e30]}}"#, data: 16), source: "c.safetensors")
        }
    }

    func checkpointBytes(_ metadata: [String: String]) -> [UInt8] {
        let model = Architecture.mlp.build(inputShape: [1, 2, 2], classes: 2)
        var c = Checkpoint(model: model, optimizer: SGD(count: model.store.count, momentum: 0, nesterov: false, weightDecay: 0), metadata: [:])
        for (k, v) in metadata { c.file.metadata[k] = v }
        return SafeTensors.encode(c.file)
    }

    func testCheckpointMetadataIsValidatedAsAWhole() throws {
        XCTAssertNoThrow(try Checkpoint(bytes: checkpointBytes(["step": "3"]), source: "c.safetensors"))
        let bad: [([String: String], [String])] = [
            (["optimizer_step": "9223372036854775807"], ["optimizer_step", "outside 0…1099511627776"]),
            (["optimizer_step": "-5"], ["optimizer_step", "\"-5\""]),
            (["format_version": "999"], ["format_version is 999", "version 1"]),
            (["format": "pytorch"], ["format is \"pytorch\""]),
            (["step": "1e3"], ["metadata step"]),
            (["world_size": "0"], ["world_size is 0"]),
        ]
        for (metadata, fragments) in bad {
            expectError(["c.safetensors"] + fragments) { _ = try Checkpoint(bytes: checkpointBytes(metadata), source: "c.safetensors") }
        }
    }

    // MARK: conformance vectors

    /// A small valid vector file, with `change` applied to its JSON object.
    func conformance(_ change: (inout [String: Any]) -> Void) throws -> Data {
        var root: [String: Any] = [
            "name": "tiny",
            "model": ["layers": [["type": "linear", "in": 2, "out": 3], ["type": "relu"], ["type": "linear", "in": 3, "out": 2]]],
            "param_order": ["0.weight", "0.bias", "2.weight", "2.bias"],
            "params": ["0.weight": [[0.1, 0.2], [0.3, -0.1], [0.0, 0.5]], "0.bias": [0, 0, 0.1], "2.weight": [[0.1, 0.2, 0.3], [-0.3, 0.2, 0.1]], "2.bias": [0, 0]],
            "data": ["x": [[1, 2], [3, 4]], "y": [0, 1]],
            "optimizer": ["type": "sgd", "lr": 0.1],
            "sam": ["variant": "none", "m": 2],
            "num_steps": 1,
            "steps": [["loss": 0.7]],
        ]
        change(&root)
        return try JSONSerialization.data(withJSONObject: root)
    }

    func testConformanceFilesWithHostileCounts() throws {
        XCTAssertNoThrow(try ConformanceCase(data: try conformance { _ in }, source: "v.json"))
        func layers(_ first: [String: Any]) -> (inout [String: Any]) -> Void {
            { $0["model"] = ["layers": [first, ["type": "relu"], ["type": "linear", "in": 3, "out": 2]]] }
        }
        let cases: [((inout [String: Any]) -> Void, [String])] = [
            (layers(["type": "linear", "in": 2, "out": -1]), ["model.layers[0].out is -1", "1…65536"]),
            (layers(["type": "linear", "in": 1e12, "out": 3]), ["model.layers[0].in", "1…65536"]),
            (layers(["type": "linear", "in": 2, "out": 9.3e18]), ["model.layers[0].out"]),
            (layers(["type": "linear", "in": 2, "out": 4]), ["linear layer 2 takes 3 inputs but linear layer 1 gives 4"]),
            ({ $0["num_steps"] = -1 }, ["num_steps is -1", "0…10000"]),
            ({ $0["num_steps"] = 1e19 }, ["num_steps"]),
            ({ $0["data"] = ["x": [[1, 2], [3]], "y": [0, 1]] }, ["data.x row 1 has 1 values", "takes 2"]),
            ({ $0["data"] = ["x": [[1, 2], [3, 4]], "y": [0, 2]] }, ["data.y[1] is 2", "0…1"]),
            ({ $0["data"] = ["x": [[1, 2], [3, 4]], "y": [0, -1]] }, ["data.y[1] is -1"]),
            ({ $0["optimizer"] = ["type": "adamw", "lr": 0.1, "betas": [0.9]] }, ["optimizer.betas", "two numbers"]),
            ({ $0["sam"] = ["variant": "sam", "m": 0] }, ["sam.m is 0", "1…2"]),
        ]
        for (change, fragments) in cases {
            expectError(["v.json"] + fragments) { _ = try ConformanceCase(data: try conformance(change), source: "v.json") }
        }
    }

    // MARK: sweep files and CSV

    func testSweepFilesWithHugeIntegersAndGrids() {
        expectError(["s.json", "seed", "integer"]) {
            _ = try SweepFile(data: Data(#"{"axes": {"seed": [9223372036854775808]}}"#.utf8), source: "s.json", quick: false)
        }
        expectError(["s.json", "ranks"]) {
            _ = try SweepFile(data: Data(#"{"ranks": 1e30, "axes": {"seed": [1]}}"#.utf8), source: "s.json", quick: false)
        }
        let hundred = "[" + (1...100).map(String.init).joined(separator: ",") + "]"
        let start = Date()
        expectError(["s.json", "axes", "100 × 100 × 100", "1000"]) {
            _ = try SweepFile(data: Data(#"{"axes": {"seed": \#(hundred), "epochs": \#(hundred), "cutout": \#(hundred)}}"#.utf8), source: "s.json", quick: false)
        }
        XCTAssertLessThan(Date().timeIntervalSince(start), 2)
    }

    func testCSVShortRowsAreRefused() throws {
        XCTAssertEqual(try CSVTable(data: Data("a,b\n1,2\n".utf8), source: "m.csv").rows, [["1", "2"]])
        expectError(["m.csv:3", "1 field(s), the header has 3"]) {
            _ = try CSVTable(data: Data("epoch,test_acc,train_loss\n1,0.5,0.3\n2\n".utf8), source: "m.csv")
        }
        expectError(["m.csv", "empty"]) { _ = try CSVTable(data: Data(), source: "m.csv") }
    }

    // MARK: gnuplot

    func testPlotTextCannotRunGnuplotCommands() throws {
        XCTAssertEqual(try LineChart.quoted("it's `id` @x \\n", what: "--title"), "'it''s `id` @x \\n'")
        let dir = Subprocess.temporaryDirectory("samtrain-inject")
        defer { try? FileManager.default.removeItem(at: dir) }
        let victim = dir.appendingPathComponent("written-by-gnuplot").path
        var chart = LineChart(title: "x\"\nset print '\(victim)'\nprint 'owned'\n#", xLabel: "x", yLabel: "y")
        chart.series = [("a", [(x: 1, y: 2)])]
        expectError(["--title", "U+000A", "one line"]) { try chart.render(to: dir.appendingPathComponent("f").path) }
        XCTAssertFalse(FileManager.default.fileExists(atPath: victim))
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir.appendingPathComponent("f.dat").path), "nothing written before the check")
    }
}

/// Tiny MNIST-format directories (the four IDX files, raw).
enum MNISTFiles {
    static func idx(_ dims: [Int], _ payload: [UInt8]) -> Data {
        var b: [UInt8] = [0, 0, 8, UInt8(dims.count)]
        for d in dims { b += [UInt8(d >> 24 & 255), UInt8(d >> 16 & 255), UInt8(d >> 8 & 255), UInt8(d & 255)] }
        return Data(b + payload)
    }

    /// `train`/`test`: (examples, side) of square 1-channel images.
    static func write(to dir: URL, train: (Int, Int), test: (Int, Int)) throws {
        for (prefix, (n, side)) in [("train", train), ("t10k", test)] {
            try idx([n, side, side], (0..<(n * side * side)).map { UInt8($0 % 256) })
                .write(to: dir.appendingPathComponent("\(prefix)-images-idx3-ubyte"))
            try idx([n], (0..<n).map { UInt8($0 % 10) }).write(to: dir.appendingPathComponent("\(prefix)-labels-idx1-ubyte"))
        }
    }
}
