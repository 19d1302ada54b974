import Foundation
import XCTest
@testable import SAMTrain

/// Training on a user's own file and from given weights, end to end under mpirun.
final class OwnDataTrainingTests: XCTestCase {
    /// Fashion-MNIST written as an arrays file (channels-last uint8, its mean and std).
    static func fashionMNISTArrays(keeping keep: (Int32) -> Int32? = { $0 }, limit: Int = .max) throws -> SafeTensorsFile {
        try Subprocess.requireFashionMNIST()
        let (train, test) = try DatasetKind.fashionMNIST.load(data: Subprocess.fashionMNIST).splits
        var file = SafeTensorsFile()
        for (name, split) in [("train", train), ("test", test)] {
            var pixels: [UInt8] = [], labels: [Int64] = []
            for i in 0..<split.count where labels.count < limit {
                guard let label = keep(split.labels[i]) else { continue }
                pixels += split.pixels![(i * 784)..<((i + 1) * 784)]
                labels.append(Int64(label))
            }
            file.add("\(name)_images", uint8: pixels, shape: [labels.count, 28, 28])
            file.add("\(name)_labels", int64: labels)
        }
        file.add("mean", float32: [MNISTFamily.Kind.fashionMNIST.mean])
        file.add("std", float32: [MNISTFamily.Kind.fashionMNIST.std])
        return file
    }

    static func digest(_ r: Subprocess.Result) -> String? {
        r.stdout.split(separator: "\n").first { $0.hasPrefix("done:") }
            .flatMap { $0.components(separatedBy: "parameter digest ").last?.components(separatedBy: ";").first }
    }

    /// The same bytes, normalization and labels as the built-in reader: the same run, bit for bit.
    func testFashionMNISTAsArraysTrainsLikeTheBuiltInReader() throws {
        let dir = Subprocess.temporaryDirectory("samtrain-own-data")
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("fashion.safetensors").path
        try Self.fashionMNISTArrays().write(to: path)
        let flags = ["--model", "cnn", "--sam", "sam", "--batch-size", "64", "--max-steps", "12", "--train-subset", "1024",
                     "--test-subset", "200", "--augment", "crop-flip", "--label-noise", "0.2"]
        let builtIn = try Subprocess.mpirun(2, ["train"] + flags, timeout: 300)
        let own = try Subprocess.mpirun(2, ["train", "--dataset", "arrays", "--data", path] + flags, timeout: 300)
        XCTAssertEqual(builtIn.status, 0, builtIn.output)
        XCTAssertEqual(own.status, 0, own.output)
        XCTAssertNotNil(Self.digest(builtIn), builtIn.output)
        XCTAssertEqual(Self.digest(own), Self.digest(builtIn), own.output)
    }

    /// 10-class weights (a samtrain run's checkpoint) fine-tuned on 5 classes: the head starts
    /// fresh, config.json records the file's SHA-256, the run learns, and it resumes like any other.
    func testFineTuningTenClassWeightsOnFiveClassesAndResuming() throws {
        let dir = Subprocess.temporaryDirectory("samtrain-fine-tune")
        defer { try? FileManager.default.removeItem(at: dir) }
        let pretrained = dir.appendingPathComponent("pre").path
        let pre = try Subprocess.mpirun(2, ["train", "--model", "cnn", "--batch-size", "64", "--max-steps", "40", "--train-subset", "2560",
                                            "--test-subset", "200", "--out", pretrained], timeout: 300)
        XCTAssertEqual(pre.status, 0, pre.output)
        let weights = try XCTUnwrap(try FileManager.default.contentsOfDirectory(atPath: pretrained).first { $0.hasPrefix("checkpoint-") })
        let weightsPath = pretrained + "/" + weights
        // Classes 5–9 (sandal, shirt, sneaker, bag, ankle boot) as 0–4.
        let five = dir.appendingPathComponent("five.safetensors").path
        try Self.fashionMNISTArrays(keeping: { $0 >= 5 ? $0 - 5 : nil }, limit: 1280).write(to: five)
        let flags = ["train", "--dataset", "arrays", "--data", five, "--model", "cnn", "--init", weightsPath,
                     "--batch-size", "64", "--epochs", "2", "--lr", "0.02"]

        let whole = dir.appendingPathComponent("whole").path
        let tuned = try Subprocess.mpirun(2, flags + ["--out", whole], timeout: 300)
        XCTAssertEqual(tuned.status, 0, tuned.output)
        XCTAssertTrue(tuned.stdout.contains("started fresh (classifier head: 10 classes in the file, 5 in the data): 17.weight, 17.bias"), tuned.stdout)
        XCTAssertTrue(tuned.stdout.contains("ignored (a samtrain checkpoint's optimizer and run state"), tuned.stdout)
        let config = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: whole + "/config.json"))) as! [String: Any]
        let sha = try Subprocess.run("/usr/bin/sha256sum", [weightsPath]).stdout.prefix(64)
        XCTAssertEqual((config["init"] as? [String: Any])?["sha256"] as? String, String(sha))
        let accuracy = try XCTUnwrap(tuned.stdout.split(separator: "\n").last { $0.hasPrefix("epoch 2/2") }?
            .components(separatedBy: "test_acc ").last?.split(separator: " ").first.flatMap { Double($0) })
        XCTAssertGreaterThan(accuracy, 0.8, "fine-tuned 5-class accuracy (chance 0.2)")

        // Stopped after 20 of 40 steps and resumed (with --init still given): the same weights.
        let halves = dir.appendingPathComponent("halves").path
        let first = try Subprocess.mpirun(2, flags + ["--out", halves, "--max-steps", "20"], timeout: 300)
        XCTAssertEqual(first.status, 0, first.output)
        let second = try Subprocess.mpirun(2, flags + ["--resume", halves, "--out", halves], timeout: 300)
        XCTAssertEqual(second.status, 0, second.output)
        XCTAssertTrue(second.stdout.contains("resumed at step 20"), second.stdout)
        XCTAssertEqual(Self.digest(second), Self.digest(tuned))
    }

    /// Weights that do not fit: one message on every rank, nothing written.
    func testInitFilesThatDoNotFitAreRefusedBeforeAnythingIsWritten() throws {
        let dir = Subprocess.temporaryDirectory("samtrain-init-bad")
        defer { try? FileManager.default.removeItem(at: dir) }
        let resnet = dir.appendingPathComponent("resnet20.safetensors").path
        try SafeTensorsFile.stateDict(of: Architecture.resnet20.build(inputShape: [1, 28, 28])).write(to: resnet)
        let out = dir.appendingPathComponent("run").path
        let base = ["train", "--model", "cnn", "--batch-size", "64", "--max-steps", "1", "--out", out]
        try Subprocess.expectFailure(base + ["--init", resnet], naming: ["--init \(resnet)", "holds none of --model cnn's tensors", "bn1.bias"])
        try Subprocess.expectFailure(base + ["--init", dir.path + "/nothing.safetensors"], naming: ["nothing.safetensors", "cannot read"])
        var integer = SafeTensorsFile.stateDict(of: Architecture.cnn.build(inputShape: [1, 28, 28]))
        integer.tensors[0].dtype = "I32"
        let integerPath = dir.appendingPathComponent("integer.safetensors").path
        try integer.write(to: integerPath)
        try Subprocess.expectFailure(base + ["--init", integerPath], naming: ["0.weight is int32, the model needs floats"])
        try Subprocess.expectFailure(base + ["--init-exclude", "fc"], naming: ["--init-exclude fc: only means something with --init"])
        try Subprocess.expectFailure(base + ["--init", resnet, "--init-exclude", "(bad"], naming: ["--init-exclude (bad: not a valid regular expression"])
        XCTAssertFalse(FileManager.default.fileExists(atPath: out), "--out was created")
        // eval: a plain state_dict needs its model named; a head of another class count is an error there.
        try Subprocess.expectFailure(["eval", "--checkpoint", resnet], naming: [resnet, "name its model with --model"])
        let five = dir.appendingPathComponent("five.safetensors").path
        try SafeTensorsFile.stateDict(of: Architecture.resnet20.build(inputShape: [1, 28, 28], classes: 5)).write(to: five)
        try Subprocess.expectFailure(["eval", "--checkpoint", five, "--model", "resnet20"],
                                     naming: ["fc.weight is [5, 64] in the file, [10, 64] in the model", "the data's class count must be the head's"])
    }
}
