import Foundation

/// An epoch so far: this rank's step totals and the seconds it has taken. A checkpoint taken
/// mid-epoch keeps every rank's, so that a run resumed there writes the epoch's record (train
/// loss and accuracy, images/s, seconds) over the whole epoch, as the uninterrupted run does,
/// and not over the part the resumed process ran.
public struct EpochProgress {
    var totals = StepTotals()
    /// Seconds that earlier processes spent on the epoch (a resumed run's), before `start`.
    var earlierSeconds = 0.0
    /// When this process took up the epoch (`PhaseTimer.now()`).
    var start: Double

    func seconds(at now: Double) -> Double { earlierSeconds + now - start }

    /// A checkpoint's metadata of the epoch so far: every rank's totals, gathered (collective:
    /// every rank calls it), and rank 0's seconds. Doubles are written in Swift's shortest
    /// round-trip form, so the resumed sums continue bit for bit.
    func metadata(world: Communicator, now: Double) -> [String: String] {
        let own = totals.values, n = own.count
        var slots = [Double](repeating: 0, count: n * world.size)
        slots.replaceSubrange((world.rank * n)..<((world.rank + 1) * n), with: own)
        let all = world.allreduceSum(slots)   // each slot is one rank's values plus zeros: exact
        var meta = [Self.secondsKey: "\(seconds(at: now))"]
        for r in 0..<world.size {
            meta[Self.totalsKey(rank: r)] = all[(r * n)..<((r + 1) * n)].map { "\($0)" }.joined(separator: ",")
        }
        return meta
    }

    /// Rank `rank`'s epoch so far from a checkpoint's metadata (its `start` is the trainer's to
    /// set); nil when the checkpoint has none (written at an epoch's end, or before samtrain
    /// kept it).
    public init?(metadata: [String: String], rank: Int) {
        guard let seconds = metadata[Self.secondsKey].flatMap(Double.init), seconds.isFinite, seconds >= 0,
              let text = metadata[Self.totalsKey(rank: rank)] else { return nil }
        let fields = text.split(separator: ",", omittingEmptySubsequences: false).map { Double($0) }
        guard !fields.contains(nil), let totals = StepTotals(values: fields.map { $0! }) else { return nil }
        self.init(totals: totals, earlierSeconds: seconds, start: 0)
    }

    init(totals: StepTotals = StepTotals(), earlierSeconds: Double = 0, start: Double) {
        self.totals = totals
        self.earlierSeconds = earlierSeconds
        self.start = start
    }

    static let secondsKey = "epoch_seconds"
    static func totalsKey(rank: Int) -> String { "epoch_totals_rank\(rank)" }
}
