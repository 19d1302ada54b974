import XCTest
@testable import SAMTrain

final class RandomTests: XCTestCase {
    func testPermutationIsDeterministicAndComplete() {
        var a = SplitMix64(seed: 7, stream: RandomStream.permutation.rawValue, index: 3)
        var b = SplitMix64(seed: 7, stream: RandomStream.permutation.rawValue, index: 3)
        let p = a.permutation(1000)
        XCTAssertEqual(p, b.permutation(1000))
        XCTAssertEqual(Set(p).count, 1000)
        XCTAssertNotEqual(p, Array(0..<1000))
    }
}
