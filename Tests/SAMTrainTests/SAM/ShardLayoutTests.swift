import XCTest
@testable import SAMTrain

final class ShardLayoutTests: XCTestCase {
    func testMicroShardsInsideARank() throws {
        let l = try ShardLayout(scope: .shard(m: 16), globalBatch: 128, worldSize: 2)
        XCTAssertEqual(l.microShards, 4)
        XCTAssertEqual(l.microShardSize, 16)
        XCTAssertEqual(l.groupSize, 1)
    }

    func testDefaultIsOneShardPerRank() throws {
        let l = try ShardLayout(scope: .shard(m: nil), globalBatch: 128, worldSize: 2)
        XCTAssertEqual(l, try ShardLayout(scope: .shard(m: 64), globalBatch: 128, worldSize: 2))
        XCTAssertEqual(l.microShards, 1)
        XCTAssertEqual(l.groupSize, 1)
    }

    func testShardsSpanningRanksAndGlobalScope() throws {
        let l = try ShardLayout(scope: .shard(m: 64), globalBatch: 128, worldSize: 4)
        XCTAssertEqual(l.groupSize, 2)
        let g = try ShardLayout(scope: .global, globalBatch: 128, worldSize: 4)
        XCTAssertEqual(g.groupSize, 4)
        XCTAssertEqual(g.examplesPerPerturbation, 128)
    }

    func testInvalidCombinationsAreRefusedWithTheValidValues() {
        // m does not divide B.
        XCTAssertThrowsError(try ShardLayout(scope: .shard(m: 5), globalBatch: 128, worldSize: 2)) { e in
            XCTAssertTrue("\(e)".contains("does not divide the global batch 128"), "\(e)")
            XCTAssertTrue("\(e)".contains("1, 2, 4, 8, 16, 32, 64, 128"), "\(e)")
        }
        // m < b and b is not a multiple of m (B = 24, R = 4, b = 6, m = 4).
        XCTAssertThrowsError(try ShardLayout(scope: .shard(m: 4), globalBatch: 24, worldSize: 4))
        // m > b and m/b does not divide R (B = 24, R = 4, b = 6, m = 12·... : m = 18? not a divisor; m = 12 spans 2 ranks: fine).
        XCTAssertNoThrow(try ShardLayout(scope: .shard(m: 12), globalBatch: 24, worldSize: 4))
        // B = 36, R = 6, b = 6: m = 18 divides B but spans 3 ranks... 3 divides 6: fine; m = 12 spans 2: fine;
        // B = 30, R = 5, b = 6: m = 15 divides B but is not a multiple of b.
        XCTAssertThrowsError(try ShardLayout(scope: .shard(m: 15), globalBatch: 30, worldSize: 5))
        XCTAssertThrowsError(try ShardLayout(scope: .shard(m: 0), globalBatch: 30, worldSize: 5))
    }
}
