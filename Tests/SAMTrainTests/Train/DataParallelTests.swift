import XCTest
@testable import SAMTrain

/// Multi-rank behaviour of `samtrain train`, run under mpirun on the built binary.
final class DataParallelTests: XCTestCase {
    /// A small, quick run: mlp on 2,048 Fashion-MNIST examples.
    func smallRun(_ extra: [String]) -> [String] {
        ["train", "--model", "mlp", "--epochs", "1", "--train-subset", "2048", "--batch-size", "64", "--log-every", "1000"] + extra
    }

    func digests(_ r: Subprocess.Result) -> [Int: String] {
        var d: [Int: String] = [:]
        for line in r.stdout.split(separator: "\n") where line.hasPrefix("rank ") {
            let parts = line.split(separator: " ")
            if parts.count == 5, let rank = Int(parts[1]) { d[rank] = String(parts[4]) }
        }
        return d
    }

    func testEveryRankHoldsBitIdenticalParameters() throws {
        try Subprocess.requireFashionMNIST()
        for (ranks, model) in [(2, "cnn"), (4, "mlp")] {
            let r = try Subprocess.mpirun(ranks, ["train", "--model", model, "--epochs", "1", "--train-subset", "1024",
                                                  "--batch-size", "64", "--max-steps", "8", "--report-digests"])
            XCTAssertEqual(r.status, 0, r.output)
            let d = digests(r)
            XCTAssertEqual(d.count, ranks, r.output)
            XCTAssertEqual(Set(d.values).count, 1, "ranks disagree: \(d)")
        }
    }

    func testSameSeedIsBitIdenticalAndAnotherSeedIsNot() throws {
        try Subprocess.requireFashionMNIST()
        let a = try Subprocess.mpirun(2, smallRun(["--seed", "3", "--report-digests"]))
        let b = try Subprocess.mpirun(2, smallRun(["--seed", "3", "--report-digests"]))
        let c = try Subprocess.mpirun(2, smallRun(["--seed", "4", "--report-digests"]))
        XCTAssertEqual(a.status, 0, a.output)
        XCTAssertEqual(digests(a)[0], digests(b)[0])
        XCTAssertNotNil(digests(a)[0])
        XCTAssertNotEqual(digests(a)[0], digests(c)[0])
        // The metrics printed are identical too.
        let epochLine = { (r: Subprocess.Result) in r.stdout.split(separator: "\n").first { $0.hasPrefix("epoch 1/1") }?.split(separator: " ").prefix(10) }
        XCTAssertEqual(epochLine(a), epochLine(b))
    }

    /// One rank with micro-shards of m = 32 computes what two ranks of 32 examples do
    /// (the BN-free mlp; float sums in another order, so within tolerance, not bit-equal).
    func testOneRankMatchesTwoRanks() throws {
        try Subprocess.requireFashionMNIST()
        for sam in [["--sam", "none"], ["--sam", "sam", "--m", "32"]] {
            let dir = Subprocess.temporaryDirectory()
            defer { try? FileManager.default.removeItem(at: dir) }
            var params: [[Float]] = []
            for ranks in [1, 2] {
                let out = dir.appendingPathComponent("r\(ranks)").path
                let r = try Subprocess.mpirun(ranks, smallRun(sam + ["--out", out]))
                XCTAssertEqual(r.status, 0, r.output)
                let file = try XCTUnwrap(CheckpointDirectory.list(out).first, r.output)
                let ck = try Checkpoint.read(from: file)
                params.append(ck.file.tensors.filter { !$0.name.hasPrefix("optimizer.") }.flatMap(\.values))
            }
            XCTAssertEqual(params[0].count, params[1].count)
            var worst: Float = 0
            for (a, b) in zip(params[0], params[1]) { worst = max(worst, abs(a - b) / (1e-3 + abs(b))) }
            XCTAssertLessThan(worst, 2e-3, "\(sam): R = 1 and R = 2 differ by \(worst) (relative)")
            XCTAssertGreaterThan(params[0].count, 200_000)
        }
    }

    func testShortTrainingLearns() throws {
        try Subprocess.requireFashionMNIST()
        let r = try Subprocess.mpirun(2, ["train", "--model", "cnn", "--epochs", "2", "--train-subset", "8192",
                                          "--batch-size", "64", "--log-every", "1000"], timeout: 300)
        XCTAssertEqual(r.status, 0, r.output)
        let last = try XCTUnwrap(r.stdout.split(separator: "\n").last { $0.hasPrefix("epoch 2/2") }, r.output)
        let fields = last.split(separator: " ", omittingEmptySubsequences: true)
        let accuracy = try XCTUnwrap(fields.firstIndex(of: "test_acc").flatMap { Double(fields[$0 + 1]) }, String(last))
        XCTAssertGreaterThan(accuracy, 0.80, String(last))   // chance is 0.1
    }

    /// docs/algorithms.md §7.7: the noisy label set comes from the seed alone; the run reports how many.
    func testLabelNoiseIsReported() throws {
        try Subprocess.requireFashionMNIST()
        let r = try Subprocess.mpirun(2, smallRun(["--label-noise", "0.4", "--max-steps", "2"]))
        XCTAssertEqual(r.status, 0, r.output)
        XCTAssertTrue(r.stdout.contains("label noise: 819 of 2048 training labels replaced"), r.output)
    }
}
