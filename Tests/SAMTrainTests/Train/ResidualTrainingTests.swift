import Foundation
import XCTest
@testable import SAMTrain

/// The residual networks under mpirun, through the whole trainer: replicas stay
/// bit-identical (BatchNorm statistics, micro-shards, every pass of a variant), and a killed
/// run resumes bit-identically.
final class ResidualTrainingTests: XCTestCase {
    /// resnet20 on 1×28×28 Fashion-MNIST: 384 examples, 16 per rank, 100 test examples.
    func run(_ extra: [String]) -> [String] {
        ["train", "--model", "resnet20", "--epochs", "1", "--train-subset", "384", "--batch-size", "32",
         "--test-subset", "100", "--log-every", "1000"] + extra
    }

    func testRanksHoldBitIdenticalParametersForEveryVariant() throws {
        try Subprocess.requireFashionMNIST()
        for variant in [["--sam", "sam"], ["--sam", "bsam", "--m", "8"], ["--sam", "asam", "--scope", "global"]] {
            let r = try Subprocess.mpirun(2, run(variant + ["--max-steps", "4", "--report-digests"]), timeout: 240)
            XCTAssertEqual(r.status, 0, r.output)
            let digests = r.stdout.split(separator: "\n").filter { $0.hasPrefix("rank ") && $0.contains("parameter digest") }
                .map { $0.split(separator: " ").last! }
            XCTAssertEqual(digests.count, 2, r.output)
            XCTAssertEqual(Set(digests).count, 1, "\(variant): ranks disagree: \(digests)")
        }
    }

    func testKilledRunResumesBitIdentically() throws {
        try Subprocess.requireFashionMNIST()
        let root = Subprocess.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: root) }
        let a = root.appendingPathComponent("a").path, b = root.appendingPathComponent("b").path
        // 2 epochs of 12 steps, a checkpoint every 5 steps (mid-epoch).
        let args = { (out: String) in self.run(["--epochs", "2", "--checkpoint-every", "5", "--out", out]) }
        let whole = try Subprocess.mpirun(2, args(a), timeout: 300)
        XCTAssertEqual(whole.status, 0, whole.output)
        let killed = try Subprocess.mpirun(2, args(b), timeout: 300,
                                           killWhen: { FileManager.default.fileExists(atPath: b + "/checkpoint-step0000015.safetensors") })
        XCTAssertTrue(killed.killed, "the run ended before it could be killed:\n\(killed.output)")
        let resumed = try Subprocess.mpirun(2, args(b) + ["--resume", b], timeout: 300)
        XCTAssertEqual(resumed.status, 0, resumed.output)
        XCTAssertTrue(resumed.stdout.contains("resumed at step 15"), resumed.output)
        let final = "/checkpoint-step0000024.safetensors"
        let x = try XCTUnwrap(FileManager.default.contents(atPath: a + final), whole.output)
        let y = try XCTUnwrap(FileManager.default.contents(atPath: b + final), resumed.output)
        XCTAssertEqual(x, y, "resumed resnet20 differs from the uninterrupted run")
        // The checkpoint carries PyTorch's state_dict names of the module.
        let checkpoint = try Checkpoint.read(from: b + final)
        let names = Set(checkpoint.file.tensors.map(\.name))
        for key in ["conv1.weight", "bn1.running_var", "layers.3.conv1.weight", "layers.8.bn2.bias", "fc.weight"] {
            XCTAssertTrue(names.contains(key), "checkpoint lacks \(key)")
        }
    }
}
