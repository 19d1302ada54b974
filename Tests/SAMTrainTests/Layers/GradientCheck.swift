import XCTest
@testable import SAMTrain

/// Central finite-difference checks of a layer's backward pass, w.r.t. its input and its
/// parameters, through the scalar loss L = Σ cᵢ·yᵢ with random c (evaluated in Double).
struct GradientCheck {
    var h: Float = 1e-2
    /// Allowed ‖analytic − numeric‖ / ‖analytic‖ over the checked entries.
    var relativeTolerance: Double = 1e-2
    /// At most this many entries of each tensor are checked (chosen at random).
    var samples = 64
    var mode: PassMode = .trainFrozenStatistics

    static func randomTensor(_ shape: [Int], _ rng: inout SplitMix64, scale: Float = 1) -> Tensor {
        let t = Tensor(shape: shape)
        for i in 0..<t.count { t[i] = rng.uniform(-scale, scale) }
        return t
    }

    static func loss(_ y: Tensor, _ c: Tensor) -> Double {
        var s = 0.0
        for i in 0..<y.count { s += Double(c[i]) * Double(y[i]) }
        return s
    }

    /// Returns the relative errors (input, parameters) so a test can also assert failure.
    @discardableResult
    func check(_ layer: Layer, store: ParameterStore, input: Tensor, seed: UInt64 = 1,
               file: StaticString = #filePath, line: UInt = #line, expectPass: Bool = true) -> (Double, Double) {
        var rng = SplitMix64(seed: seed)
        let y0 = layer.forward(input, mode: mode)
        let c = Self.randomTensor(y0.shape, &rng)
        store.gradients.zero()
        let analyticInput = layer.backward(c, inputGradient: true)!.array
        let analyticParameters = store.gradients.array

        func lossAt() -> Double { Self.loss(layer.forward(input, mode: mode), c) }
        func numeric(_ p: UnsafeMutablePointer<Float>, _ i: Int) -> Double {
            let old = p[i]
            p[i] = old + h
            let plus = lossAt()
            p[i] = old - h
            let minus = lossAt()
            p[i] = old
            return (plus - minus) / (2 * Double(h))
        }
        func indices(_ count: Int) -> [Int] {
            count <= samples ? Array(0..<count) : (0..<samples).map { _ in rng.nextInt(below: count) }
        }
        func relativeError(_ pairs: [(Double, Double)]) -> Double {
            var diff = 0.0, norm = 0.0
            for (a, n) in pairs { diff += (a - n) * (a - n); norm += max(a * a, n * n) }
            return norm == 0 ? diff.squareRoot() : (diff / norm).squareRoot()
        }

        let inputPairs = indices(input.count).map { (Double(analyticInput[$0]), numeric(input.data, $0)) }
        let inputError = relativeError(inputPairs)
        var parameterPairs: [(Double, Double)] = []
        for slot in store.parameters {
            var slotPairs: [(Double, Double)] = []
            for j in indices(slot.count) {
                slotPairs.append((Double(analyticParameters[slot.offset + j]),
                                  numeric(store.values.data, slot.offset + j)))
            }
            let e = relativeError(slotPairs)
            if expectPass {
                XCTAssertLessThan(e, relativeTolerance, "gradient of \(slot.name)", file: file, line: line)
            }
            parameterPairs += slotPairs
        }
        let parameterError = parameterPairs.isEmpty ? 0 : relativeError(parameterPairs)
        if expectPass {
            XCTAssertLessThan(inputError, relativeTolerance, "input gradient", file: file, line: line)
        }
        return (inputError, parameterError)
    }
}
