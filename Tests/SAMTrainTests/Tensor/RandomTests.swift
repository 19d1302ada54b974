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

    /// The streams of one seed are unrelated sequences. Before 2026-12 a stream's key was
    /// added linearly to one state, and the streams of index 0 were one sequence one draw
    /// apart: initialization, the first epoch's permutation and the label noise shared draws.
    func testStreamsOfOneSeedDoNotOverlap() {
        for seed: UInt64 in [0, 3] {
            var seen = Set<UInt64>()
            var drawn = 0
            for stream in RandomStream.allCases {
                for index: UInt64 in [0, 1, 2, 1 << 16] {
                    var rng = SplitMix64(seed: seed, stream: stream.rawValue, index: index)
                    for _ in 0..<4096 { seen.insert(rng.next()) }
                    drawn += 4096
                }
            }
            XCTAssertEqual(seen.count, drawn, "seed \(seed): two streams drew the same value")
        }
    }

    /// A checkpoint whose streams were keyed otherwise is refused on resume, with the reason.
    func testResumeRefusesOtherStreamKeying() throws {
        XCTAssertNil(RunCheckpoints.streamDifference(saved: SplitMix64.keying))
        let old = try XCTUnwrap(RunCheckpoints.streamDifference(saved: "splitmix64 streams keyed by seed 0"))
        XCTAssertTrue(old.contains("random streams") && old.contains("start the run again"), old)
        XCTAssertNotNil(RunCheckpoints.streamDifference(saved: nil))
    }
}
