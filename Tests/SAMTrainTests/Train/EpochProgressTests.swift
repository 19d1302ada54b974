import XCTest
@testable import SAMTrain

/// The epoch so far, as a mid-epoch checkpoint keeps it: exact round trip, and metadata that is
/// damaged or hostile gives no progress (the epoch is then recorded from the resume on) rather
/// than a trap or invented totals.
final class EpochProgressTests: XCTestCase {
    func testMetadataRoundTripsExactly() {
        var totals = StepTotals()
        totals.lossSum = 1043.4764442034254
        totals.correct = 318
        totals.examples = 672
        totals.perturbedLossSum = 0.1 + 0.2   // not a short decimal
        totals.ascentSteps = 21
        let progress = EpochProgress(totals: totals, earlierSeconds: 0, start: 0)
        let meta = progress.metadata(world: Communicator.world(), now: 12.5)
        XCTAssertEqual(meta["epoch_seconds"], "12.5")
        let back = EpochProgress(metadata: meta, rank: 0)
        XCTAssertEqual(back?.totals.values, totals.values, "the sums must continue bit for bit")
        XCTAssertEqual(back?.earlierSeconds, 12.5)
    }

    func testDamagedMetadataGivesNoProgress() {
        let good = "1.5,2,3,4,5,6,7,8,9"
        XCTAssertNotNil(EpochProgress(metadata: ["epoch_seconds": "1", "epoch_totals_rank0": good], rank: 0))
        for meta in [
            ["epoch_totals_rank0": good],                                     // no seconds
            ["epoch_seconds": "1"],                                           // no totals
            ["epoch_seconds": "-1", "epoch_totals_rank0": good],              // negative time
            ["epoch_seconds": "nan", "epoch_totals_rank0": good],
            ["epoch_seconds": "1", "epoch_totals_rank0": "1,2,3"],            // too few
            ["epoch_seconds": "1", "epoch_totals_rank0": good + ",10"],       // too many
            ["epoch_seconds": "1", "epoch_totals_rank0": "1,2,3,4,5,6,7,8,inf"],
            ["epoch_seconds": "1", "epoch_totals_rank0": "1,2,3,4,x,6,7,8,9"],
            ["epoch_seconds": "1", "epoch_totals_rank0": "1,2,3,4,x,6,7,8,9,10"],  // nine numbers and a word
            ["epoch_seconds": "1", "epoch_totals_rank0": "1,2,3,4,,6,7,8,9"],
            ["epoch_seconds": "1", "epoch_totals_rank1": good],               // another rank's
        ] {
            XCTAssertNil(EpochProgress(metadata: meta, rank: 0), "\(meta)")
        }
    }

    /// A checkpoint with an epoch so far has it for every rank, readable, or is refused; one
    /// without any is fine (written at an epoch's end, or before samtrain kept it).
    func testACheckpointsEpochSoFarIsWholeOrRefused() {
        let good = "1.5,2,3,4,5,6,7,8,9"
        XCTAssertNil(EpochProgress.problem(in: ["world_size": "2"]))
        XCTAssertNil(EpochProgress.problem(in: ["world_size": "2", "epoch_seconds": "1", "epoch_totals_rank0": good, "epoch_totals_rank1": good]))
        for meta in [
            ["world_size": "2", "epoch_seconds": "1", "epoch_totals_rank0": good],
            ["world_size": "2", "epoch_seconds": "1"],
            ["epoch_seconds": "1", "epoch_totals_rank0": good],
            ["world_size": "2", "epoch_seconds": "1", "epoch_totals_rank0": good, "epoch_totals_rank2": good],
            ["world_size": "2", "epoch_seconds": "1", "epoch_totals_rank0": good, "epoch_totals_rank1": "1,2"],
            ["world_size": "1", "epoch_seconds": "-3", "epoch_totals_rank0": good],
        ] {
            XCTAssertNotNil(EpochProgress.problem(in: meta), "\(meta)")
        }
    }
}
