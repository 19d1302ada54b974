import XCTest
@testable import SAMTrain

/// A Linear layer's factored one-example gradient against the dense computation.
final class RankOneGradientsTests: XCTestCase {
    /// Two Linear layers (7 → 5 → 3), one example.
    func makeModel() -> (ParameterStore, [Linear]) {
        let store = ParameterStore()
        let layers = [Linear(store: store, name: "0", inputs: 7, outputs: 5), Linear(store: store, name: "1", inputs: 5, outputs: 3)]
        store.seal()
        var rng = SplitMix64(seed: 3)
        for i in 0..<store.count { store.values[i] = rng.uniform(-1, 1) }
        return (store, layers)
    }

    func random(_ shape: [Int], seed: UInt64) -> Tensor {
        var rng = SplitMix64(seed: seed)
        let t = Tensor(shape: shape)
        for i in 0..<t.count { t[i] = rng.uniform(-1, 1) }
        return t
    }

    /// Recording writes u = ∂y and v = x and leaves ∂W's slice alone; the norm counts
    /// ‖u‖²‖v‖²; zeroing spares the factored slices.
    func testRecordingKeepsTheOuterProductsFactors() {
        let (store, layers) = makeModel()
        let x = random([1, 7], seed: 1), g = random([1, 3], seed: 2)
        for i in 0..<store.count { store.gradients[i] = 9 }
        store.rankOne.resetFactors()
        store.zeroGradients(keepingFactored: true)
        let recording = PassMode(training: true, updatesRunningStatistics: true, rankOne: .recording)
        let hidden = layers[0].forward(x, mode: recording)
        _ = layers[1].forward(hidden, mode: recording)
        let gHidden = layers[1].backward(g, inputGradient: true)!
        _ = layers[0].backward(gHidden, inputGradient: false)
        let weight1 = store.parameters[2]
        XCTAssertEqual(store.gradients[weight1.offset], 9, "the factored ∂W slice is not written")
        XCTAssertEqual(store.gradients[store.parameters[3].offset], g[0], "the bias is dense")
        let f = store.rankOne.factor(of: 2)!
        XCTAssertEqual(f.u.array, g.array)
        XCTAssertEqual(f.v.array, hidden.array)

        // The dense gradient, and its norm, from the same pass without factoring.
        let dense = FlatBuffer(count: store.count)
        store.rankOne.materialize(into: dense, parameters: store.parameters)
        for range in store.rankOne.denseRanges { for i in range { dense[i] = store.gradients[i] } }
        XCTAssertEqual(store.rankOne.sumOfSquares(of: store.gradients), dense.sumOfSquares(), accuracy: 1e-6 * dense.sumOfSquares())
        let (reference, referenceLayers) = makeModel()
        reference.zeroGradients()
        let h = referenceLayers[0].forward(x, mode: .train)
        _ = referenceLayers[1].forward(h, mode: .train)
        _ = referenceLayers[0].backward(referenceLayers[1].backward(g, inputGradient: true)!, inputGradient: false)
        for i in 0..<store.count { XCTAssertEqual(dense[i], reference.gradients[i], accuracy: 1e-6, "element \(i)") }
    }

    /// Applying: y and ∂x of W + s·u·vᵀ, with the perturbed buffer's slice never read.
    func testApplyingComputesWithTheOffsetWeights() {
        let (store, layers) = makeModel()
        let base = FlatBuffer(count: store.count)
        base.copy(from: store.values)
        let s: Float = 0.37
        store.rankOne.resetFactors()
        let f = store.rankOne.factor(of: 0)!
        var rng = SplitMix64(seed: 5)
        for i in 0..<f.u.count { f.u[i] = rng.uniform(-1, 1) }
        for i in 0..<f.v.count { f.v[i] = rng.uniform(-1, 1) }
        // The layer's own slice holds garbage: the pass must take W from `base`.
        let slot = store.parameters[0]
        for i in slot.offset..<(slot.offset + slot.count) { store.values[i] = .nan }
        let applying = PassMode(training: true, updatesRunningStatistics: false, rankOne: .applying(scale: s, base: base))
        let x = random([1, 7], seed: 6), g = random([1, 5], seed: 7)
        let y = layers[0].forward(x, mode: applying).array
        let dx = layers[0].backward(g, inputGradient: true)!.array

        // Dense: W' = W + s·u·vᵀ.
        for r in 0..<5 { for c in 0..<7 { store.values[slot.offset + r * 7 + c] = base[slot.offset + r * 7 + c] + s * f.u[r] * f.v[c] } }
        let yDense = layers[0].forward(x, mode: .trainFrozenStatistics).array
        let dxDense = layers[0].backward(g, inputGradient: true)!.array
        for (a, b) in zip(y, yDense) { XCTAssertEqual(a, b, accuracy: 1e-5) }
        for (a, b) in zip(dx, dxDense) { XCTAssertEqual(a, b, accuracy: 1e-5) }
        XCTAssertTrue(zip(y, yDense).allSatisfy { !$0.0.isNaN }, "W's slice of the perturbed buffer was read")
    }
}
