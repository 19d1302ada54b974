import Foundation
import XCTest
@testable import SAMTrain

/// `--micro-batch K` (docs/algorithms.md §6.8): memory, not maths. On a model whose examples
/// do not interact (Linear → LayerNorm → GELU → Linear), every variant under every scope
/// gives the unchunked run's parameters within float32 rounding; with BatchNorm, chunks use
/// their own batch statistics, which for the base optimizer is exactly `--m K`'s micro-shards.
final class MicroBatchTests: XCTestCase {
    static let examples = 12, features = 6, hidden = 8, classes = 3

    /// Linear → `normalization` → `activation` → Linear.
    func model(_ normalization: (ParameterStore) -> Layer, _ activation: Layer) -> Sequential {
        let store = ParameterStore()
        let layers: [Layer] = [
            Linear(store: store, name: "0", inputs: Self.features, outputs: Self.hidden),
            normalization(store),
            activation,
            Linear(store: store, name: "3", inputs: Self.hidden, outputs: Self.classes),
        ]
        let model = Sequential(store: store, layers: layers, inputShape: [Self.features], classes: Self.classes)
        model.initialize(seed: 3)
        return model
    }

    /// Examples that do not interact: LayerNorm normalizes each on its own.
    func perExampleModel() -> Sequential {
        model({ LayerNorm(store: $0, name: "1", features: Self.hidden) }, GELU())
    }

    func batchNormModel() -> Sequential {
        model({ BatchNorm2d(store: $0, name: "1", channels: Self.hidden) }, ReLU())
    }

    func batch(step: Int) -> (Tensor, [Int32]) {
        let images = Tensor(shape: [Self.examples, Self.features])
        for n in 0..<Self.examples {
            for k in 0..<Self.features { images[n * Self.features + k] = Float(sin(0.7 * Double(n + 5 * step) + 1.3 * Double(k)) + 0.2 * Double(k)) }
        }
        return (images, (0..<Self.examples).map { Int32(($0 * 5 + step) % Self.classes) })
    }

    /// Parameters (and, for BatchNorm, running statistics) after `steps` steps.
    func train(_ model: Sequential, variant: String, scope: ScopeName = .shard, m: Int? = nil, microBatch: Int?,
               steps: Int = 3) throws -> [Float] {
        var sam = SAMConfiguration(variant)
        sam.scopeName = scope
        sam.m = m
        let settings = StepSettings(sam: sam, optimizer: .sgd(momentum: 0.9, nesterov: false, weightDecay: 5e-4),
                                    globalBatch: Self.examples, microBatch: microBatch)
        let step = try SAMStep.make(model: model, settings: settings, world: Communicator.world())
        for t in 0..<steps {
            let (x, y) = batch(step: t)
            _ = step.run(images: x, labels: y, context: StepContext(step: t, learningRate: 0.1, maximumLearningRate: 0.1,
                                                                    minimumLearningRate: 0))
        }
        return model.store.values.array + model.store.buffers.array
    }

    func deviation(_ a: [Float], _ b: [Float]) -> Float {
        zip(a, b).map { abs($0 - $1) / (1e-6 + 1e-5 * abs($1)) }.max() ?? .infinity
    }

    func testEveryVariantAndScopeEqualsTheUnchunkedRun() throws {
        // Shards of 12 (one per rank), of 6 (--m 6) and the global scope; chunks of 1, 2 and 3.
        let layouts: [(ScopeName, Int?)] = [(.shard, nil), (.shard, 6), (.global, nil)]
        for variant in VariantRegistry.names {
            for (scope, m) in layouts {
                let whole = try train(perExampleModel(), variant: variant, scope: scope, m: m, microBatch: nil)
                for k in [1, 2, 3] {
                    let chunked = try train(perExampleModel(), variant: variant, scope: scope, m: m, microBatch: k)
                    XCTAssertLessThanOrEqual(deviation(chunked, whole), 1,
                                             "\(variant), scope \(scope) m \(m.map(String.init) ?? "b"), micro-batch \(k)")
                }
                // K = the shard: the same code path as without chunks, bit for bit.
                let all = try train(perExampleModel(), variant: variant, scope: scope, m: m, microBatch: m ?? Self.examples)
                XCTAssertEqual(all, whole, "\(variant): a micro-batch of the whole shard changed the bits")
            }
        }
    }

    func testBatchNormChunksUseTheirOwnStatistics() throws {
        // For the base optimizer, chunks of 4 are micro-shards of 4: same gradients, same
        // running statistics (updated once per chunk), within rounding.
        let chunked = try train(batchNormModel(), variant: "none", microBatch: 4)
        let microShards = try train(batchNormModel(), variant: "none", m: 4, microBatch: nil)
        XCTAssertLessThanOrEqual(deviation(chunked, microShards), 1)
        // and they are not the whole batch's statistics.
        let whole = try train(batchNormModel(), variant: "none", microBatch: nil)
        XCTAssertGreaterThan(deviation(chunked, whole), 10)
    }

    func testAMicroBatchThatDoesNotDivideAShardIsRefused() throws {
        let cases: [(ScopeName, Int?, Int, [String])] = [
            (.shard, nil, 5, ["--micro-batch 5 does not divide the 12 examples of a rank", "valid values: 1, 2, 3, 4, 6, 12"]),
            (.shard, 6, 4, ["--micro-batch 4 does not divide a shard", "6 examples (--m 6); valid values: 1, 2, 3, 6"]),
            (.shard, nil, 24, ["--micro-batch 24 does not divide the 12 examples"]),
            (.shard, nil, 0, ["--micro-batch 0: must be at least 1"]),
        ]
        for (scope, m, k, fragments) in cases {
            XCTAssertThrowsError(try train(perExampleModel(), variant: "sam", scope: scope, m: m, microBatch: k, steps: 1)) { error in
                for fragment in fragments { XCTAssertTrue("\(error)".contains(fragment), "\(error)") }
            }
        }
    }

    /// Under mpirun: config.json records K, a resume with another K is refused, and the
    /// cnn (BatchNorm) trains with chunks of 4 within its per-rank batch of 16.
    func testTrainingRecordsItAndResumeKeepsIt() throws {
        try Subprocess.requireFashionMNIST()
        let dir = Subprocess.temporaryDirectory("samtrain-micro-batch")
        defer { try? FileManager.default.removeItem(at: dir) }
        let out = dir.appendingPathComponent("run").path
        let flags = ["train", "--model", "cnn", "--batch-size", "32", "--train-subset", "640", "--test-subset", "200",
                     "--lr", "0.05", "--epochs", "2", "--out", out]
        let first = try Subprocess.mpirun(2, flags + ["--micro-batch", "4", "--max-steps", "20"], timeout: 300)
        XCTAssertEqual(first.status, 0, first.output)
        let config = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: out + "/config.json"))) as! [String: Any]
        XCTAssertEqual((config["settings"] as? [String: Any])?["micro_batch"] as? Int, 4)
        let other = try Subprocess.mpirun(2, flags + ["--micro-batch", "8", "--resume", out], timeout: 120)
        XCTAssertNotEqual(other.status, 0)
        XCTAssertTrue(other.output.contains("micro_batch: checkpoint 4, now 8"), other.output)
        let resumed = try Subprocess.mpirun(2, flags + ["--micro-batch", "4", "--resume", out], timeout: 300)
        XCTAssertEqual(resumed.status, 0, resumed.output)
        let accuracy = try XCTUnwrap(resumed.stdout.split(separator: "\n").last { $0.hasPrefix("epoch 2/2") }?
            .components(separatedBy: "test_acc ").last?.split(separator: " ").first.flatMap { Double($0) })
        XCTAssertGreaterThan(accuracy, 0.5, "cnn with micro-batches of 4 after 40 steps (chance 0.1)")
    }
}
