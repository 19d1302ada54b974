import Foundation
import XCTest
@testable import SAMTrain

/// ESAM against the float64 reference of `NormalizationAndSelectionVariantTests`.
extension NormalizationAndSelectionVariantTests {
    /// Seed 9, β = 0.5, γ = 0.5 on 8 examples. The draws choose tensors {0.bias, 1.bias,
    /// 3.weight} at step 0 and {0.weight, 1.bias, 3.weight} at step 1; the sharpest examples
    /// are 3, 4, 6, 7 at step 0 and 0, 3, 4, 6 at step 1 (by the float64 reference). Two
    /// steps equal the reference; the same rule with the other examples, or with every
    /// tensor perturbed, does not.
    func testESAMChoosesTheStatedTensorsAndExamples() throws {
        let (_, _, x, y) = batch()
        let rho = 0.5, delta = 1e-12, beta = 0.5, seed: UInt64 = 9
        let statedTensors: [[Int]] = [[1, 3, 4], [0, 3, 4]]
        let statedExamples: [[Int]] = [[3, 4, 6, 7], [0, 3, 4, 6]]

        var c = SAMConfiguration("esam")
        c.rho = Float(rho)
        let variant = try XCTUnwrap(try c.makeVariant() as? ESAM)
        for t in 0..<2 {
            XCTAssertEqual(Layout.sizes.indices.filter { variant.chooses(tensor: $0, step: t, seed: seed) }, statedTensors[t], "step \(t)'s tensors")
        }
        // The draws depend on the seed and the step only: every rank and shard makes the same.
        XCTAssertNotEqual((0..<6).map { variant.chooses(tensor: $0, step: 0, seed: 8) }, (0..<6).map { variant.chooses(tensor: $0, step: 0, seed: seed) })

        let model = tinyModel()
        let ours = try run(variant, steps: 2, model: model, seed: seed)

        func reference(examples: (Int, [Double]) -> [Int], tensors: (Int) -> [Int]) -> [Double] {
            var w = tinyModel().store.values.array.map(Double.init), buffer: [Double]? = nil
            for t in 0..<2 {
                let g = Self.gradient(w, x, y)
                let chosen = tensors(t)
                let scale = rho / ((Self.norm(g, over: chosen) + delta) * beta)
                var e = [Double](repeating: 0, count: w.count)
                for tensor in chosen { for i in Layout.range(tensor) { e[i] = scale * g[i] } }
                let perturbed = w.indices.map { w[$0] + e[$0] }
                let sharpness = zip(Self.losses(perturbed, x, y), Self.losses(w, x, y)).map { $0 - $1 }
                let selected = examples(t, sharpness)
                let gAdv = Self.gradient(perturbed, selected.map { x[$0] }, selected.map { y[$0] })
                Self.descend(&w, &buffer, gAdv)
            }
            return w
        }
        let sharpest = { (t: Int, s: [Double]) -> [Int] in s.indices.sorted { s[$0] != s[$1] ? s[$0] > s[$1] : $0 < $1 }.prefix(4).sorted() }
        let stated = { (t: Int, s: [Double]) -> [Int] in
            XCTAssertEqual(sharpest(t, s), statedExamples[t], "step \(t)'s sharpest examples")
            return statedExamples[t]
        }
        assertClose(ours, reference(examples: stated, tensors: { statedTensors[$0] }), "esam")
        let others = { (t: Int, s: [Double]) -> [Int] in Array(Set(0..<8).subtracting(statedExamples[t])).sorted() }
        XCTAssertGreaterThan(deviation(ours, reference(examples: others, tensors: { statedTensors[$0] })), 10, "the other examples give the same step")
        XCTAssertGreaterThan(deviation(ours, reference(examples: sharpest, tensors: { _ in Array(0..<6) })), 10, "every tensor perturbed gives the same step")

        // BatchNorm's running statistics come from the clean pass alone, as after a plain
        // forward pass at w in train mode (ESAM makes three forward passes per step).
        let clean = tinyModel()
        let (images, _, _, _) = batch()
        let oneStep = tinyModel()
        _ = try run(variant, steps: 1, model: oneStep, seed: seed)
        _ = clean.forward(images, mode: .train)
        XCTAssertEqual(oneStep.store.buffers.array, clean.store.buffers.array)
    }
}
