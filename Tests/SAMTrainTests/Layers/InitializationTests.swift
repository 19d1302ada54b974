import XCTest
@testable import SAMTrain

final class InitializationTests: XCTestCase {
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
