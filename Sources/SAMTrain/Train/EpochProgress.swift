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

    /// What is wrong with a checkpoint's epoch so far (nil: nothing, or it has none). Present,
    /// it must be readable for every rank of `world_size`, so that no rank resumes without it.
    public static func problem(in metadata: [String: String]) -> String? {
        let ranks = metadata.keys.filter { $0.hasPrefix(totalsPrefix) }
        guard !ranks.isEmpty || metadata[secondsKey] != nil else { return nil }
        guard let size = metadata["world_size"].flatMap(Int.init), ranks.count == size else {
            return "metadata has the epoch totals of \(ranks.count) ranks, for world_size \(metadata["world_size"] ?? "missing")"
        }
        for key in ranks.sorted() {
            guard let rank = Int(key.dropFirst(totalsPrefix.count)), (0..<size).contains(rank),
                  EpochProgress(metadata: metadata, rank: rank) != nil else {
                return "metadata \(key) is not an epoch's totals so far (9 finite numbers, beside a finite epoch_seconds ≥ 0)"
            }
        }
        return nil
    }

    static let secondsKey = "epoch_seconds"
    static let totalsPrefix = "epoch_totals_rank"
    static func totalsKey(rank: Int) -> String { totalsPrefix + "\(rank)" }
}
