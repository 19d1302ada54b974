import Foundation
import XCTest
@testable import SAMTrain

/// `samtrain sharpness` probes the loss the run minimized: under --label-noise, the labels it
/// trained on, rebuilt from its seed; `--labels clean` probes the dataset's own.
final class ProbeLabelsTests: XCTestCase {
    /// An mlp that memorizes 64 real Fashion-MNIST examples, half of them mislabelled: on
    /// the labels it trained on its loss is about 0, on the true ones it is large. Rebuilding
    /// any other corruption than the run's would give a large loss for `trained` too.
    func testProbeTakesTheLabelsTheRunTrainedOn() throws {
        try Subprocess.requireFashionMNIST()
        let dir = Subprocess.temporaryDirectory("samtrain-probe-labels")
        defer { try? FileManager.default.removeItem(at: dir) }
        let run = dir.appendingPathComponent("noisy").path
        let train = try Subprocess.mpirun(1, ["train", "--model", "mlp", "--train-subset", "64", "--test-subset", "100", "--label-noise", "0.5",
                                              "--batch-size", "64", "--epochs", "150", "--lr", "0.1", "--seed", "3", "--out", run])
        XCTAssertEqual(train.status, 0, train.output)
        let metrics = try CSVTable(path: run + "/metrics.csv")
        let trainAccuracy = try metrics.column("train_acc", source: "metrics.csv")
        XCTAssertEqual(Double(try XCTUnwrap(metrics.rows.last)[trainAccuracy]), 1, "the mlp did not memorize the noisy labels")
        let checkpoint = try XCTUnwrap(CheckpointDirectory.list(run).first)

        func probe(_ extra: [String]) throws -> [String: Any] {
            let result = try Subprocess.mpirun(2, ["sharpness", "--checkpoint", checkpoint, "--subset", "64", "--m", "16", "--iterations", "5",
                                                   "--line-points", "0", "--json"] + extra)
            XCTAssertEqual(result.status, 0, result.output)
            return try XCTUnwrap(JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any], result.output)
        }
        let trained = try probe([]), clean = try probe(["--labels", "clean"])
        XCTAssertEqual(trained["labels"] as? String, "trained")
        XCTAssertEqual(trained["label_noise"] as? Double, 0.5)
        XCTAssertEqual(clean["labels"] as? String, "clean")
        XCTAssertEqual(clean["label_noise"] as? Double, 0)
        XCTAssertEqual(trained["subset"] as? Int, 64)
        let (fitted, truth) = (try XCTUnwrap(trained["loss"] as? Double), try XCTUnwrap(clean["loss"] as? Double))
        XCTAssertLessThan(fitted, 0.05, "the loss on the labels trained on")
        XCTAssertGreaterThan(truth, 1, "the loss on the true labels, half of which the mlp contradicts")

        // Without label noise both are the dataset's labels; both probe the run's own examples.
        let plain = dir.appendingPathComponent("plain").path
        let clear = try Subprocess.mpirun(1, ["train", "--model", "mlp", "--train-subset", "32", "--test-subset", "100", "--batch-size", "32",
                                              "--max-steps", "3", "--out", plain])
        XCTAssertEqual(clear.status, 0, clear.output)
        let plainCheckpoint = try XCTUnwrap(CheckpointDirectory.list(plain).first)
        var losses: [Double] = []
        for labels in ["trained", "clean"] {
            let result = try Subprocess.mpirun(2, ["sharpness", "--checkpoint", plainCheckpoint, "--subset", "64", "--m", "8", "--iterations", "2",
                                                   "--line-points", "0", "--labels", labels, "--json"])
            XCTAssertEqual(result.status, 0, result.output)
            let json = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any], result.output)
            XCTAssertEqual(json["subset"] as? Int, 32, "the run trained on its first 32 examples")
            losses.append(try XCTUnwrap(json["loss"] as? Double))
        }
        XCTAssertEqual(losses[0], losses[1])
    }

    /// A recorded split that is not a valid setting is a damaged file, named as such.
    func testDamagedSplitIsRefused() {
        XCTAssertEqual(try CheckpointModel.split(["train_subset": "none", "label_noise": "0.4", "seed": "7"], source: "c").labelNoise, 0.4)
        XCTAssertNil(try CheckpointModel.split(["train_subset": "all"], source: "c").subset)
        XCTAssertEqual(try CheckpointModel.split([:], source: "c").seed, 0)
        for (key, value) in [("train_subset", "-3"), ("label_noise", "1.5"), ("label_noise", "nan"), ("seed", "-1"), ("seed", "x")] {
            XCTAssertThrowsError(try CheckpointModel.split([key: value], source: "c.safetensors"), "\(key) \(value)") { error in
                XCTAssertTrue("\(error)".contains("c.safetensors: its recorded \(key) \"\(value)\" is not a valid --\(key.replacingOccurrences(of: "_", with: "-"))"), "\(error)")
            }
        }
    }
}
