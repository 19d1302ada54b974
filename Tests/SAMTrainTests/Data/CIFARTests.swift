import Foundation
import XCTest
@testable import SAMTrain
@testable import samtrain

/// Writes CIFAR directories in the binary versions' exact layout: records of the label
/// byte(s) then 3,072 pixel bytes (1,024 red, 1,024 green, 1,024 blue, row-major).
enum CIFARFiles {
    static let cifar10Train = (1...5).map { "data_batch_\($0).bin" }

    /// The files of `kind` with their record counts under `layout` (names as the spec has them).
    static func files(_ kind: DatasetKind, _ layout: CIFARLayout) -> [(name: String, records: Int)] {
        kind == .cifar100 ? [("train.bin", layout.cifar100TrainRecords), ("test.bin", layout.cifar100TestRecords)]
                          : (cifar10Train + ["test_batch.bin"]).map { ($0, layout.cifar10RecordsPerFile) }
    }

    /// Record `r` of file `f`: its label(s) (coarse first for CIFAR-100) and its 3,072 pixels.
    typealias Record = (_ f: Int, _ r: Int, _ record: UnsafeMutableBufferPointer<UInt8>) -> Void

    static func write(_ kind: DatasetKind, to dir: URL, layout: CIFARLayout, record: Record) throws {
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let recordBytes = (kind == .cifar100 ? 2 : 1) + 3072
        for (f, file) in files(kind, layout).enumerated() {
            var bytes = [UInt8](repeating: 0, count: file.records * recordBytes)
            bytes.withUnsafeMutableBufferPointer { b in
                for r in 0..<file.records {
                    record(f, r, UnsafeMutableBufferPointer(rebasing: b[(r * recordBytes)..<((r + 1) * recordBytes)]))
                }
            }
            try Data(bytes).write(to: dir.appendingPathComponent(file.name))
        }
    }

    /// Deterministic labels and pixels that differ from record to record and file to file.
    static func label(_ f: Int, _ r: Int, classes: Int) -> UInt8 { UInt8((f * 7 + r * 3) % classes) }
    static func pixel(_ f: Int, _ r: Int, _ j: Int) -> UInt8 { UInt8((f * 31 + r * 17 + j * 5 + j / 1024) & 255) }

    static func patterned(_ kind: DatasetKind, to dir: URL, layout: CIFARLayout) throws {
        let labels = kind == .cifar100 ? 2 : 1
        try write(kind, to: dir, layout: layout) { f, r, rec in
            if kind == .cifar100 {
                rec[0] = UInt8((f + r) % 20)                  // coarse
                rec[1] = label(f, r, classes: 100)            // fine
            } else {
                rec[0] = label(f, r, classes: 10)
            }
            for j in 0..<3072 { rec[labels + j] = pixel(f, r, j) }
        }
    }

    /// A learnable CIFAR-10: a black image (raw 0, like crop-flip's pad) with a central
    /// 16×16 patch whose colour tells the class l: red ≈ 20 + 22·l, green ≈ 230 − 22·l,
    /// blue ≈ 60 + 15·l, each with noise in 0...31.
    static func learnable(to dir: URL, layout: CIFARLayout = .standard) throws {
        try write(.cifar10, to: dir, layout: layout) { f, r, rec in
            let l = (f * 7 + r * 3) % 10
            rec[0] = UInt8(l)
            var rng = SplitMix64(seed: UInt64(f * 1_000_003 + r))
            for y in 8..<24 {
                for x in 8..<24 {
                    let j = 1 + y * 32 + x
                    rec[j] = UInt8(20 + 22 * l + Int(rng.next() & 31))
                    rec[j + 1024] = UInt8(max(0, 230 - 22 * l - Int(rng.next() & 31)))
                    rec[j + 2048] = UInt8(min(255, 60 + 15 * l + Int(rng.next() & 31)))
                }
            }
        }
    }
}

extension CIFARFiles {
    /// A CIFAR-10 whose classes are ten well-separated colours of a central 16×16 patch on
    /// black (noise 0...31 per pixel): a signal that global average pooling keeps.
    static func palette(to dir: URL) throws {
        let colours: [(Int, Int, Int)] = [(255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 0), (255, 0, 255),
                                          (0, 255, 255), (255, 255, 255), (128, 0, 0), (0, 128, 0), (0, 0, 128)]
        try write(.cifar10, to: dir, layout: .standard) { f, r, rec in
            let l = (f * 7 + r * 3) % 10
            rec[0] = UInt8(l)
            var rng = SplitMix64(seed: UInt64(f * 1_000_003 + r))
            let (red, green, blue) = colours[l]
            for y in 8..<24 {
                for x in 8..<24 {
                    let j = 1 + y * 32 + x
                    rec[j] = UInt8(max(0, red - Int(rng.next() & 31)))
                    rec[j + 1024] = UInt8(max(0, green - Int(rng.next() & 31)))
                    rec[j + 2048] = UInt8(max(0, blue - Int(rng.next() & 31)))
                }
            }
        }
    }
}

final class CIFARTests: XCTestCase {
    var dir: URL!
    override func setUp() { dir = Subprocess.temporaryDirectory("samtrain-cifar") }
    override func tearDown() { try? FileManager.default.removeItem(at: dir) }

    let small = CIFARLayout(cifar10RecordsPerFile: 4, cifar100TrainRecords: 12, cifar100TestRecords: 5)

    func expectError(_ body: @autoclosure () throws -> Any, _ fragments: [String], line: UInt = #line) {
        XCTAssertThrowsError(try body(), line: line) { e in
            for f in fragments { XCTAssertTrue("\(e)".contains(f), "'\(f)' not in: \(e)", line: line) }
        }
    }

    func testCIFAR10ReadsBackExactPixelsAndLabels() throws {
        try CIFARFiles.patterned(.cifar10, to: dir, layout: small)
        let (train, test) = try DatasetKind.cifar10.load(data: dir.path, cifarLayout: small).splits
        XCTAssertEqual([train.count, test.count, train.channels, train.height, train.width, train.classes], [20, 4, 3, 32, 32, 10])
        let pixels = try XCTUnwrap(train.pixels), testPixels = try XCTUnwrap(test.pixels)
        for f in 0..<5 {
            for r in 0..<4 {
                let n = f * 4 + r
                XCTAssertEqual(train.labels[n], Int32(CIFARFiles.label(f, r, classes: 10)))
                XCTAssertEqual(Array(pixels[(n * 3072)..<((n + 1) * 3072)]), (0..<3072).map { CIFARFiles.pixel(f, r, $0) }, "example \(n)")
            }
        }
        for r in 0..<4 {
            XCTAssertEqual(test.labels[r], Int32(CIFARFiles.label(5, r, classes: 10)))
            XCTAssertEqual(Array(testPixels[(r * 3072)..<((r + 1) * 3072)]), (0..<3072).map { CIFARFiles.pixel(5, r, $0) })
        }
    }

    func testCIFAR100UsesTheFineLabels() throws {
        try CIFARFiles.patterned(.cifar100, to: dir, layout: small)
        let (train, test) = try DatasetKind.cifar100.load(data: dir.path, cifarLayout: small).splits
        XCTAssertEqual([train.count, test.count, train.classes, test.classes], [12, 5, 100, 100])
        XCTAssertEqual(train.labels, (0..<12).map { Int32(CIFARFiles.label(0, $0, classes: 100)) })
        XCTAssertEqual(test.labels, (0..<5).map { Int32(CIFARFiles.label(1, $0, classes: 100)) })
        XCTAssertNotEqual(train.labels, (0..<12).map { Int32($0 % 20) }, "not the coarse labels")
        let pixels = try XCTUnwrap(train.pixels)
        XCTAssertEqual(Array(pixels[(7 * 3072)..<(8 * 3072)]), (0..<3072).map { CIFARFiles.pixel(0, 7, $0) })
    }

    /// (x/255 − mean[c]) / std[c] per channel, with docs/algorithms.md §7.5's statistics.
    func testNormalizationPerChannel() throws {
        for kind in [DatasetKind.cifar10, .cifar100] {
            let sub = dir.appendingPathComponent(kind.rawValue)
            try CIFARFiles.patterned(kind, to: sub, layout: small)
            let (train, _) = try kind.load(data: sub.path, cifarLayout: small).splits
            let (mean, std): ([Float], [Float]) = kind == .cifar10 ? ([0.4914, 0.4822, 0.4465], [0.2470, 0.2435, 0.2616])
                                                                  : ([0.5071, 0.4865, 0.4409], [0.2673, 0.2564, 0.2762])
            XCTAssertEqual(train.normalization?.mean, mean)
            XCTAssertEqual(train.normalization?.std, std)
            let batch = Tensor(shape: [0])
            var labels: [Int32] = []
            train.gather([3, 1], into: batch, labels: &labels)
            XCTAssertEqual(batch.shape, [2, 3, 32, 32])
            XCTAssertEqual(labels, [train.labels[3], train.labels[1]])
            let pixels = try XCTUnwrap(train.pixels)
            for (row, n) in [3, 1].enumerated() {
                for j in 0..<3072 {
                    let c = j / 1024, b = pixels[n * 3072 + j]
                    let got = batch[row * 3072 + j]
                    XCTAssertEqual(got, Float(b) * (1 / (255 * std[c])) - mean[c] / std[c], "the precomputed formula, exactly")
                    XCTAssertEqual(Double(got), (Double(b) / 255 - Double(mean[c])) / Double(std[c]), accuracy: 1e-5)
                }
            }
        }
    }

    /// Fashion-MNIST, now kept as bytes, gathers exactly the floats it was normalized to
    /// before: `Float(b) * (1/(255·std)) − mean/std`, so recorded results do not move.
    func testFashionMNISTNormalizationIsUnchanged() throws {
        try Subprocess.requireFashionMNIST()
        let (train, test) = try DatasetKind.fashionMNIST.load(data: Subprocess.fashionMNIST).splits
        let scale: Float = 1 / (255 * 0.3530), shift: Float = 0.2860 / 0.3530
        for d in [train, test] {
            let pixels = try XCTUnwrap(d.pixels)
            let batch = Tensor(shape: [0])
            var labels: [Int32] = []
            var mismatches = 0, sum = 0.0
            var i = 0
            while i < d.count {
                let n = min(1000, d.count - i)
                d.gather(i..<(i + n), into: batch, labels: &labels)
                for j in 0..<(n * 784) {
                    let v = batch[j]
                    if v.bitPattern != (Float(pixels[i * 784 + j]) * scale - shift).bitPattern { mismatches += 1 }
                    sum += Double(v)
                }
                i += n
            }
            XCTAssertEqual(mismatches, 0)
            XCTAssertEqual(sum / Double(d.count * 784), 0, accuracy: 0.02)
        }
    }

    func testDamagedFilesAreRefusedNamingTheFile() throws {
        func fresh(_ name: String, _ kind: DatasetKind = .cifar10) throws -> URL {
            let d = dir.appendingPathComponent(name)
            try CIFARFiles.patterned(kind, to: d, layout: small)
            return d
        }
        let recordBytes = 3073, expected = 4 * recordBytes
        // Truncated.
        var d = try fresh("truncated")
        var path = d.appendingPathComponent("data_batch_3.bin")
        try Data(try Data(contentsOf: path).prefix(expected - 100)).write(to: path)
        expectError(try DatasetKind.cifar10.load(data: d.path, cifarLayout: small),
                    [path.path, "\(expected - 100) bytes", "4 records × 3073 bytes = \(expected) bytes", "truncated"])
        // Extra bytes.
        d = try fresh("extra")
        path = d.appendingPathComponent("test_batch.bin")
        try (try Data(contentsOf: path) + Data([1, 2, 3])).write(to: path)
        expectError(try DatasetKind.cifar10.load(data: d.path, cifarLayout: small),
                    [path.path, "\(expected + 3) bytes", "= \(expected) bytes", "3 extra bytes"])
        // Label 10 in CIFAR-10, record 2.
        d = try fresh("label")
        path = d.appendingPathComponent("data_batch_4.bin")
        var bytes = [UInt8](try Data(contentsOf: path))
        bytes[2 * recordBytes] = 10
        try Data(bytes).write(to: path)
        expectError(try DatasetKind.cifar10.load(data: d.path, cifarLayout: small), [path.path, "record 2", "label 10", "0–9"])
        // Fine label 100 in CIFAR-100, record 4.
        d = try fresh("fine", .cifar100)
        path = d.appendingPathComponent("test.bin")
        bytes = [UInt8](try Data(contentsOf: path))
        bytes[4 * 3074 + 1] = 100
        try Data(bytes).write(to: path)
        expectError(try DatasetKind.cifar100.load(data: d.path, cifarLayout: small), [path.path, "record 4", "fine label 100", "0–99"])
        // Missing file: named, with where the data comes from.
        d = try fresh("missing")
        try FileManager.default.removeItem(at: d.appendingPathComponent("data_batch_5.bin"))
        expectError(try DatasetKind.cifar10.load(data: d.path, cifarLayout: small),
                    [d.path + "/data_batch_5.bin", "missing file", "binary version", "cifar-10-binary.tar.gz", "unpacked"])
        expectError(try DatasetKind.cifar10.checkFiles(directory: d.path, cifarLayout: small), ["data_batch_5.bin", "missing"])
        // The real layout refuses small files, exactly.
        let good = try fresh("good")
        expectError(try DatasetKind.cifar10.load(data: good.path),
                    ["data_batch_1.bin", "\(expected) bytes", "10000 records × 3073 bytes = 30730000 bytes"])
        expectError(try DatasetKind.cifar10.load(data: dir.path + "/nowhere"), ["--data \(dir.path)/nowhere", "no such directory", "binary version"])
    }

    /// `--data` may name the folder holding the unpacked `cifar-10-batches-bin/` or `cifar-100-binary/`.
    func testTheTarballsFolderOneLevelDownIsFound() throws {
        try CIFARFiles.patterned(.cifar10, to: dir.appendingPathComponent("cifar-10-batches-bin"), layout: small)
        try CIFARFiles.patterned(.cifar100, to: dir.appendingPathComponent("cifar-100-binary"), layout: small)
        XCTAssertEqual(try DatasetKind.cifar10.load(data: dir.path, cifarLayout: small).train.count, 20)
        XCTAssertEqual(try DatasetKind.cifar100.load(data: dir.path, cifarLayout: small).train.count, 12)
        try DatasetKind.cifar100.checkFiles(directory: dir.path, cifarLayout: small)
    }

    func testDatasetNamesAndTheDefaultDataDirectory() throws {
        XCTAssertEqual(DatasetKind.allCases.map(\.rawValue), ["fashion-mnist", "mnist", "cifar10", "cifar100", "arrays"])
        expectError(try DatasetKind.named("cifar-10"), ["--dataset cifar-10", "unknown dataset", "fashion-mnist, mnist, cifar10, cifar100, arrays"])
        // --data left at Fashion-MNIST's default: say that CIFAR needs --data.
        expectError(try DatasetKind.cifar10.load(data: DatasetKind.defaultDirectory), ["--dataset cifar10 needs --data DIR", "default"])
        var c = try TrainingConfiguration.defaults
        XCTAssertEqual(c.data.effectiveAugment, .none)
        c.data.dataset = .cifar100
        XCTAssertEqual(c.data.effectiveAugment, .cropFlip)
        expectError(try TrainingConfiguration.parse(commandLine: ["--dataset", "imagenet"]), ["imagenet", "--dataset"])
    }

    func testLabelNoiseOnCIFAR100StaysInRange() throws {
        let layout = CIFARLayout(cifar10RecordsPerFile: 1, cifar100TrainRecords: 1000, cifar100TestRecords: 3)
        try CIFARFiles.patterned(.cifar100, to: dir, layout: layout)
        let clean = try DatasetKind.cifar100.load(data: dir.path, cifarLayout: layout).train
        let (noisy, test) = try DatasetKind.cifar100.load(data: dir.path, trainSubset: 800, labelNoise: 0.25, seed: 9, cifarLayout: layout).splits
        XCTAssertEqual(noisy.count, 800)
        XCTAssertEqual(noisy.corruptedLabels, 200)
        XCTAssertEqual(zip(clean.labels, noisy.labels).filter { $0 != $1 }.count, 200)
        XCTAssertTrue(noisy.labels.allSatisfy { $0 >= 0 && $0 < 100 })
        XCTAssertGreaterThan(Set(noisy.labels).count, 90)
        XCTAssertEqual(test.corruptedLabels, 0)
        let again = try DatasetKind.cifar100.load(data: dir.path, trainSubset: 800, labelNoise: 0.25, seed: 9, cifarLayout: layout).train
        XCTAssertEqual(again.labels, noisy.labels)
    }

    func testSweepCellsCheckTheCIFARFilesAndTakeAugmentSettings() throws {
        try CIFARFiles.patterned(.cifar10, to: dir, layout: small)
        let sweep = dir.appendingPathComponent("s.json")
        try Data("{\"fixed\": {\"dataset\": \"cifar10\", \"data\": \"\(dir.path)\", \"augment\": \"crop-flip\", \"cutout\": 16}, \"axes\": {\"rho\": [0.1]}}".utf8).write(to: sweep)
        let file = try SweepFile(path: sweep.path, quick: false)
        XCTAssertEqual(file.cells[0].arguments.suffix(4), ["--dataset", "cifar10", "--rho", "0.1"])
        XCTAssertTrue(file.cells[0].arguments.contains("--cutout"))
        expectError(try file.validate(), ["data_batch_1.bin", "30730000 bytes"])   // small files under the real layout
        try Data("{\"fixed\": {\"augment\": \"mixup\"}, \"axes\": {\"rho\": [0.1]}}".utf8).write(to: sweep)
        expectError(try SweepFile(path: sweep.path, quick: false).validate(), ["'mixup'", "--augment", "'crop-flip'"])
    }
}

/// The command line on real-sized CIFAR-10 files (6 × 30,730,000 bytes), under mpirun.
final class CIFARCommandLineTests: XCTestCase {
    static let root = Subprocess.temporaryDirectory("samtrain-cifar-real")
    static let good: URL = {
        let d = root.appendingPathComponent("cifar-10-batches-bin")
        try? CIFARFiles.learnable(to: d)
        return d
    }()

    override class func tearDown() { try? FileManager.default.removeItem(at: root) }

    /// A copy of the good directory (links) with one file replaced by `damage`.
    func damaged(_ name: String, _ file: String, _ damage: (inout [UInt8]) -> Void) throws -> String {
        let d = CIFARCommandLineTests.root.appendingPathComponent(name)
        try FileManager.default.createDirectory(at: d, withIntermediateDirectories: true)
        for f in CIFARFiles.cifar10Train + ["test_batch.bin"] where f != file {
            try FileManager.default.createSymbolicLink(at: d.appendingPathComponent(f), withDestinationURL: CIFARCommandLineTests.good.appendingPathComponent(f))
        }
        var bytes = [UInt8](try Data(contentsOf: CIFARCommandLineTests.good.appendingPathComponent(file)))
        damage(&bytes)
        if !bytes.isEmpty { try Data(bytes).write(to: d.appendingPathComponent(file)) }
        return d.path
    }

    func testTrainsOnRealSizedCIFAR10UnderMPIWhateverTheRankCount() throws {
        let data = CIFARCommandLineTests.root.path   // the folder holding cifar-10-batches-bin
        XCTAssertEqual(try FileManager.default.attributesOfItem(atPath: CIFARCommandLineTests.good.appendingPathComponent("data_batch_2.bin").path)[.size] as? Int, 30_730_000)
        let out = CIFARCommandLineTests.root.appendingPathComponent("out")
        var params: [[Float]] = []
        for ranks in [2, 1] {
            let dir = out.appendingPathComponent("r\(ranks)").path
            // --m 32: the same perturbation shards whatever the rank count.
            let r = try Subprocess.mpirun(ranks, ["train", "--dataset", "cifar10", "--data", data, "--model", "mlp", "--sam", "sam", "--m", "32",
                                                  "--epochs", "3", "--train-subset", "1024", "--batch-size", "64", "--max-steps", "48",
                                                  "--lr", "0.02", "--cutout", "8", "--log-every", "1000", "--out", dir], timeout: 300)
            XCTAssertEqual(r.status, 0, r.output)
            XCTAssertTrue(r.stdout.contains("1024 train / 10000 test examples"), r.output)
            XCTAssertTrue(r.stdout.contains("augmentation: crop-flip") && r.stdout.contains("cutout 8×8"), r.output)
            let last = try XCTUnwrap(r.stdout.split(separator: "\n").last { $0.hasPrefix("epoch 3/3") }, r.output)
            let fields = last.split(separator: " ", omittingEmptySubsequences: true)
            func value(_ key: String) -> Double? { fields.firstIndex(of: Substring(key)).flatMap { Double(fields[$0 + 1]) } }
            // Chance is 0.1 and ln 10 = 2.30 (seeds 0–2 give test_acc 0.69–0.90, train_loss 1.06–1.22).
            XCTAssertGreaterThan(try XCTUnwrap(value("test_acc"), String(last)), 0.4, "it does not learn: \(last)")
            XCTAssertLessThan(try XCTUnwrap(value("train_loss"), String(last)), 1.5, "it does not learn: \(last)")
            let config = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: dir + "/config.json"))) as! [String: Any]
            let settings = try XCTUnwrap(config["settings"] as? [String: Any])
            XCTAssertEqual(settings["augment"] as? String, "crop-flip")
            XCTAssertEqual(settings["cutout"] as? Int, 8)
            let ck = try Checkpoint.read(from: try XCTUnwrap(CheckpointDirectory.list(dir).first, r.output))
            params.append(ck.file.tensors.filter { !$0.name.hasPrefix("optimizer.") }.flatMap(\.values))
        }
        // The augmented batches do not depend on the rank count (float sums in another order).
        var worst: Float = 0
        for (a, b) in zip(params[0], params[1]) { worst = max(worst, abs(a - b) / (1e-3 + abs(b))) }
        XCTAssertLessThan(worst, 2e-3, "R = 1 and R = 2 differ by \(worst) (relative)")
        // A resume with another augmentation is refused.
        let other = try Subprocess.mpirun(1, ["train", "--dataset", "cifar10", "--data", data, "--model", "mlp", "--sam", "sam", "--m", "32",
                                              "--epochs", "3", "--train-subset", "1024", "--batch-size", "64", "--max-steps", "48",
                                              "--lr", "0.02", "--augment", "none", "--resume", out.appendingPathComponent("r1").path], timeout: 120)
        XCTAssertNotEqual(other.status, 0)
        XCTAssertTrue(other.stderr.contains("augment: checkpoint crop-flip, now none") && other.stderr.contains("cutout: checkpoint 8, now 0"), other.output)
    }

    /// docs/algorithms.md §7.3's CIFAR ResNet on the same files: it learns the classes' signal, well above chance.
    func testResNet20LearnsUnderMPI() throws {
        let data = CIFARCommandLineTests.root.appendingPathComponent("palette")
        try CIFARFiles.palette(to: data.appendingPathComponent("cifar-10-batches-bin"))
        defer { try? FileManager.default.removeItem(at: data) }
        let r = try Subprocess.mpirun(2, ["train", "--dataset", "cifar10", "--data", data.path, "--model", "resnet20",
                                          "--epochs", "2", "--train-subset", "1024", "--test-subset", "500", "--batch-size", "64",
                                          "--log-every", "1000"], timeout: 300)
        XCTAssertEqual(r.status, 0, r.output)
        XCTAssertTrue(r.stdout.contains("resnet20 (269722 parameters) on cifar10: 1024 train / 500 test examples"), r.output)
        let last = try XCTUnwrap(r.stdout.split(separator: "\n").last { $0.hasPrefix("epoch 2/2") }, r.output)
        let fields = last.split(separator: " ", omittingEmptySubsequences: true)
        let accuracy = try XCTUnwrap(fields.firstIndex(of: "test_acc").flatMap { Double(fields[$0 + 1]) }, String(last))
        XCTAssertGreaterThan(accuracy, 0.4, "resnet20 does not learn (chance is 0.1): \(last)")
    }

    func expectFailure(_ args: [String], naming fragments: [String], file: StaticString = #filePath, line: UInt = #line) throws {
        try Subprocess.expectFailure(args, naming: fragments, timeout: 60, within: nil, file: file, line: line)
    }

    func testDamagedFilesAreRefusedOnEveryRankWithOneMessage() throws {
        _ = CIFARCommandLineTests.good
        let train = ["train", "--dataset", "cifar10", "--model", "mlp", "--max-steps", "1", "--data"]
        let label = try damaged("label", "test_batch.bin") { $0[1234 * 3073] = 10 }
        try expectFailure(train + [label], naming: ["test_batch.bin", "record 1234", "label 10", "0–9", "rank 0"])
        let truncated = try damaged("truncated", "data_batch_3.bin") { $0.removeLast(730_000) }
        try expectFailure(train + [truncated], naming: ["data_batch_3.bin", "30000000 bytes", "10000 records × 3073 bytes = 30730000 bytes", "rank 0"])
        let missing = try damaged("missing", "data_batch_5.bin") { $0 = [] }
        try expectFailure(train + [missing], naming: ["data_batch_5.bin", "missing file", "binary version"])
        try expectFailure(["train", "--dataset", "cifar100", "--model", "mlp"], naming: ["--dataset cifar100 needs --data DIR"])
        try expectFailure(["train", "--dataset", "cifar1000"], naming: ["'cifar1000'", "--dataset", "'cifar100' or 'arrays'"])
        try expectFailure(["train", "--dataset", "cifar10", "--data", CIFARCommandLineTests.good.path, "--augment", "flip"], naming: ["'flip'", "--augment", "crop-flip"])
        try expectFailure(["train", "--cutout=-2"], naming: ["--cutout -2"])
    }
}
