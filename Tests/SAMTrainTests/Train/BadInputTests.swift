import XCTest
@testable import SAMTrain

/// Bad input under `mpirun -np 2`: one clear message naming the culprit, a non-zero exit
/// on every rank within 10 seconds, no stack trace, no hang.
final class BadInputTests: XCTestCase {
    static let fixtures: URL = {
        // A data directory whose training images are truncated, and one whose test labels
        // are not an IDX file; the other files are links to the real ones.
        let root = Subprocess.temporaryDirectory("samtrain-bad-data")
        let real = Subprocess.fashionMNIST
        let names = ["train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz", "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"]
        for variant in ["truncated", "corrupt"] {
            let dir = root.appendingPathComponent(variant)
            try? FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
            for name in names { try? FileManager.default.createSymbolicLink(atPath: dir.appendingPathComponent(name).path, withDestinationPath: real + "/" + name) }
        }
        let truncated = root.appendingPathComponent("truncated/train-images-idx3-ubyte.gz")
        try? FileManager.default.removeItem(at: truncated)
        if let data = FileManager.default.contents(atPath: real + "/train-images-idx3-ubyte.gz") {
            try? data.prefix(data.count / 2).write(to: truncated)
        }
        let corrupt = root.appendingPathComponent("corrupt/t10k-labels-idx1-ubyte.gz")
        try? FileManager.default.removeItem(at: corrupt)
        try? Data("this is not an IDX file at all".utf8).write(to: corrupt)
        return root
    }()

    func expectFailure(_ args: [String], naming fragments: [String], file: StaticString = #filePath, line: UInt = #line) throws {
        try Subprocess.expectFailure(args, naming: fragments, file: file, line: line)
    }

    func testBadFlagsAndSettings() throws {
        try expectFailure(["train", "--model", "resnet9000"], naming: ["--model", "resnet9000"])
        try expectFailure(["train", "--lr", "-0.1"], naming: ["--lr"])
        try expectFailure(["train", "--lr", "0"], naming: ["--lr"])
        try expectFailure(["train", "--epochs", "0"], naming: ["--epochs"])
        try expectFailure(["train", "--no-such-flag"], naming: ["--no-such-flag"])
        try expectFailure(["train", "--batch-size", "127"], naming: ["--batch-size 127", "2 ranks"])
        try expectFailure(["train", "--batch-size", "128", "--m", "48"], naming: ["--m 48"])
        try expectFailure(["train", "--sam", "adam"], naming: ["--sam"])
    }

    func testBadDataFiles() throws {
        try Subprocess.requireFashionMNIST()
        try expectFailure(["train", "--data", "/nonexistent/fashion"], naming: ["/nonexistent/fashion", "dataset-fashion-mnist"])
        let truncated = BadInputTests.fixtures.appendingPathComponent("truncated").path
        try expectFailure(["train", "--data", truncated], naming: ["train-images-idx3-ubyte.gz", "truncated", "rank 0"])
        let corrupt = BadInputTests.fixtures.appendingPathComponent("corrupt").path
        try expectFailure(["train", "--data", corrupt], naming: ["t10k-labels-idx1-ubyte.gz"])
    }

    func testDamagedCheckpointIsRefused() throws {
        let dir = Subprocess.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("checkpoint-step0000001.safetensors").path
        try Data([1, 2, 3]).write(to: URL(fileURLWithPath: path))
        try expectFailure(["eval", "--checkpoint", path], naming: [path])
        try expectFailure(["train", "--resume", dir.path], naming: [dir.path, "no valid checkpoint"])
    }

    /// A diverging run stops with the step named, and the last good checkpoint is kept.
    func testNonFiniteLossStopsTheRunAndKeepsTheLastGoodCheckpoint() throws {
        try Subprocess.requireFashionMNIST()
        let dir = Subprocess.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let r = try Subprocess.mpirun(2, ["train", "--model", "mlp", "--sam", "none", "--lr", "1e12", "--momentum", "0",
                                          "--epochs", "1", "--train-subset", "2048", "--batch-size", "64",
                                          "--checkpoint-every", "1", "--out", dir.path], timeout: 60)
        XCTAssertNotEqual(r.status, 0, r.output)
        let message = try XCTUnwrap(r.stderr.split(separator: "\n").first { $0.contains("samtrain: error") }, r.output)
        XCTAssertTrue(message.contains("step ") && message.contains("not finite"), String(message))
        let kept = try XCTUnwrap(CheckpointDirectory.list(dir.path).first, "no checkpoint kept")
        let checkpoint = try Checkpoint.read(from: kept)
        XCTAssertTrue(checkpoint.file.tensors.allSatisfy { $0.values.allSatisfy(\.isFinite) }, "the kept checkpoint is not finite")
    }
}
