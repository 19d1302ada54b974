import XCTest
@testable import SAMTrain

/// `samtrain bench`'s profile: per layer type, and per shape of the convolutions and linear
/// layers with the FLOPs each pass did.
final class BenchmarkTests: XCTestCase {
    func run(_ variant: String, batch: Int, shapesAlone: Int? = nil) throws -> Benchmark.Result {
        let step = StepSettings(sam: SAMConfiguration(variant), optimizer: .sgd(momentum: 0.9, nesterov: false, weightDecay: 5e-4),
                                globalBatch: batch)
        var bench = Benchmark(model: ModelConfiguration(.cnn), step: step, learningRate: 0.05, steps: 2, warmup: 1, threads: 1)
        bench.shapesAloneExamples = shapesAlone
        return try bench.run(world: Communicator.world())
    }

    func testShapesCountTheirFLOPsAndTime() throws {
        let batch = 4
        let sgd = try run("none", batch: batch)
        // The cnn of SPEC §7 on 1×28×28: four convolutions and two linear layers.
        let conv = { (cin: Int, cout: Int, side: Int) in 2.0 * Double(cout * cin * 9 * side * side) }
        let expected: [String: Double] = [
            "Conv2d 3×3/1 1→32 on 28×28": conv(1, 32, 28), "Conv2d 3×3/1 32→32 on 28×28": conv(32, 32, 28),
            "Conv2d 3×3/1 32→64 on 14×14": conv(32, 64, 14), "Conv2d 3×3/1 64→64 on 14×14": conv(64, 64, 14),
            "Linear 3136→256": 2.0 * 3136 * 256, "Linear 256→10": 2.0 * 256 * 10,
        ]
        XCTAssertEqual(Set(sgd.shapeSeconds.keys), Set(expected.keys))
        XCTAssertNil(sgd.shapeAloneSeconds, "timed alone only when asked")
        for (name, perExample) in expected {
            let t = try XCTUnwrap(sgd.shapeSeconds[name])
            XCTAssertEqual(t.forwardFLOPs, perExample * Double(batch), name)
            // The first layer's backward computes ∂W only; the others ∂W and ∂x.
            XCTAssertEqual(t.backwardFLOPs, perExample * Double(batch) * (name.contains("1→32") ? 1 : 2), name)
            XCTAssertGreaterThan(t.forward, 0, name)
            XCTAssertGreaterThan(t.backward, 0, name)
        }
        // Together they are the model's FLOPs, and their time the layer types' time.
        XCTAssertEqual(sgd.shapeSeconds.values.reduce(0) { $0 + $1.forwardFLOPs }, sgd.forwardFLOPsPerImage * Double(batch),
                       accuracy: 1)
        let typeSeconds = ["Conv2d", "Linear"].map { sgd.layerSeconds[$0]!.forward + sgd.layerSeconds[$0]!.backward }.reduce(0, +)
        let shapeSeconds = sgd.shapeSeconds.values.reduce(0) { $0 + $1.forward + $1.backward }
        XCTAssertEqual(shapeSeconds, typeSeconds, accuracy: 1e-9 + 1e-9 * typeSeconds)
        // SAM runs every layer twice per step.
        let sam = try run("sam", batch: batch)
        for (name, t) in sgd.shapeSeconds {
            XCTAssertEqual(sam.shapeSeconds[name]?.forwardFLOPs, 2 * t.forwardFLOPs, name)
            XCTAssertEqual(sam.shapeSeconds[name]?.backwardFLOPs, 2 * t.backwardFLOPs, name)
        }
    }

    /// `bench --shapes-alone N`: every shape's layer once more on its own, N examples per call,
    /// with the FLOPs of their forward and of their backward (∂W and ∂x).
    func testShapesAloneTimeEveryShapeOnItsOwn() throws {
        let r = try run("none", batch: 4, shapesAlone: 2)
        let alone = try XCTUnwrap(r.shapeAloneSeconds)
        XCTAssertEqual(Set(alone.keys), Set(r.shapeSeconds.keys))
        for (name, t) in alone {
            let inModel = try XCTUnwrap(r.shapeSeconds[name])
            XCTAssertEqual(t.forwardFLOPs, inModel.forwardFLOPs / 2, name)
            XCTAssertEqual(t.backwardFLOPs, 2 * t.forwardFLOPs, name)
            XCTAssertGreaterThan(t.forward, 0, name)
            XCTAssertGreaterThan(t.backward, 0, name)
            XCTAssertLessThan(t.forward, 1, name)
        }
        try Subprocess.expectFailure(["bench", "--shapes-alone", "0"], naming: ["--shapes-alone", "must be positive"])
    }
}
