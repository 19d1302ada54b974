import Foundation
import XCTest
@testable import SAMTrain

/// A user's own arrays file (docs/algorithms.md §7.8): channels-last uint8 images become
/// channel-major datasets, and every problem train would refuse is named with its array.
final class ArraysFileTests: XCTestCase {
    /// A small valid file: `n` RGB 4×5 images with labels 0…3, and test images likewise.
    func goodFile(n: Int = 6, channels: Int = 3) -> SafeTensorsFile {
        var f = SafeTensorsFile()
        let shape = channels == 1 ? [n, 4, 5] : [n, 4, 5, channels]
        f.add("train_images", uint8: (0..<(n * 20 * channels)).map { UInt8(($0 * 7) % 256) }, shape: shape)
        f.add("train_labels", int64: (0..<n).map { Int64($0 % 4) })
        f.add("test_images", uint8: (0..<(n * 20 * channels)).map { UInt8(($0 * 3) % 256) }, shape: shape)
        f.add("test_labels", int64: (0..<n).map { Int64(($0 + 1) % 4) })
        return f
    }

    func file(_ f: SafeTensorsFile) throws -> ArraysFile {
        try ArraysFile.decodeSafeTensors(f.encoded(), path: "own.safetensors")
    }

    func testChannelsLastBecomeChannelMajorWithComputedNormalization() throws {
        let loaded = try file(goodFile()).datasets()
        let train = loaded.train
        XCTAssertEqual(train.imageShape, [3, 4, 5])
        XCTAssertEqual(train.classes, 4)
        XCTAssertEqual(loaded.normalization, .computed)
        // Example 1, channel 2, row 3, column 4 comes from byte ((1·4 + 3)·5 + 4)·3 + 2 of the file.
        let source = ((1 * 4 + 3) * 5 + 4) * 3 + 2
        XCTAssertEqual(train.pixels![1 * 60 + 2 * 20 + 3 * 5 + 4], UInt8((source * 7) % 256))
        // The mean and std of channel 0 over all training images, in [0, 1] units.
        var channel0: [Double] = []
        for i in 0..<120 {
            let byte: Int = (i * 3 * 7) % 256
            channel0.append(Double(byte) / 255)
        }
        let count = Double(channel0.count)
        let mean: Double = channel0.reduce(0, +) / count
        var squares = 0.0
        for x in channel0 { squares += (x - mean) * (x - mean) }
        let std: Double = (squares / count).squareRoot()
        XCTAssertEqual(Double(train.normalization!.mean[0]), mean, accuracy: 1e-6)
        XCTAssertEqual(Double(train.normalization!.std[0]), std, accuracy: 1e-6)
    }

    func testFileNormalizationAndClassNames() throws {
        var f = goodFile(channels: 1)
        f.add("mean", float32: [0.25])
        f.add("std", float32: [0.5])
        f.metadata["classes"] = "cat,dog,bird,fish,frog"
        let loaded = try file(f).datasets()
        XCTAssertEqual(loaded.train.normalization, Normalization(mean: [0.25], std: [0.5]))
        XCTAssertEqual(loaded.normalization, .file)
        XCTAssertEqual(loaded.classNames, ["cat", "dog", "bird", "fish", "frog"])
        XCTAssertEqual(loaded.train.classes, 5, "the names' count, not the largest label + 1")
        XCTAssertEqual(loaded.test.imageShape, [1, 4, 5])
    }

    /// Each hostile file: the problem names the array, train's message names the file too.
    func testEveryRefusalNamesTheArray() throws {
        func expect(_ change: (inout SafeTensorsFile) -> Void, _ fragments: [String], line: UInt = #line) {
            var f = goodFile()
            change(&f)
            do {
                let arrays = try file(f)
                XCTAssertFalse(arrays.check().problems.isEmpty, "no problem found", line: line)
                XCTAssertThrowsError(try arrays.datasets(), line: line) { error in
                    let message = (error as! SAMTrainError).message
                    for fragment in ["--data own.safetensors"] + fragments {
                        XCTAssertTrue(message.contains(fragment), "'\(fragment)' not in: \(message)", line: line)
                    }
                }
            } catch {
                XCTFail("\(error)", line: line)
            }
        }
        func replace(_ f: inout SafeTensorsFile, _ name: String, with t: SafeTensorsFile.Tensor) {
            f.tensors[f.tensors.firstIndex { $0.name == name }!] = t
        }
        expect({ f in replace(&f, "train_labels", with: .init(name: "train_labels", dtype: "I64", shape: [6],
                                                                bytes: [0, 1, 2, 3, 0, -1].flatMap { (v: Int64) in withUnsafeBytes(of: v) { Array($0) } })) },
               ["array train_labels", "label -1 of example 5 is negative"])
        expect({ f in f.metadata["classes"] = "a,b,c" }, ["array train_labels", "label 3 of example 3 is outside 0–2", "names 3 classes"])
        expect({ f in f.tensors.removeAll { $0.name == "test_labels" }; f.add("test_labels", int64: [1, 2, 3]) },
               ["array test_labels", "holds 3 labels for 6 images in test_images"])
        expect({ f in replace(&f, "train_images", with: .init(name: "train_images", dtype: "F32", shape: [6, 4, 5, 3], bytes: [UInt8](repeating: 0, count: 6 * 60 * 4))) },
               ["array train_images", "is float32, not uint8", "float images are refused"])
        expect({ f in replace(&f, "train_images", with: .init(name: "train_images", dtype: "U8", shape: [360], bytes: [UInt8](repeating: 0, count: 360))) },
               ["array train_images", "(1-D)", "N×H×W×C"])
        expect({ f in replace(&f, "test_images", with: .init(name: "test_images", dtype: "U8", shape: [6, 1, 4, 5, 3], bytes: [UInt8](repeating: 0, count: 360))) },
               ["array test_images", "(5-D)"])
        expect({ f in f.tensors.removeAll { $0.name.hasPrefix("test_") } }, ["array test_images: missing", "the test split needs it", "and 1 more problem"])
        expect({ f in f.add("mean", float32: [0.5, 0.5, 0.5]) }, ["array mean: given without std", "give both or neither"])
        expect({ f in f.add("mean", float32: [0.5]); f.add("std", float32: [1]) }, ["array mean", "holds 1 values for 3-channel images"])
        expect({ f in f.add("mean", float32: [0.5, 0.5, 0.5]); f.add("std", float32: [1, 0, 1]) }, ["array std", "a standard deviation must be positive"])
        expect({ f in f.tensors.removeAll { $0.name == "train_labels" }; f.add("train_labels", int64: [0, 1, 2, 3, 0, 1 << 40]) },
               ["array train_labels", "label 1099511627776 of example 5", "at most 100000"])
        expect({ f in replace(&f, "test_labels", with: .init(name: "test_labels", dtype: "F32", shape: [6], bytes: [UInt8](repeating: 0, count: 24))) },
               ["array test_labels", "is float32; labels are integers"])
        expect({ f in replace(&f, "test_images", with: .init(name: "test_images", dtype: "U8", shape: [6, 5, 4, 3], bytes: [UInt8](repeating: 0, count: 360))) },
               ["array test_images", "4×5×3 in train_images but 5×4×3 here"])
    }

    /// Bad files through the CLI on 2 ranks: one message naming the file and the array, a
    /// non-zero exit within seconds, and no --out directory; `data inspect` lists every problem.
    func testTrainRefusesBadFilesOnEveryRankAndInspectListsThem() throws {
        let dir = Subprocess.temporaryDirectory("samtrain-arrays")
        defer { try? FileManager.default.removeItem(at: dir) }
        var bad = goodFile()
        bad.tensors.removeAll { $0.name == "test_labels" }
        bad.add("test_labels", int64: [0, 1, 2, 3, 4, -2])
        bad.add("mean", float32: [0.5, 0.5, 0.5])
        let path = dir.appendingPathComponent("bad.safetensors").path
        try bad.write(to: path)
        let out = dir.appendingPathComponent("run").path
        try Subprocess.expectFailure(["train", "--dataset", "arrays", "--data", path, "--batch-size", "2", "--out", out],
                                     naming: [path, "array", "and 1 more problem", "samtrain data inspect"])
        XCTAssertFalse(FileManager.default.fileExists(atPath: out), "--out was created for a refused file")
        let inspected = try Subprocess.run(Subprocess.samtrain, ["data", "inspect", path])
        XCTAssertEqual(inspected.status, 1, inspected.output)
        for fragment in ["2 problem(s)", "array test_labels: label -2 of example 5 is negative", "array mean: given without std",
                         "train_images  uint8     6×4×5×3", "train: 6 example(s), images 4×5, 3 channel(s)"] {
            XCTAssertTrue(inspected.stdout.contains(fragment), "'\(fragment)' not in:\n\(inspected.stdout)")
        }

        let good = dir.appendingPathComponent("good.safetensors").path
        try goodFile().write(to: good)
        let fine = try Subprocess.run(Subprocess.samtrain, ["data", "inspect", good])
        XCTAssertEqual(fine.status, 0, fine.output)
        XCTAssertTrue(fine.stdout.contains("per class: 0: 2, 1: 2, 2: 1, 3: 1") && fine.stdout.contains("computed from the training images"), fine.stdout)

        // A damaged file and a directory: one message each.
        var bytes = goodFile().encoded()
        bytes.removeLast(10)
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        try Subprocess.expectFailure(["train", "--dataset", "arrays", "--data", path, "--batch-size", "2"], naming: [path, "not a valid safetensors file"])
        try Subprocess.expectFailure(["train", "--dataset", "arrays", "--data", dir.path, "--batch-size", "2"], naming: [dir.path, "is a directory"])
        try Subprocess.expectFailure(["train", "--dataset", "arrays", "--batch-size", "2"], naming: ["--dataset arrays needs --data FILE"])
    }
}
