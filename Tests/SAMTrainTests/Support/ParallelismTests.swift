import Foundation
import XCTest
@testable import SAMTrain
@testable import samtrain

/// `--threads` (docs/algorithms.md §12.4): a pass's layers cut their batch, channels, rows or
/// elements into contiguous parts fixed by the item and thread counts. Every layer kind gives
/// the one-thread result within float32 rounding (sums of ∂W over parts are the only change),
/// and the same thread count gives the same bits on every run.
final class ParallelismTests: XCTestCase {
    func testPartsCoverTheItemsInOrderAndEvenly() {
        for threads in 1...5 {
            let p = Parallelism(threads: threads)
            for count in 0...40 {
                for grain in [1, 4] {
                    let parts = p.partCount(count, grain: grain)
                    XCTAssertEqual(parts, max(1, min(threads, count / grain)))
                    let ranges = (0..<parts).map { Parallelism.part($0, of: parts, count: count) }
                    XCTAssertEqual(ranges.flatMap { Array($0) }, Array(0..<count), "threads \(threads) count \(count)")
                    XCTAssertLessThanOrEqual((ranges.map(\.count).max() ?? 0) - (ranges.map(\.count).min() ?? 0), 1)
                }
            }
        }
    }

    func testEveryPartRunsOnceOnItsOwnRange() {
        let p = Parallelism(threads: 3)
        let seen = UnsafeMutablePointer<Int>.allocate(capacity: 100)
        defer { seen.deallocate() }
        seen.initialize(repeating: 0, count: 100)
        p.forEachPart(100) { items, part in
            for i in items { seen[i] += 1 + part * 1000 }
        }
        let values = Array(UnsafeBufferPointer(start: seen, count: 100))
        XCTAssertEqual(values, (0..<100).map { 1 + ($0 < 34 ? 0 : $0 < 67 ? 1 : 2) * 1000 })
    }

    /// Logits, every parameter gradient and the running statistics after a train-mode forward
    /// and backward pass of `images` examples on `threads` threads.
    func pass(_ configuration: ModelConfiguration, _ convolution: ConvolutionSettings, shape: [Int], images: Int,
              threads: Int) -> [Float] {
        let model = configuration.build(inputShape: shape, classes: 10, convolution: convolution)
        model.initialize(seed: 5)
        model.parallelism = Parallelism(threads: threads)
        var rng = SplitMix64(seed: 9)
        let x = GradientCheck.randomTensor([images] + shape, &rng)
        let logits = model.forward(x, mode: .train)
        let gradient = Tensor(shape: logits.shape)
        _ = SoftmaxCrossEntropy().evaluate(logits: logits, labels: (0..<images).map { Int32($0 % 10) }, gradient: gradient)
        model.backward(gradient)
        return logits.array + model.store.gradients.array + model.store.buffers.array
    }

    /// Convolutions on each lowering, BatchNorm, ReLU, max pooling, residual adds, Linear,
    /// and the ViT's LayerNorm, GELU and attention: 2 and 3 threads against 1.
    func testEveryLayerKindGivesTheSerialResultAndTheSameBitsEveryRun() throws {
        let cases: [(arguments: [String], shape: [Int], images: Int)] = [
            (["--model", "cnn"], [1, 28, 28], 7),
            (["--model", "resnet20"], [3, 16, 16], 5),
            (["--model", "vit-t4", "--vit-width", "24", "--vit-depth", "2", "--vit-heads", "3"], [1, 28, 28], 7),
        ]
        for lowering in [ConvolutionLowering.automatic, .general, .paddedGrid] {
            for t in cases where lowering == .automatic || !t.arguments.contains("vit-t4") {
                let configuration = try TrainCommand.configuration(arguments: t.arguments).model.configuration
                let convolution = ConvolutionSettings(lowering: lowering)
                let serial = pass(configuration, convolution, shape: t.shape, images: t.images, threads: 1)
                XCTAssertTrue(serial.allSatisfy { $0.isFinite })
                for threads in [2, 3] {
                    let parallel = pass(configuration, convolution, shape: t.shape, images: t.images, threads: threads)
                    let worst: Float = zip(parallel, serial).map { (a: Float, b: Float) -> Float in abs(a - b) / (1e-6 + 1e-4 * abs(b)) }.max() ?? .infinity
                    XCTAssertLessThanOrEqual(worst, 1, "\(t.arguments) \(lowering) on \(threads) threads against 1")
                    XCTAssertEqual(pass(configuration, convolution, shape: t.shape, images: t.images, threads: threads), parallel,
                                   "\(t.arguments) on \(threads) threads, run twice")
                }
            }
        }
    }

    /// Under mpirun, 1 rank × 2 threads: a run repeats to the bit, its checkpoints record the
    /// thread count, and a resume on another count says that its rounding differs from then on.
    func testTrainingOnThreadsRepeatsAndAResumeOnAnotherCountSaysSo() throws {
        try Subprocess.requireFashionMNIST()
        let dir = Subprocess.temporaryDirectory("samtrain-threads")
        defer { try? FileManager.default.removeItem(at: dir) }
        func run(_ name: String, _ extra: [String]) throws -> Subprocess.Result {
            let r = try Subprocess.mpirun(1, ["train", "--model", "cnn", "--batch-size", "32", "--train-subset", "320", "--test-subset", "100",
                                              "--sam", "sam", "--lr", "0.05", "--epochs", "2", "--checkpoint-every", "5", "--report-digests",
                                              "--out", dir.appendingPathComponent(name).path] + extra, timeout: 240)
            XCTAssertEqual(r.status, 0, r.output)
            return r
        }
        let digest = { (r: Subprocess.Result) in r.stdout.components(separatedBy: "parameter digest ").last?.prefix(16) }
        let first = try run("a", ["--threads", "2", "--max-steps", "5"]), second = try run("b", ["--threads", "2", "--max-steps", "5"])
        XCTAssertTrue(first.stdout.contains("parameter digest "), first.output)
        XCTAssertEqual(digest(first), digest(second), "the same thread count, the same bits")
        XCTAssertTrue(first.stdout.contains("2 thread(s) per rank"), first.output)
        let checkpoint = try XCTUnwrap(CheckpointDirectory.list(dir.appendingPathComponent("a").path).first)
        let file = try SafeTensors.decode([UInt8](Data(contentsOf: URL(fileURLWithPath: checkpoint))), source: checkpoint)
        XCTAssertEqual(file.metadata["threads"], "2")
        let resumed = try run("a", ["--threads", "1", "--max-steps", "7", "--resume", dir.appendingPathComponent("a").path])
        XCTAssertTrue(resumed.stdout.contains("the checkpoint's run used --threads 2, this one 1"), resumed.output)
    }
}
