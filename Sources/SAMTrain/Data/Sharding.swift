/// Which examples a rank takes at each step of an epoch (docs/algorithms.md §6.2): all ranks draw the same
/// permutation from (seed, epoch); global batch k is `perm[kB ..< (k+1)B]` and rank r takes
/// `perm[kB + r·b ..< kB + (r+1)·b]`. The last incomplete global batch is dropped.
public struct EpochPlan: Sendable {
    public let permutation: [Int]
    public let globalBatch: Int
    public let rank: Int
    public let worldSize: Int

    public init(datasetCount: Int, globalBatch: Int, rank: Int, worldSize: Int, seed: UInt64, epoch: Int) {
        precondition(globalBatch % worldSize == 0, "the global batch is divisible by the rank count (checked before)")
        var rng = SplitMix64(seed: seed, stream: RandomStream.permutation.rawValue, index: UInt64(epoch))
        permutation = rng.permutation(datasetCount)
        self.globalBatch = globalBatch
        self.rank = rank
        self.worldSize = worldSize
    }

    public var steps: Int { permutation.count / globalBatch }
    public var perRankBatch: Int { globalBatch / worldSize }

    /// This rank's examples at step `k` of the epoch.
    public func indices(forStep k: Int) -> ArraySlice<Int> {
        let start = k * globalBatch + rank * perRankBatch
        return permutation[start..<(start + perRankBatch)]
    }
}

/// The test examples a rank evaluates: contiguous ranges whose sizes differ by at most
/// one, so that every example counts exactly once whatever the rank count.
public enum EvaluationSplit {
    public static func range(count: Int, rank: Int, worldSize: Int) -> Range<Int> {
        let base = count / worldSize, extra = count % worldSize
        let start = rank * base + min(rank, extra)
        return start..<(start + base + (rank < extra ? 1 : 0))
    }
}
