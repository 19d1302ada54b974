import XCTest
@testable import SAMTrain

/// Every layer's backward pass against central finite differences of a scalar loss
/// L = Σ cᵢ·yᵢ (random c), w.r.t. the input and every parameter.
final class FiniteDifferenceTests: XCTestCase {
    /// Checks `layer` on `input`; `mode` is the forward mode used for the loss.
    /// With `holdingPatterns`, the ReLU/max-pool choices of the first forward pass are replayed
    /// by the perturbed ones, so a bump that crosses a kink deep inside a block does not count.
    func check(_ layer: Layer, store: ParameterStore, input: Tensor, mode: PassMode = .trainFrozenStatistics,
               seed: UInt64 = 1, h: Float = 1e-2, tolerance: Double = 2e-3, holdingPatterns: Bool = false,
               file: StaticString = #filePath, line: UInt = #line) {
        store.seal()
        var rng = SplitMix64(seed: seed)
        layer.initialize(using: &rng)
        // Move BN's γ, β (and every parameter) off their special initial values.
        for i in 0..<store.count { store.values[i] += rng.uniform(-0.3, 0.3) }
        let piecewise = holdingPatterns ? [layer].flattened.compactMap { $0 as? PiecewiseLinearLayer } : []
        let patterns = piecewise.map { _ in ActivationPattern() }
        for (l, p) in zip(piecewise, patterns) { l.patternMode = .record(p) }
        let y0 = layer.forward(input, mode: mode)
        for (l, p) in zip(piecewise, patterns) { l.patternMode = .replay(p) }
        let c = (0..<y0.count).map { _ in Double(rng.uniform(-1, 1)) }
        func loss() -> Double {
            let y = layer.forward(input, mode: mode)
            var s = 0.0
            for i in 0..<y.count { s += c[i] * Double(y[i]) }
            return s
        }
        _ = loss()
        let gradOut = Tensor(shape: y0.shape, values: c.map(Float.init))
        store.gradients.zero()
        let dx = layer.backward(gradOut, inputGradient: true)!.array
        let dw = store.gradients.array

        func compare(_ analytic: Float, _ bump: (Float) -> Void, _ what: String) {
            bump(h); let plus = loss()
            bump(-2 * h); let minus = loss()
            bump(h)
            let numeric = (plus - minus) / (2 * Double(h))
            let error = abs(numeric - Double(analytic)) / max(1, abs(numeric))
            XCTAssertLessThan(error, tolerance, "\(type(of: layer)) \(what): analytic \(analytic), numeric \(numeric)", file: file, line: line)
        }
        for i in 0..<input.count { compare(dx[i], { input[i] += $0 }, "∂input[\(i)]") }
        for i in 0..<store.count { compare(dw[i], { store.values[i] += $0 }, "∂param[\(i)]") }
    }

    func randomTensor(_ shape: [Int], seed: UInt64 = 7) -> Tensor {
        var rng = SplitMix64(seed: seed)
        let t = Tensor(shape: shape)
        for i in 0..<t.count { t[i] = rng.uniform(-1, 1) }
        return t
    }

    func testLinear() {
        let store = ParameterStore()
        check(Linear(store: store, name: "fc", inputs: 5, outputs: 4), store: store, input: randomTensor([3, 5]))
    }

    func testConvolutions() {
        for (stride, padding, bias) in [(1, 1, true), (2, 0, false), (2, 1, true), (1, 0, false)] {
            let store = ParameterStore()
            let conv = Conv2d(store: store, name: "c", inChannels: 2, outChannels: 3, kernelSize: 3, stride: stride, padding: padding, bias: bias)
            check(conv, store: store, input: randomTensor([2, 2, 6, 5]))
        }
    }

    func testBatchNormThroughTheBatchStatistics() {
        let store = ParameterStore()
        check(BatchNorm2d(store: store, name: "bn", channels: 3), store: store, input: randomTensor([4, 3, 3, 2]), h: 5e-3)
        let store1d = ParameterStore()
        check(BatchNorm2d(store: store1d, name: "bn", channels: 5), store: store1d, input: randomTensor([6, 5]), h: 5e-3)
    }

    func testReLUMaxPoolFlatten() {
        // Inputs kept away from ReLU's kink and from max-pool ties.
        let x = randomTensor([2, 2, 4, 6])
        for i in 0..<x.count where abs(x[i]) < 0.05 { x[i] = 0.3 }
        let store = ParameterStore()
        check(ReLU(), store: store, input: x)
        check(MaxPool2d(), store: ParameterStore(), input: x)
        check(Flatten(), store: ParameterStore(), input: x)
    }

    func testGlobalAveragePoolAndOptionAShortcut() {
        check(GlobalAveragePool2d(), store: ParameterStore(), input: randomTensor([2, 3, 4, 5]))
        // Odd sizes: ⌈H/2⌉ × ⌈W/2⌉, like a stride-2 convolution with padding 1.
        let shortcut = ShortcutA(padding: 2)
        XCTAssertEqual(shortcut.outputShape(for: [3, 7, 6]), [7, 4, 3])
        check(shortcut, store: ParameterStore(), input: randomTensor([2, 3, 7, 6]))
        let y = shortcut.forward(randomTensor([1, 3, 7, 6]), mode: .train)
        XCTAssertEqual(y.shape, [1, 7, 4, 3])
        XCTAssertTrue((0..<24).allSatisfy { y[$0] == 0 }, "two zero channels in front")
    }

    /// He et al.'s basic block with each of its three shortcuts, and the wide ResNet's
    /// pre-activation block with its identity and projection shortcuts; BatchNorm through
    /// its batch statistics.
    func testResidualBlocks() {
        func conv(_ s: ParameterStore, _ name: String, _ cin: Int, _ cout: Int, _ k: Int, _ stride: Int) -> Conv2d {
            Conv2d(store: s, name: name, inChannels: cin, outChannels: cout, kernelSize: k, stride: stride,
                   padding: k / 2, bias: false)
        }
        func basic(_ s: ParameterStore, _ cin: Int, _ cout: Int, _ stride: Int, _ shortcut: (ParameterStore) -> [Layer]) -> ResidualBlock {
            ResidualBlock(main: [conv(s, "c1", cin, cout, 3, stride), BatchNorm2d(store: s, name: "b1", channels: cout), ReLU(),
                                 conv(s, "c2", cout, cout, 3, 1), BatchNorm2d(store: s, name: "b2", channels: cout)],
                          shortcut: shortcut(s), post: [ReLU()])
        }
        func wide(_ s: ParameterStore, _ cin: Int, _ cout: Int, _ stride: Int) -> ResidualBlock {
            let pre: [Layer] = [BatchNorm2d(store: s, name: "b1", channels: cin), ReLU()]
            let main: [Layer] = [conv(s, "c1", cin, cout, 3, stride), BatchNorm2d(store: s, name: "b2", channels: cout), ReLU(),
                                 conv(s, "c2", cout, cout, 3, 1)]
            if cin == cout && stride == 1 { return ResidualBlock(pre: pre, main: main) }
            return ResidualBlock(pre: pre, main: main, shortcut: [conv(s, "sc", cin, cout, 1, stride)], shortcutInput: .preActivation)
        }
        let cases: [(String, (ParameterStore) -> ResidualBlock, Int)] = [
            ("identity", { basic($0, 3, 3, 1) { _ in [] } }, 3),
            ("option A", { basic($0, 2, 4, 2) { _ in [ShortcutA(padding: 1)] } }, 2),
            ("projection", { basic($0, 2, 4, 2) { s in [conv(s, "sc", 2, 4, 1, 2), BatchNorm2d(store: s, name: "sb", channels: 4)] } }, 2),
            ("pre-activation identity", { wide($0, 3, 3, 1) }, 3),
            ("pre-activation projection", { wide($0, 2, 4, 2) }, 2),
        ]
        for (name, make, channels) in cases {
            let store = ParameterStore()
            let block = make(store)
            store.seal()
            let x = randomTensor([3, channels, 5, 6], seed: 11)
            XCTAssertEqual(block.outputShape(for: [channels, 5, 6]), block.forward(x, mode: .train).shape.dropFirst().map { $0 }, name)
            check(block, store: store, input: x, h: 5e-3, holdingPatterns: true)
        }
    }

    // MARK: The vision transformer's layers (docs/algorithms.md §7)

    func testLayerNormOverTheLastAxis() {
        let store = ParameterStore()
        check(LayerNorm(store: store, name: "ln", features: 6), store: store, input: randomTensor([2, 3, 6]), h: 5e-3)
        let flat = ParameterStore()
        check(LayerNorm(store: flat, name: "ln", features: 5), store: flat, input: randomTensor([4, 5], seed: 9), h: 5e-3)
    }

    func testGELU() {
        let x = randomTensor([2, 3, 5])
        for i in 0..<x.count { x[i] *= 3 }
        check(GELU(), store: ParameterStore(), input: x)
    }

    func testTokenwiseLinear() {
        let store = ParameterStore()
        let linear = Linear(store: store, name: "fc", inputs: 5, outputs: 4, tokenwise: true)
        XCTAssertTrue(store.rankOne.factors.isEmpty, "a token-wise Linear is never factored")
        XCTAssertEqual(linear.outputShape(for: [3, 5]), [3, 4])
        check(linear, store: store, input: randomTensor([2, 3, 5]))
    }

    func testPatchEmbedding() {
        let store = ParameterStore()
        let layer = PatchEmbedding(store: store, name: "patch_embed.proj", channels: 2, width: 3, patch: 2)
        XCTAssertEqual(layer.outputShape(for: [2, 4, 6]), [6, 3])
        check(layer, store: store, input: randomTensor([2, 2, 4, 6]))
    }

    /// The patch embedding is the P×P stride-P convolution: same output as Conv2d with the
    /// same weights, read as tokens.
    func testPatchEmbeddingIsTheStridedConvolution() {
        let store = ParameterStore()
        let layer = PatchEmbedding(store: store, name: "p", channels: 3, width: 5, patch: 2)
        let conv = Conv2d(store: store, name: "c", inChannels: 3, outChannels: 5, kernelSize: 2, stride: 2)
        store.seal()
        var rng = SplitMix64(seed: 3)
        layer.initialize(using: &rng)
        for i in 0..<(5 * 12) { store.value(conv.weightIndex)[i] = store.value(layer.weightIndex)[i] }
        for i in 0..<5 { store.value(conv.biasIndex!)[i] = store.value(layer.biasIndex)[i] }
        let x = randomTensor([2, 3, 4, 6])
        let tokens = layer.forward(x, mode: .eval).array
        let y = conv.forward(x, mode: .eval)   // [2, 5, 2, 3]
        for n in 0..<2 { for c in 0..<5 { for t in 0..<6 {
            XCTAssertEqual(tokens[(n * 6 + t) * 5 + c], y[(n * 5 + c) * 6 + t], accuracy: 1e-5)
        } } }
    }

    func testTokenEmbedding() {
        let store = ParameterStore()
        let layer = TokenEmbedding(store: store, tokens: 3, width: 4)
        XCTAssertEqual(layer.outputShape(for: [3, 4]), [4, 4])
        check(layer, store: store, input: randomTensor([2, 3, 4]))
    }

    func testMultiHeadSelfAttention() {
        let store = ParameterStore()
        let layer = MultiHeadSelfAttention(store: store, name: "attn", width: 8, heads: 2)
        check(layer, store: store, input: randomTensor([2, 5, 8]), h: 5e-3)
        XCTAssertEqual(store.parameters.map(\.name), ["attn.qkv.weight", "attn.qkv.bias", "attn.proj.weight", "attn.proj.bias"])
    }

    func testTransformerBlock() {
        let store = ParameterStore()
        let block = TransformerBlock(store: store, name: "blocks.0", width: 8, heads: 2)
        check(block, store: store, input: randomTensor([2, 5, 8]), h: 5e-3)
    }

    func testClassTokenHead() {
        let store = ParameterStore()
        let head = ClassTokenHead(store: store, width: 6, classes: 3)
        XCTAssertEqual(head.outputShape(for: [4, 6]), [3])
        check(head, store: store, input: randomTensor([2, 4, 6]), h: 5e-3)
    }

    /// A whole tiny ViT (depth 2, d 8, 2 heads, patch 2 on 1×4×4): input and every parameter.
    func testWholeTinyVisionTransformer() {
        let configuration = VisionTransformer.Configuration(width: 8, depth: 2, heads: 2, patch: 2)
        let model = VisionTransformer.build(configuration: configuration, inputShape: [1, 4, 4], classes: 3)
        check(LayerChain(model.layers), store: model.store, input: randomTensor([2, 1, 4, 4]), h: 5e-3)
    }

    func testCrossEntropyGradientAndValue() {
        for smoothing: Float in [0, 0.1] {
            let loss = SoftmaxCrossEntropy(labelSmoothing: smoothing)
            let logits = randomTensor([4, 5], seed: 3)
            let labels: [Int32] = [0, 4, 2, 2]
            let grad = Tensor(shape: [0])
            let value = loss.evaluate(logits: logits, labels: labels, gradient: grad)
            // Direct formula in Double.
            var expected = 0.0
            for r in 0..<4 {
                let row = (0..<5).map { Double(logits[r * 5 + $0]) }
                let lse = log(row.map(exp).reduce(0, +))
                for j in 0..<5 {
                    let target = j == Int(labels[r]) ? 1 - Double(smoothing) : Double(smoothing) / 4
                    expected -= target * (row[j] - lse)
                }
            }
            XCTAssertEqual(value.loss, expected / 4, accuracy: 1e-6)
            let g = grad.array
            for i in 0..<logits.count {
                let h: Float = 1e-2
                logits[i] += h; let plus = loss.evaluate(logits: logits, labels: labels, gradient: Tensor(shape: [0])).loss
                logits[i] -= 2 * h; let minus = loss.evaluate(logits: logits, labels: labels, gradient: Tensor(shape: [0])).loss
                logits[i] += h
                XCTAssertEqual(Double(g[i]), (plus - minus) / Double(2 * h), accuracy: 1e-4)
            }
        }
    }

    /// PyTorch's `label_smoothing=t` (t/K on every class) is samtrain's s = t·(K−1)/K
    /// (docs/algorithms.md §4.1): 0.1 over 5 classes is 0.08 here.
    func testPyTorchsSmoothingIsTheConvertedOne() {
        let logits = randomTensor([4, 5], seed: 7)
        let labels: [Int32] = [1, 3, 0, 4]
        let value = SoftmaxCrossEntropy(labelSmoothing: 0.08).evaluate(logits: logits, labels: labels, gradient: Tensor(shape: [0]))
        var torch = 0.0   // F.cross_entropy(z, y, label_smoothing=0.1): (1 − t)·NLL + t·mean_j(−log p_j)
        for r in 0..<4 {
            let row = (0..<5).map { Double(logits[r * 5 + $0]) }
            let logP = row.map { $0 - log(row.map(exp).reduce(0, +)) }
            torch += 0.9 * -logP[Int(labels[r])] + 0.1 * -logP.reduce(0, +) / 5
        }
        XCTAssertEqual(value.loss, torch / 4, accuracy: 1e-6)
    }

    func testCrossEntropyIsStableForHugeLogits() {
        let loss = SoftmaxCrossEntropy()
        let logits = Tensor(shape: [2, 3], values: [1e4, -1e4, 0, -1e4, 1e4, 1e4])
        let grad = Tensor(shape: [0])
        let v = loss.evaluate(logits: logits, labels: [0, 0], gradient: grad)
        XCTAssertEqual(v.loss, (0 + 2e4 + log(2.0)) / 2, accuracy: 1e-2)
        XCTAssertTrue(grad.array.allSatisfy(\.isFinite))
        XCTAssertEqual(v.correct, 1)
    }
}

/// A model's layers as one layer, for checking a whole model with `check`.
final class LayerChain: LayerContainer {
    let sublayers: [Layer]
    init(_ layers: [Layer]) { sublayers = layers }
    func initialize(using rng: inout SplitMix64) { for layer in sublayers { layer.initialize(using: &rng) } }
    func outputShape(for inputShape: [Int]) -> [Int] { sublayers.outputShape(for: inputShape) }
    func forward(_ input: Tensor, mode: PassMode) -> Tensor { sublayers.forward(input, mode: mode) }
    func backward(_ gradOutput: Tensor, inputGradient: Bool) -> Tensor? {
        sublayers.backward(gradOutput, inputGradient: inputGradient, profile: nil)
    }
}
