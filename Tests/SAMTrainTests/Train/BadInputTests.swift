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

    /// Issue 12's reproducer classes through the command line on two ranks: one message
    /// naming the file and field, a non-zero exit, no trap.
    func testHostileFilesGiveOneMessageOnEveryRank() throws {
        let dir = Subprocess.temporaryDirectory("samtrain-hostile")
        defer { try? FileManager.default.removeItem(at: dir) }
        let mismatched = dir.appendingPathComponent("mismatched"), tiny = dir.appendingPathComponent("tiny")
        for d in [mismatched, tiny] { try FileManager.default.createDirectory(at: d, withIntermediateDirectories: true) }
        try MNISTFiles.write(to: mismatched, train: (64, 14), test: (8, 28))
        try MNISTFiles.write(to: tiny, train: (64, 2), test: (8, 2))
        try expectFailure(["train", "--data", mismatched.path, "--batch-size", "8"], naming: [mismatched.path, "1×14×14", "1×28×28"])
        try expectFailure(["train", "--data", tiny.path, "--batch-size", "8", "--model", "cnn"], naming: [tiny.path, "--model cnn", "≥ 4"])

        let model = Architecture.mlp.build(inputShape: [1, 2, 2], classes: 10)
        var checkpoint = Checkpoint(model: model, optimizer: SGD(count: model.store.count, momentum: 0, nesterov: false, weightDecay: 0),
                                    metadata: ["step": "1", "settings": #"{"model":"mlp","dataset":"fashion-mnist"}"#, "data": tiny.path])
        let path = dir.appendingPathComponent("future.safetensors").path
        // Without --data, eval reads the data the checkpoint was trained on.
        try checkpoint.write(to: path)
        let eval = try Subprocess.mpirun(2, ["eval", "--checkpoint", path], timeout: 30)
        XCTAssertEqual(eval.status, 0, eval.output)
        XCTAssertTrue(eval.stdout.contains("(step 1)") && eval.stdout.contains("(8 examples, 2 rank(s)) on \(tiny.path)"), eval.output)
        checkpoint.file.metadata["format_version"] = "999"
        try checkpoint.write(to: path)
        try expectFailure(["eval", "--checkpoint", path], naming: [path, "format_version is 999"])
        checkpoint.file.metadata["format_version"] = Checkpoint.formatVersion
        checkpoint.file.metadata["optimizer_step"] = "9223372036854775807"
        try checkpoint.write(to: path)
        try expectFailure(["eval", "--checkpoint", path], naming: [path, "optimizer_step"])

        let vector = dir.appendingPathComponent("vector.json").path
        try #"{"model": {"layers": [{"type": "linear", "in": 2, "out": -1}]}, "param_order": [], "params": {}, "data": {"x": [[1, 2]], "y": [0]}, "optimizer": {"type": "sgd", "lr": 0.1}, "sam": {"variant": "none"}, "num_steps": 1, "steps": []}"#
            .write(toFile: vector, atomically: true, encoding: .utf8)
        try expectFailure(["conformance", vector], naming: [vector, "model.layers[0].out is -1"])
    }

    /// The commands that run without mpirun: sweep and plot.
    func testHostileSweepAndPlotInputs() throws {
        let dir = Subprocess.temporaryDirectory("samtrain-hostile")
        defer { try? FileManager.default.removeItem(at: dir) }
        func expectOneMessage(_ args: [String], naming fragments: [String], line: UInt = #line) throws {
            let r = try Subprocess.run(Subprocess.samtrain, args, timeout: 30)
            XCTAssertFalse(r.timedOut, "hung: \(args)", line: line)
            XCTAssertNotEqual(r.status, 0, r.output, line: line)
            XCTAssertLessThan(r.seconds, 5, line: line)
            let errors = r.stderr.split(separator: "\n").filter { $0.contains("samtrain: error") }
            XCTAssertEqual(errors.count, 1, r.output, line: line)
            for f in fragments { XCTAssertTrue(errors.first?.contains(f) == true, "'\(f)' not in \(r.output)", line: line) }
            XCTAssertFalse(r.output.contains("Fatal error"), r.output, line: line)
        }
        let hundred = "[" + (1...100).map(String.init).joined(separator: ",") + "]"
        let sweep = dir.appendingPathComponent("huge.json").path
        try #"{"axes": {"seed": \#(hundred), "epochs": \#(hundred), "cutout": \#(hundred)}}"#.write(toFile: sweep, atomically: true, encoding: .utf8)
        try expectOneMessage(["sweep", sweep, "--dry-run"], naming: [sweep, "100 × 100 × 100"])
        let big = dir.appendingPathComponent("big.json").path
        try #"{"axes": {"seed": [9223372036854775808]}}"#.write(toFile: big, atomically: true, encoding: .utf8)
        try expectOneMessage(["sweep", big, "--dry-run"], naming: [big, "seed", "integer"])

        let run = dir.appendingPathComponent("run")
        try FileManager.default.createDirectory(at: run, withIntermediateDirectories: true)
        let metrics = run.appendingPathComponent("metrics.csv").path
        try "epoch,step,train_loss,train_acc,test_loss,test_acc\n1,10,0.5,0.8,0.4,0.85\n2,20\n".write(toFile: metrics, atomically: true, encoding: .utf8)
        try expectOneMessage(["plot", "curves", metrics, "--out", dir.appendingPathComponent("c").path], naming: [metrics + ":3", "2 field(s)"])
        try "epoch,step,train_loss,train_acc,test_loss,test_acc\n1,10,0.5,0.8,0.4,0.85\n".write(toFile: metrics, atomically: true, encoding: .utf8)
        let results = dir.appendingPathComponent("results.csv").path
        try "cell,m,rho,final_test_acc\nx,4,0.1,0.9\n".write(toFile: results, atomically: true, encoding: .utf8)
        try expectOneMessage(["plot", "sweep", results, "--title", "t\"\nsystem 'touch \(dir.path)/owned'", "--out", dir.appendingPathComponent("s").path],
                             naming: ["--title", "control character"])
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir.path + "/owned"))
    }

    /// `--lr -1` with a space reaches the learning rate's own check.
    func testNegativeNumbersAfterASpace() throws {
        try expectFailure(["train", "--lr", "-1"], naming: ["--lr -1", "positive"])
        try expectFailure(["train", "--momentum", "-0.5"], naming: ["--momentum -0.5", "[0, 1)"])
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

    /// `--lr 1e6` (warmed up over a million steps, so that lr = 1, 2, 3, … and the first
    /// steps are still good): the weights grow until a finite checkpoint would evaluate to
    /// NaN; the run stops there and keeps the last checkpoint that evaluates finite.
    func testLearningRate1e6KeepsACheckpointThatEvaluatesFinite() throws {
        try Subprocess.requireFashionMNIST()
        let dir = Subprocess.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let r = try Subprocess.mpirun(2, ["train", "--lr", "1e6", "--warmup-steps", "1000000", "--epochs", "1", "--train-subset", "1024",
                                          "--batch-size", "64", "--test-subset", "500", "--checkpoint-every", "1", "--out", dir.path], timeout: 120)
        XCTAssertNotEqual(r.status, 0, r.output)
        let message = try XCTUnwrap(r.stderr.split(separator: "\n").first { $0.contains("samtrain: error") }, r.output)
        let kept = try XCTUnwrap(CheckpointDirectory.list(dir.path).first, "no checkpoint kept: \(r.output)")
        XCTAssertTrue(message.contains("the last good checkpoint") && message.contains(kept), String(message))
        let eval = try Subprocess.mpirun(2, ["eval", "--checkpoint", kept], timeout: 60)
        XCTAssertEqual(eval.status, 0, eval.output)
        let loss = try XCTUnwrap(eval.stdout.components(separatedBy: "test_loss ").last?.split(separator: " ").first.flatMap { Double($0) }, eval.output)
        XCTAssertTrue(loss.isFinite, "the kept checkpoint evaluates to \(loss)")
    }
}
