import Foundation
import XCTest
@testable import SAMTrain

/// SAM-ON and ESAM, which the vector files cannot express (no normalization layer in their
/// model; random choices): each against an independent float64 reference of its rule on a
/// tiny model with BatchNorm — Linear(4→3) → BatchNorm(3) → ReLU → Linear(3→3) — whose
/// gradients are central differences of a float64 forward pass (no samtrain code).
final class NormalizationAndSelectionVariantTests: XCTestCase {
    static let examples = 8, features = 4, width = 3, classes = 3
    static let lr = 0.1, momentum = 0.9, weightDecay = 5e-4, bnEpsilon = 1e-5

    // MARK: the float64 reference

    /// The parameter vector in samtrain's order: 0.weight [3×4], 0.bias, 1.weight (γ),
    /// 1.bias (β), 3.weight [3×3], 3.bias.
    struct Layout {
        static let sizes = [width * features, width, width, width, classes * width, classes]
        static var offsets: [Int] { sizes.indices.map { sizes[..<$0].reduce(0, +) } }
        static let normalization: Set<Int> = [2, 3]
        static func range(_ tensor: Int) -> Range<Int> { offsets[tensor]..<(offsets[tensor] + sizes[tensor]) }
    }

    /// Each example's cross-entropy with BatchNorm's statistics taken over `x`'s examples.
    static func losses(_ w: [Double], _ x: [[Double]], _ y: [Int]) -> [Double] {
        let o = Layout.offsets
        let h = x.map { row in (0..<width).map { j in w[o[1] + j] + (0..<features).reduce(0.0) { $0 + w[o[0] + j * features + $1] * row[$1] } } }
        let n = Double(h.count)
        var normalized = h
        for j in 0..<width {
            let mean = h.reduce(0.0) { $0 + $1[j] } / n
            let variance = h.reduce(0.0) { $0 + ($1[j] - mean) * ($1[j] - mean) } / n
            for i in h.indices { normalized[i][j] = max(0, w[o[2] + j] * (h[i][j] - mean) / (variance + bnEpsilon).squareRoot() + w[o[3] + j]) }
        }
        return normalized.indices.map { i in
            let z = (0..<classes).map { k in w[o[5] + k] + (0..<width).reduce(0.0) { $0 + w[o[4] + k * width + $1] * normalized[i][$1] } }
            let top = z.max()!
            let lse = top + log(z.reduce(0.0) { $0 + exp($1 - top) })
            return lse - z[y[i]]
        }
    }

    static func meanLoss(_ w: [Double], _ x: [[Double]], _ y: [Int]) -> Double {
        let l = losses(w, x, y)
        return l.reduce(0, +) / Double(l.count)
    }

    /// ∇ of the mean loss by central differences.
    static func gradient(_ w: [Double], _ x: [[Double]], _ y: [Int]) -> [Double] {
        let h = 1e-6
        return w.indices.map { i in
            var up = w, down = w
            up[i] += h
            down[i] -= h
            return (meanLoss(up, x, y) - meanLoss(down, x, y)) / (2 * h)
        }
    }

    /// SGD with momentum and coupled decay (PyTorch semantics), one step.
    static func descend(_ w: inout [Double], _ buffer: inout [Double]?, _ direction: [Double]) {
        let d = w.indices.map { direction[$0] + weightDecay * w[$0] }
        let b = buffer.map { old in w.indices.map { momentum * old[$0] + d[$0] } } ?? d
        buffer = b
        for i in w.indices { w[i] -= lr * b[i] }
    }

    static func norm(_ v: [Double], over tensors: [Int]) -> Double {
        tensors.flatMap { Array(Layout.range($0)) }.reduce(0.0) { $0 + v[$1] * v[$1] }.squareRoot()
    }

    // MARK: samtrain's side

    func tinyModel() -> Sequential {
        let store = ParameterStore()
        let layers: [Layer] = [
            Linear(store: store, name: "0", inputs: Self.features, outputs: Self.width),
            BatchNorm2d(store: store, name: "1", channels: Self.width),
            ReLU(),
            Linear(store: store, name: "3", inputs: Self.width, outputs: Self.classes),
        ]
        let model = Sequential(store: store, layers: layers, inputShape: [Self.features], classes: Self.classes)
        model.initialize(seed: 11)
        // γ and β away from 1 and 0, so that their gradients and ε are not special.
        var rng = SplitMix64(seed: 12)
        for t in Layout.normalization.sorted() { for i in Layout.range(t) { store.values[i] += rng.uniform(-0.3, 0.3) } }
        return model
    }

    func batch() -> (Tensor, [Int32], [[Double]], [Int]) {
        let x = (0..<Self.examples).map { n in (0..<Self.features).map { k in sin(0.7 * Double(n) + 1.3 * Double(k)) + 0.2 * Double(k) } }
        let y = (0..<Self.examples).map { ($0 * 5 + 1) % Self.classes }
        let images = Tensor(shape: [Self.examples, Self.features])
        for n in 0..<Self.examples { for k in 0..<Self.features { images[n * Self.features + k] = Float(x[n][k]) } }
        return (images, y.map(Int32.init), x.map { $0.map { Double(Float($0)) } }, y)
    }

    func run(_ variant: SAMVariant, steps: Int, model: Sequential, seed: UInt64 = 0) throws -> [Double] {
        let (images, labels, _, _) = batch()
        let step = SAMStep(model: model, variant: variant,
                           layout: try ShardLayout(scope: .shard(m: nil), globalBatch: Self.examples, worldSize: 1),
                           world: Communicator.world(), group: nil,
                           optimizer: SGD(count: model.store.count, momentum: Float(Self.momentum), nesterov: false, weightDecay: Float(Self.weightDecay)),
                           descentLoss: SoftmaxCrossEntropy())
        for t in 0..<steps {
            step.run(images: images, labels: labels,
                     context: StepContext(step: t, learningRate: Float(Self.lr), maximumLearningRate: Float(Self.lr), minimumLearningRate: Float(Self.lr), seed: seed))
        }
        return model.store.values.array.map(Double.init)
    }

    func assertClose(_ a: [Double], _ b: [Double], _ what: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(a.count, b.count, what, file: file, line: line)
        let worst = zip(a, b).map { abs($0 - $1) / (2e-6 + 2e-5 * abs($1)) }.max() ?? .infinity
        XCTAssertLessThanOrEqual(worst, 1, "\(what): worst deviation \(worst) of the tolerance", file: file, line: line)
    }

    func deviation(_ a: [Double], _ b: [Double]) -> Double {
        zip(a, b).map { abs($0 - $1) / (2e-6 + 2e-5 * abs($1)) }.max() ?? .infinity
    }

    // MARK: SAM-ON

    /// SAM-ON over SAM (p = 2) and over ASAM (weights scope): ε lives on γ and β only, with
    /// the norm over those tensors; three steps equal the float64 reference, and plain SAM
    /// (ε on every tensor) does not.
    func testSAMONPerturbsOnlyTheNormalizationLayers() throws {
        let (_, _, x, y) = batch()
        let rho = 0.4, delta = 1e-12, eta = 0.01
        for base in [SAMON.Base.sam, .asam] {
            var c = SAMConfiguration("samon")
            c.rho = Float(rho)
            c.variants.update(SAMON.Options.self) { $0.samonBase = base }
            let ours = try run(try c.makeVariant(), steps: 3, model: tinyModel())

            func reference(normalizationOnly: Bool) -> [Double] {
                var w = tinyModel().store.values.array.map(Double.init), buffer: [Double]? = nil
                let tensors = normalizationOnly ? Array(Layout.normalization).sorted() : Array(Layout.sizes.indices)
                for _ in 0..<3 {
                    let g = Self.gradient(w, x, y)
                    var e = [Double](repeating: 0, count: w.count)
                    // ASAM weights scope: T = |w| + η on weights and γ, 1 on biases and β.
                    let scaled: Set<Int> = base == .asam ? [0, 2, 4] : []
                    func t(_ tensor: Int, _ i: Int) -> Double { scaled.contains(tensor) ? abs(w[i]) + eta : 1 }
                    var sum = 0.0
                    for tensor in tensors { for i in Layout.range(tensor) { sum += pow(t(tensor, i) * g[i], 2) } }
                    let eps = base == .asam ? 1e-16 : delta
                    for tensor in tensors { for i in Layout.range(tensor) { e[i] = rho * t(tensor, i) * t(tensor, i) * g[i] / (sum.squareRoot() + eps) } }
                    let gAdv = Self.gradient(w.indices.map { w[$0] + e[$0] }, x, y)
                    Self.descend(&w, &buffer, gAdv)
                }
                return w
            }
            assertClose(ours, reference(normalizationOnly: true), "samon over \(base)")
            XCTAssertGreaterThan(deviation(ours, reference(normalizationOnly: false)), 10, "samon over \(base) is indistinguishable from perturbing every tensor")
        }
    }
}
