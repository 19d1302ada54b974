import XCTest
@testable import SAMTrain

final class Conv2dLayerTests: XCTestCase {
    override func tearDown() { Conv2d.targetChunkColumns = 2048 }

    private func makeConv(_ cin: Int, _ cout: Int, k: Int, stride: Int, padding: Int, bias: Bool,
                          seed: UInt64 = 3) -> (Conv2d, ParameterStore) {
        let store = ParameterStore()
        let conv = Conv2d(store: store, name: "conv", inChannels: cin, outChannels: cout,
                          kernelSize: k, stride: stride, padding: padding, bias: bias)
        store.seal()
        var rng = SplitMix64(seed: seed)
        conv.initialize(using: &rng)
        if bias {  // PyTorch's bias init is small; make it visible in the comparison
            for i in 0..<cout { store.value(conv.biasIndex!)[i] = rng.uniform(-1, 1) }
        }
        return (conv, store)
    }

    /// Direct 7-loop convolution, in Double.
    private func naiveConv(_ x: Tensor, _ conv: Conv2d, _ store: ParameterStore) -> [Float] {
        let n = x.shape[0], cin = x.shape[1], h = x.shape[2], w = x.shape[3]
        let k = conv.kernelSize, s = conv.stride, p = conv.padding, cout = conv.outChannels
        let oh = (h + 2 * p - k) / s + 1, ow = (w + 2 * p - k) / s + 1
        let wt = store.value(conv.weightIndex)
        var y = [Float](repeating: 0, count: n * cout * oh * ow)
        for b in 0..<n { for co in 0..<cout { for i in 0..<oh { for j in 0..<ow {
            var acc = Double(conv.biasIndex.map { store.value($0)[co] } ?? 0)
            for ci in 0..<cin { for ky in 0..<k { for kx in 0..<k {
                let iy = i * s - p + ky, ix = j * s - p + kx
                guard iy >= 0, iy < h, ix >= 0, ix < w else { continue }
                acc += Double(wt[((co * cin + ci) * k + ky) * k + kx]) * Double(x[((b * cin + ci) * h + iy) * w + ix])
            } } }
            y[((b * cout + co) * oh + i) * ow + j] = Float(acc)
        } } } }
        return y
    }

    func testForwardMatchesDirectConvolution() {
        // (cin, cout, k, stride, padding, bias, h, w, n, chunk columns)
        let cases: [(Int, Int, Int, Int, Int, Bool, Int, Int, Int, Int)] = [
            (1, 4, 3, 1, 1, false, 8, 8, 2, 4096),
            (3, 5, 3, 1, 1, true, 7, 5, 3, 4096),
            (3, 5, 3, 2, 0, true, 9, 6, 3, 4096),
            (2, 3, 3, 2, 1, true, 8, 7, 5, 40),     // several chunks of 2 images + remainder
            (4, 2, 1, 1, 0, true, 5, 4, 2, 4096),
            (2, 3, 5, 1, 2, false, 6, 6, 2, 4096),
        ]
        for (cin, cout, k, s, p, bias, h, w, n, chunk) in cases {
            Conv2d.targetChunkColumns = chunk
            let (conv, store) = makeConv(cin, cout, k: k, stride: s, padding: p, bias: bias)
            var rng = SplitMix64(seed: 11)
            let x = GradientCheck.randomTensor([n, cin, h, w], &rng)
            let y = conv(x)
            let expected = naiveConv(x, conv, store)
            XCTAssertEqual(y.shape, [n, cout] + conv.outputShape(for: [cin, h, w]).dropFirst())
            XCTAssertEqual(y.count, expected.count)
            let maxError = zip(y.array, expected).map { abs($0 - $1) }.max()!
            XCTAssertLessThan(maxError, 1e-5, "case \(cin) \(cout) k\(k) s\(s) p\(p) \(h)x\(w)")
        }
    }

    func testGradients() {
        let cases: [(Int, Int, Int, Int, Int, Bool, Int, Int, Int, Int)] = [
            (2, 3, 3, 1, 1, true, 6, 5, 3, 4096),
            (2, 3, 3, 2, 0, true, 7, 6, 2, 4096),
            (3, 2, 3, 2, 1, false, 6, 7, 3, 4096),
            (2, 3, 3, 1, 1, true, 5, 4, 5, 40),     // chunked backward
        ]
        for (cin, cout, k, s, p, bias, h, w, n, chunk) in cases {
            Conv2d.targetChunkColumns = chunk
            let (conv, store) = makeConv(cin, cout, k: k, stride: s, padding: p, bias: bias)
            var rng = SplitMix64(seed: 5)
            let x = GradientCheck.randomTensor([n, cin, h, w], &rng)
            GradientCheck().check(conv, store: store, input: x)
        }
    }

    func testBackwardAccumulatesAndSkipsInputGradient() {
        let (conv, store) = makeConv(2, 3, k: 3, stride: 1, padding: 1, bias: true)
        var rng = SplitMix64(seed: 9)
        let x = GradientCheck.randomTensor([2, 2, 5, 5], &rng)
        let g = GradientCheck.randomTensor([2, 3, 5, 5], &rng)
        _ = conv(x)
        store.gradients.zero()
        XCTAssertNil(conv.backward(g, inputGradient: false))
        let once = store.gradients.array
        _ = conv.backward(g, inputGradient: true)
        for (a, b) in zip(store.gradients.array, once) { XCTAssertEqual(a, 2 * b, accuracy: 1e-4 * max(1, abs(a))) }
    }

    func testInitializationBoundsAndOrder() {
        let (conv, store) = makeConv(4, 6, k: 3, stride: 1, padding: 1, bias: false, seed: 21)
        let bound = 1 / Float(36).squareRoot()
        var rng = SplitMix64(seed: 21)
        let w = store.value(conv.weightIndex)
        for i in 0..<(6 * 36) {
            XCTAssertEqual(w[i], rng.uniform(-bound, bound))
            XCTAssertLessThanOrEqual(abs(w[i]), bound)
        }
        let s2 = ParameterStore()
        let c2 = Conv2d(store: s2, name: "c", inChannels: 2, outChannels: 3, kernelSize: 3, padding: 1)
        s2.seal()
        var r2 = SplitMix64(seed: 4)
        c2.initialize(using: &r2)
        let b2 = 1 / Float(18).squareRoot()
        XCTAssertEqual(s2.parameters.map(\.name), ["c.weight", "c.bias"])
        XCTAssertEqual(s2.parameters[0].shape, [3, 2, 3, 3])
        XCTAssertTrue(s2.values.array.allSatisfy { abs($0) <= b2 })
        var r3 = SplitMix64(seed: 4)
        for _ in 0..<54 { _ = r3.uniform(-b2, b2) }
        XCTAssertEqual(s2.value(c2.biasIndex!)[0], r3.uniform(-b2, b2))
    }
}
