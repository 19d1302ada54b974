import XCTest
@testable import SAMTrain

final class LayerBehaviourTests: XCTestCase {
    func testConvMatchesDirectConvolution() {
        let store = ParameterStore()
        let conv = Conv2d(store: store, name: "c", inChannels: 2, outChannels: 3, kernelSize: 3, stride: 2, padding: 1, bias: true)
        store.seal()
        var rng = SplitMix64(seed: 5)
        conv.initialize(using: &rng)
        let x = Tensor(shape: [2, 2, 7, 6])
        for i in 0..<x.count { x[i] = rng.uniform(-1, 1) }
        let y = conv.forward(x, mode: .train)
        XCTAssertEqual(y.shape, [2, 3, 4, 3])
        let w = store.value(0), b = store.value(1)
        for n in 0..<2 { for o in 0..<3 { for oy in 0..<4 { for ox in 0..<3 {
            var s = Double(b[o])
            for c in 0..<2 { for ky in 0..<3 { for kx in 0..<3 {
                let iy = oy * 2 - 1 + ky, ix = ox * 2 - 1 + kx
                if iy >= 0 && iy < 7 && ix >= 0 && ix < 6 {
                    s += Double(w[((o * 2 + c) * 3 + ky) * 3 + kx]) * Double(x[((n * 2 + c) * 7 + iy) * 6 + ix])
                }
            } } }
            XCTAssertEqual(Double(y[((n * 3 + o) * 4 + oy) * 3 + ox]), s, accuracy: 1e-5)
        } } } }
    }

    func testBatchNormRunningStatisticsFollowPyTorch() {
        let store = ParameterStore()
        let bn = BatchNorm2d(store: store, name: "bn", channels: 1)
        store.seal()
        var rng = SplitMix64(seed: 1)
        bn.initialize(using: &rng)
        let x = Tensor(shape: [2, 1, 1, 2], values: [1, 2, 3, 6])   // mean 3, biased var 3.5, unbiased 14/3
        _ = bn.forward(x, mode: .train)
        XCTAssertEqual(store.buffers[0], 0.3, accuracy: 1e-6)                   // 0.9·0 + 0.1·3
        XCTAssertEqual(store.buffers[1], 0.9 + 0.1 * 14 / 3, accuracy: 1e-6)   // unbiased variance
        let before = store.buffers.array
        _ = bn.forward(x, mode: .trainFrozenStatistics)
        XCTAssertEqual(store.buffers.array.map(\.bitPattern), before.map(\.bitPattern), "frozen pass touched the statistics")
        // Eval mode uses the running statistics.
        let y = bn.forward(Tensor(shape: [1, 1, 1, 1], values: [0.3]), mode: .eval)
        XCTAssertEqual(y[0], 0, accuracy: 1e-6)
    }

    func testInitializationBoundsFollowPyTorch() {
        let store = ParameterStore()
        let fc = Linear(store: store, name: "fc", inputs: 100, outputs: 50)
        let conv = Conv2d(store: store, name: "c", inChannels: 4, outChannels: 8, kernelSize: 3, stride: 1, padding: 1, bias: true)
        store.seal()
        var rng = SplitMix64(seed: 9)
        fc.initialize(using: &rng)
        conv.initialize(using: &rng)
        for slot in store.parameters {
            let fanIn: Float = slot.name.hasPrefix("fc") ? 100 : 36
            let values = UnsafeBufferPointer(start: store.values.data + slot.offset, count: slot.count)
            let bound = 1 / fanIn.squareRoot()
            XCTAssertLessThanOrEqual(values.map(abs).max()!, bound, slot.name)
            XCTAssertGreaterThan(values.map(abs).max()!, bound * 0.8, slot.name)
        }
    }
}
