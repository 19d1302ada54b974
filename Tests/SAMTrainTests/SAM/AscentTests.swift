import Foundation
import XCTest
@testable import SAMTrain

/// A recorder that keeps nothing: its presence makes a step write ε out (the plain path).
private final class IgnoredRecords: ShardRecorder {
    func record(_ key: String, value: Double) {}
    func record(_ key: String, buffer: FlatBuffer) {}
}

final class AscentTests: XCTestCase {
    /// Six 1×8×8 images and their labels, for steps of the small cnn.
    func sixImages(seed: UInt64) -> (Tensor, [Int32]) {
        var rng = SplitMix64(seed: seed)
        let images = Tensor(shape: [6, 1, 8, 8])
        for i in 0..<images.count { images[i] = rng.uniform(-1, 1) }
        return (images, [0, 1, 2, 2, 1, 0])
    }

    func randomBuffer(_ n: Int, seed: UInt64) -> FlatBuffer {
        var rng = SplitMix64(seed: seed)
        let b = FlatBuffer(count: n)
        for i in 0..<n { b[i] = rng.uniform(-1, 1) }
        return b
    }

    /// ε maximizes ⟨ε, g⟩ on the p-ball: ⟨ε, g⟩ = ρ‖g‖_q and ‖ε‖_p = ρ (1/p + 1/q = 1).
    func testDualNormSolution() {
        let g = randomBuffer(1000, seed: 4)
        let e = FlatBuffer(count: 1000)
        let rho: Float = 0.05
        func norm(_ b: FlatBuffer, _ p: Double) -> Double {
            p.isInfinite ? b.array.map { Double(abs($0)) }.max()! : pow(b.array.reduce(0.0) { $0 + pow(Double(abs($1)), p) }, 1 / p)
        }
        for (norm_, p) in [(AscentNorm.l2, 2.0), (.p(3), 3.0), (.infinity, Double.infinity)] {
            samAscent(gradient: g, rho: rho, norm: norm_, normEps: 0, into: e)
            let q = p.isInfinite ? 1 : p / (p - 1)
            XCTAssertEqual(e.dot(g), Double(rho) * norm(g, q), accuracy: 1e-5 * Double(rho) * norm(g, q), "p = \(p)")
            XCTAssertEqual(norm(e, p), Double(rho), accuracy: 1e-5, "p = \(p)")
        }
        // Any other point of the ball does worse.
        samAscent(gradient: g, rho: rho, norm: .l2, normEps: 0, into: e)
        let other = randomBuffer(1000, seed: 5)
        other.scale(by: rho / Float(other.norm()))
        XCTAssertLessThan(other.dot(g), e.dot(g))
    }

    /// BiSAM's closed-form logit gradient of Q against finite differences, for both bounds.
    func testBiSAMLowerBoundGradient() {
        for (phi, mu, alpha) in [(BiSAM.Phi.log, 1.0, 0.1), (.tanh, 10.0, 0.1), (.log, 3.0, 0.1)] {
            let q = BiSAMLowerBoundLoss(phi: phi, mu: mu, alpha: alpha)
            var rng = SplitMix64(seed: 11)
            let logits = Tensor(shape: [3, 4])
            for i in 0..<12 { logits[i] = rng.uniform(-3, 3) }
            let labels: [Int32] = [1, 3, 0]
            let grad = Tensor(shape: [0])
            let value = q.evaluate(logits: logits, labels: labels, gradient: grad)
            XCTAssertTrue(value.loss.isFinite)
            for i in 0..<12 {
                let h: Float = 1e-2
                logits[i] += h; let plus = q.evaluate(logits: logits, labels: labels, gradient: Tensor(shape: [0])).loss
                logits[i] -= 2 * h; let minus = q.evaluate(logits: logits, labels: labels, gradient: Tensor(shape: [0])).loss
                logits[i] += h
                XCTAssertEqual(Double(grad[i]), (plus - minus) / Double(2 * h), accuracy: 2e-4, "\(phi) logit \(i)")
            }
        }
        // φ(0) = 0: a perfectly tied example has Q = log K.
        let q = BiSAMLowerBoundLoss(phi: .log, mu: 1, alpha: 0.1)
        let v = q.evaluate(logits: Tensor(shape: [1, 5]), labels: [2], gradient: Tensor(shape: [0]))
        XCTAssertEqual(v.loss, log(5), accuracy: 1e-9)
    }

    /// Only the clean pass moves BatchNorm's running statistics: after a SAM step they are
    /// bit-identical to those after the clean pass alone.
    func testBatchNormStatisticsAfterASAMStepEqualTheCleanPassAlone() throws {
        func model() -> Sequential {
            let m = Architecture.cnn.build(inputShape: [1, 8, 8], classes: 3)
            m.initialize(seed: 2)
            return m
        }
        var rng = SplitMix64(seed: 3)
        let images = Tensor(shape: [6, 1, 8, 8])
        for i in 0..<images.count { images[i] = rng.uniform(-1, 1) }
        let labels: [Int32] = [0, 1, 2, 0, 1, 2]
        let world = Communicator.world()
        let context = StepContext(step: 0, learningRate: 0.1, maximumLearningRate: 0.1, minimumLearningRate: 0)
        for variant in [SAM(rho: 0.5) as SAMVariant, BSAM(rho: 0.5, normEps: 1e-12, rhoMinMax: 0.3, rhoMinMin: 0)] {
            let a = model(), b = model()
            let step = SAMStep(model: a, variant: variant, layout: try ShardLayout(scope: .shard(m: nil), globalBatch: 6, worldSize: 1),
                               world: world, group: nil, optimizer: SGD(count: a.store.count, momentum: 0.9, nesterov: false, weightDecay: 0),
                               descentLoss: SoftmaxCrossEntropy())
            step.run(images: images, labels: labels, context: context)
            _ = b.forward(images, mode: .train)
            XCTAssertEqual(a.store.buffers.array.map(\.bitPattern), b.store.buffers.array.map(\.bitPattern), variant.name)
            XCTAssertNotEqual(a.store.buffers.array, model().store.buffers.array, "the clean pass did update them")
        }
    }

    /// SAM's fast path — Linear gradients of one example kept as outer products
    /// (`RankOneGradients`), ε folded into w + scale·g, micro-shard directions added up inside
    /// the backward pass, w restored by exchanging buffers — computes what the plain path
    /// computes (dense gradients; a recorder turns the rest of the plain path on: ε written
    /// out, each shard's gradient summed afterwards), over two steps with six micro-shards of
    /// one example. Equal up to rounding only: the norms are summed in another order, sger
    /// adds x·yᵀ into the direction with a fused multiply-add.
    func testFastMicroShardPathMatchesThePlainPath() throws {
        let (images, labels) = sixImages(seed: 5)
        let world = Communicator.world()
        func train(recorded: Bool) throws -> (weights: [Float], norms: [Double]) {
            let m = Architecture.cnn.build(inputShape: [1, 8, 8], classes: 3)
            m.initialize(seed: 4)
            let step = SAMStep(model: m, variant: SAM(rho: 0.5), layout: try ShardLayout(scope: .shard(m: 1), globalBatch: 6, worldSize: 1),
                               world: world, group: nil, optimizer: SGD(count: m.store.count, momentum: 0.9, nesterov: false, weightDecay: 5e-4),
                               descentLoss: SoftmaxCrossEntropy())
            if recorded {
                step.passes.recorder = IgnoredRecords()
                step.passes.factorsOneExample = false
            }
            step.passes.measuresNorms = true
            var norms: [Double] = []
            for k in 0..<2 {
                let stats = step.run(images: images, labels: labels,
                                     context: StepContext(step: k, learningRate: 0.1, maximumLearningRate: 0.1, minimumLearningRate: 0))
                norms += [stats.gradientNormSum, stats.epsilonNormSum, stats.lossAtPerturbedSum]
            }
            return (m.store.values.array, norms)
        }
        let (fast, fastNorms) = try train(recorded: false), (plain, plainNorms) = try train(recorded: true)
        for (a, b) in zip(fastNorms, plainNorms) { XCTAssertEqual(a, b, accuracy: 1e-5 * abs(b), "‖g‖, ‖ε‖, loss at w + ε") }
        let initial = Architecture.cnn.build(inputShape: [1, 8, 8], classes: 3)
        initial.initialize(seed: 4)
        let moved = zip(plain, initial.store.values.array).map { abs($0 - $1) }.max() ?? 0
        let difference = zip(fast, plain).map { abs($0 - $1) }.max() ?? 0
        XCTAssertGreaterThan(moved, 1e-3, "the steps moved the weights")
        XCTAssertLessThan(difference, 1e-6, "fast and plain paths differ by more than rounding")
    }

    /// The metrics' ‖g‖ and ‖ε‖ of every variant: the fast path takes them from the norms the
    /// ascent computed anyway (`normOfAlong`, the clean pass's ‖g‖); a recorder makes the step
    /// write ε out and measure it. The two agree, and ‖ε‖ is not 0.
    func testLoggedNormsOfEveryVariantMatchTheWrittenOutEpsilon() throws {
        let (images, labels) = sixImages(seed: 8)
        let world = Communicator.world()
        for name in VariantRegistry.names where name != "none" {
            func norms(recorded: Bool) throws -> [Double] {
                let m = Architecture.cnn.build(inputShape: [1, 8, 8], classes: 3)
                m.initialize(seed: 4)
                let step = SAMStep(model: m, variant: try SAMConfiguration(name).makeVariant(),
                                   layout: try ShardLayout(scope: .shard(m: nil), globalBatch: 6, worldSize: 1),
                                   world: world, group: nil, optimizer: SGD(count: m.store.count, momentum: 0.9, nesterov: false, weightDecay: 5e-4),
                                   descentLoss: SoftmaxCrossEntropy())
                if recorded { step.passes.recorder = IgnoredRecords() }
                step.passes.measuresNorms = true
                var norms: [Double] = []
                for k in 0..<2 {
                    let stats = step.run(images: images, labels: labels,
                                         context: StepContext(step: k, learningRate: 0.1, maximumLearningRate: 0.1, minimumLearningRate: 0))
                    norms += [stats.gradientNormSum, stats.epsilonNormSum]
                }
                return norms
            }
            let fast = try norms(recorded: false), written = try norms(recorded: true)
            XCTAssertGreaterThan(fast[1], 0, "\(name): ‖ε‖ of step 0")
            for (a, b) in zip(fast, written) { XCTAssertEqual(a, b, accuracy: 1e-5 * abs(b), "\(name): ‖g‖, ‖ε‖ of steps 0 and 1") }
        }
    }
}
