import XCTest
@testable import SAMTrain

final class BatchNorm2dLayerTests: XCTestCase {
    private func makeBN(_ c: Int, seed: UInt64 = 1) -> (BatchNorm2d, ParameterStore) {
        let store = ParameterStore()
        let bn = BatchNorm2d(store: store, name: "bn", channels: c)
        store.seal()
        var rng = SplitMix64(seed: seed)
        bn.initialize(using: &rng)
        // non-trivial γ, β and running statistics
        for i in 0..<c {
            store.value(bn.weightIndex)[i] = rng.uniform(0.5, 1.5)
            store.value(bn.biasIndex)[i] = rng.uniform(-0.5, 0.5)
            store.buffer(bn.runningMeanIndex)[i] = rng.uniform(-0.5, 0.5)
            store.buffer(bn.runningVarianceIndex)[i] = rng.uniform(0.5, 2)
        }
        return (bn, store)
    }

    /// BatchNorm → ReLU fused (the BatchNorm clamps and masks) equals the two layers apart
    /// bit for bit: outputs, input gradients and γ/β gradients, in batch and running-statistics
    /// modes, and while recording and replaying an activation pattern. Whole models build
    /// fused: the cnn's BatchNorms own their ReLUs.
    func testFusedReLUIsBitIdenticalToTheSeparateLayers() {
        var rng = SplitMix64(seed: 9)
        let x = GradientCheck.randomTensor([4, 3, 5, 5], &rng, scale: 2)
        let dy = GradientCheck.randomTensor([4, 3, 5, 5], &rng, scale: 1)
        func run(fused: Bool, mode: PassMode, pattern: ActivationPattern?, replay: Bool) -> [[Float]] {
            let (bn, store) = makeBN(3)
            let relu = ReLU()
            if fused { fuseNormalizationWithActivation([bn, relu]) }
            XCTAssertEqual(bn.fusedActivation === relu, fused)
            if let pattern { relu.patternMode = replay ? .replay(pattern) : .record(pattern) }
            let y = relu.forward(bn.forward(x, mode: mode), mode: mode).array
            store.gradients.zero()
            let dx = bn.backward(relu.backward(dy, inputGradient: true)!, inputGradient: true)!.array
            return [y, dx, store.gradients.array]
        }
        for mode in [PassMode.train, .trainFrozenStatistics, .eval] {
            XCTAssertEqual(run(fused: true, mode: mode, pattern: nil, replay: false), run(fused: false, mode: mode, pattern: nil, replay: false))
            let recorded = ActivationPattern(), recordedApart = ActivationPattern()
            XCTAssertEqual(run(fused: true, mode: mode, pattern: recorded, replay: false), run(fused: false, mode: mode, pattern: recordedApart, replay: false))
            XCTAssertEqual(recorded.passes, recordedApart.passes)
            // Replay a pattern that differs from the live one: the BatchNorm must not clamp.
            let other = ActivationPattern()
            other.passes = recorded.passes.enumerated().map { $0.offset % 3 == 0 ? 1 - $0.element : $0.element }
            XCTAssertEqual(run(fused: true, mode: mode, pattern: other, replay: true), run(fused: false, mode: mode, pattern: other, replay: true))
        }
        let cnn = Architecture.cnn.build()
        let norms = cnn.layers.compactMap { $0 as? BatchNorm2d }
        XCTAssertEqual(norms.count, 4)
        XCTAssertTrue(norms.allSatisfy { $0.fusedActivation != nil })
    }

    func testRegistrationAndInitialization() {
        let store = ParameterStore()
        let bn = BatchNorm2d(store: store, name: "bn1", channels: 3)
        store.seal()
        XCTAssertEqual(store.parameters.map(\.name), ["bn1.weight", "bn1.bias"])
        XCTAssertEqual(store.parameters.map(\.role), [.normWeight, .normBias])
        XCTAssertEqual(store.bufferSlots.map(\.name), ["bn1.running_mean", "bn1.running_var"])
        store.values.copy(from: [7, 7, 7, 7, 7, 7])
        var rng = SplitMix64(seed: 1)
        bn.initialize(using: &rng)
        XCTAssertEqual(store.values.array, [1, 1, 1, 0, 0, 0])
        XCTAssertEqual(store.buffers.array, [0, 0, 0, 1, 1, 1])
        XCTAssertEqual(rng.state, SplitMix64(seed: 1).state, "BatchNorm draws no random numbers")
    }

    func testTrainModeGradients4D() {
        let (bn, store) = makeBN(3)
        var rng = SplitMix64(seed: 2)
        let x = GradientCheck.randomTensor([4, 3, 3, 5], &rng, scale: 2)
        GradientCheck(h: 1e-2, mode: .trainFrozenStatistics).check(bn, store: store, input: x)
    }

    func testTrainModeGradients2D() {
        let (bn, store) = makeBN(4)
        var rng = SplitMix64(seed: 3)
        let x = GradientCheck.randomTensor([6, 4], &rng, scale: 2)
        GradientCheck(h: 1e-2, mode: .trainFrozenStatistics).check(bn, store: store, input: x)
    }

    func testEvalModeForwardAndGradients() {
        let (bn, store) = makeBN(2)
        var rng = SplitMix64(seed: 4)
        let x = GradientCheck.randomTensor([3, 2, 2, 3], &rng)
        let y = bn(x, mode: .eval)
        for i in 0..<x.count {
            let ch = (i / 6) % 2
            let expected = (Double(x[i]) - Double(store.buffer(bn.runningMeanIndex)[ch]))
                / (Double(store.buffer(bn.runningVarianceIndex)[ch]) + 1e-5).squareRoot()
                * Double(store.value(bn.weightIndex)[ch]) + Double(store.value(bn.biasIndex)[ch])
            XCTAssertEqual(Double(y[i]), expected, accuracy: 1e-5)
        }
        let before = store.buffers.array
        GradientCheck(mode: .eval).check(bn, store: store, input: x)
        XCTAssertEqual(store.buffers.array, before)
    }

    func testTrainForwardNormalizesWithBiasedVariance() {
        let (bn, store) = makeBN(2)
        var rng = SplitMix64(seed: 5)
        let x = GradientCheck.randomTensor([3, 2, 2, 2], &rng)
        let y = bn(x, mode: .train)
        for ch in 0..<2 {
            let idx = (0..<3).flatMap { b in (0..<4).map { (b * 2 + ch) * 4 + $0 } }
            let v = idx.map { Double(x[$0]) }
            let mean = v.reduce(0, +) / 12
            let varB = v.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / 12
            for i in idx {
                let e = (Double(x[i]) - mean) / (varB + 1e-5).squareRoot()
                    * Double(store.value(bn.weightIndex)[ch]) + Double(store.value(bn.biasIndex)[ch])
                XCTAssertEqual(Double(y[i]), e, accuracy: 1e-5)
            }
        }
    }

    func testRunningStatisticsAfterOneStepUseUnbiasedVariance() {
        let store = ParameterStore()
        let bn = BatchNorm2d(store: store, name: "bn", channels: 1)
        store.seal()
        var rng = SplitMix64(seed: 0)
        bn.initialize(using: &rng)
        // one channel, values 1, 2, 3, 6: mean 3, unbiased variance (4+1+0+9)/3 = 14/3
        _ = bn(Tensor(shape: [2, 1, 1, 2], values: [1, 2, 3, 6]), mode: .train)
        XCTAssertEqual(store.buffer(bn.runningMeanIndex)[0], 0.9 * 0 + 0.1 * 3, accuracy: 1e-7)
        XCTAssertEqual(store.buffer(bn.runningVarianceIndex)[0], 0.9 * 1 + 0.1 * 14 / 3, accuracy: 1e-6)
        _ = bn(Tensor(shape: [2, 1, 1, 2], values: [1, 2, 3, 6]), mode: .train)
        XCTAssertEqual(store.buffer(bn.runningMeanIndex)[0], 0.9 * 0.3 + 0.1 * 3, accuracy: 1e-6)
    }

    func testFrozenStatisticsLeaveRunningStatsBitIdentical() {
        let (bn, store) = makeBN(3)
        var rng = SplitMix64(seed: 6)
        let x = GradientCheck.randomTensor([4, 3, 2, 2], &rng)
        let before = store.buffers.array.map(\.bitPattern)
        let yFrozen = bn(x, mode: .trainFrozenStatistics).array
        _ = bn.backward(x, inputGradient: true)
        XCTAssertEqual(store.buffers.array.map(\.bitPattern), before)
        // same output as the updating train mode, which does change the statistics
        XCTAssertEqual(bn(x, mode: .train).array, yFrozen)
        XCTAssertNotEqual(store.buffers.array.map(\.bitPattern), before)
    }

    func testLargeOffsetStatistics() {
        // mean 1000, spread 1e-2: a one-pass E[x²] − E[x]² in float would lose it all
        let (bn, store) = makeBN(1)
        store.value(bn.weightIndex)[0] = 1
        store.value(bn.biasIndex)[0] = 0
        let x = Tensor(shape: [64, 1])
        for i in 0..<64 { x[i] = 1000 + (i % 2 == 0 ? 0.01 : -0.01) }
        let y = bn(x, mode: .trainFrozenStatistics)
        // variance 1e-4 plus eps 1e-5: normalized values ±0.01/√1.1e-4
        XCTAssertEqual(y[0], Float(0.01 / 1.1e-4.squareRoot()), accuracy: 2e-2)
        XCTAssertEqual(y[1], -Float(0.01 / 1.1e-4.squareRoot()), accuracy: 2e-2)
    }
}
