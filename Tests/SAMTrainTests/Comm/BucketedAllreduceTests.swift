import Foundation
import XCTest
@testable import SAMTrain

/// The bucketed gradient allreduce: buckets of whole parameters from the last layer
/// backwards, and results bit-identical whether buckets start during the backward pass or
/// after it, for every variant, both scopes, micro-shards and multi-rank shards.
final class BucketedAllreduceTests: XCTestCase {
    func testBucketsAreWholeParametersCutFromTheLastLayerBackwards() {
        let model = Architecture.cnn.build()
        let slots = model.store.parameters
        let reduce = BucketedAllreduce(communicator: Communicator.world(), parameters: slots,
                                       settings: AllreduceSettings(bucketBytes: 64 * 1024))
        // They tile the buffer, descending, each starting and ending on parameter boundaries.
        var upper = model.store.count
        let boundaries = Set(slots.map(\.offset) + [model.store.count])
        for bucket in reduce.buckets {
            XCTAssertEqual(bucket.upperBound, upper)
            XCTAssertTrue(boundaries.contains(bucket.lowerBound) && boundaries.contains(bucket.upperBound))
            upper = bucket.lowerBound
        }
        XCTAssertEqual(upper, 0)
        // Every bucket but the first layers' reaches the target size. The first to start holds
        // the two linear layers (the 256→10 one is smaller than the target, so fc 3136→256 joins it).
        for bucket in reduce.buckets.dropLast() { XCTAssertGreaterThanOrEqual(bucket.count * 4, 64 * 1024) }
        let fc = try! XCTUnwrap(model.store.slot(named: "15.weight"))
        XCTAssertEqual(reduce.buckets.first, fc.offset..<model.store.count)
        XCTAssertGreaterThan(reduce.buckets.count, 3)

        // One big bucket when the target exceeds the model.
        let one = BucketedAllreduce(communicator: Communicator.world(), parameters: slots,
                                    settings: AllreduceSettings(bucketBytes: 1 << 30))
        XCTAssertEqual(one.buckets, [0..<model.store.count])
    }

    /// Every parameter is reported once by the backward hook, layer by layer, last first.
    func testBackwardReportsEveryParameterOnceLastLayerFirst() {
        for architecture in [Architecture.cnn, .resnet20] {
            let model = architecture.build()
            model.initialize(seed: 1)
            let x = Tensor(shape: [2] + model.inputShape)
            for i in 0..<x.count { x[i] = Float(i % 7) / 7 }
            let logits = model.forward(x, mode: .train)
            let g = Tensor(shape: logits.shape)
            for i in 0..<g.count { g[i] = 0.1 }
            var order: [Int] = []
            model.backward(g) { order += $0 }
            XCTAssertEqual(order.sorted(), Array(model.store.parameters.indices), "\(architecture)")
            // Layers finish last to first: the classifier's weight and bias, ..., the stem's weight.
            let n = model.store.parameters.count
            XCTAssertEqual(Array(order.prefix(2)), [n - 2, n - 1], "\(architecture)")
            XCTAssertEqual(order.last, 0, "\(architecture)")
        }
    }

    /// Overlap and blocking give the same bytes, under 2 and 4 ranks, with many small buckets.
    func testOverlapIsBitIdenticalToBlocking() throws {
        try Subprocess.requireFashionMNIST()
        let base = ["train", "--model", "cnn", "--epochs", "1", "--train-subset", "256", "--batch-size", "32",
                    "--test-subset", "100", "--max-steps", "3", "--log-every", "1000", "--report-digests",
                    "--bucket-kb", "16"]
        let cases: [(ranks: Int, flags: [String])] = [
            (2, ["--sam", "sam"]),
            (2, ["--sam", "none"]),
            (2, ["--sam", "sam", "--wd-in-ascent"]),
            (4, ["--sam", "sam", "--m", "2"]),          // 4 micro-shards per rank
            (4, ["--sam", "sam", "--m", "16"]),         // shards of 2 ranks (group averages)
            (4, ["--sam", "asam", "--scope", "global"]),
            (4, ["--sam", "bisam"]),
            (4, ["--sam", "bsam"]),                     // reduced after its passes
            (4, ["--sam", "gsam", "--m", "16"]),        // g_p a group average
            (4, ["--sam", "looksam", "--m", "2", "--looksam-k", "2"]),   // state per micro-shard
            (2, ["--sam", "fsam", "--scope", "global"]),
        ]
        // Every other variant of the registry, with its defaults.
        + VariantRegistry.names.filter { !["none", "sam", "asam", "bisam", "bsam", "gsam", "looksam", "fsam"].contains($0) }
            .map { (2, ["--sam", $0]) }
        for c in cases {
            var digests: [String: [Substring]] = [:]
            for schedule in AllreduceSchedule.allCases {
                let r = try Subprocess.mpirun(c.ranks, base + c.flags + ["--allreduce", schedule.rawValue], timeout: 240)
                XCTAssertEqual(r.status, 0, r.output)
                digests[schedule.rawValue] = r.stdout.split(separator: "\n")
                    .filter { $0.hasPrefix("rank ") && $0.contains("parameter digest") }
                    .map { $0.split(separator: " ").last! }
            }
            let overlap = digests["overlap"] ?? [], blocking = digests["blocking"] ?? []
            XCTAssertEqual(overlap.count, c.ranks, "\(c.flags)")
            XCTAssertEqual(Set(overlap).count, 1, "\(c.ranks) ranks \(c.flags): ranks disagree under overlap: \(overlap)")
            XCTAssertEqual(overlap, blocking, "\(c.ranks) ranks \(c.flags): overlap differs from blocking")
        }
    }
}
