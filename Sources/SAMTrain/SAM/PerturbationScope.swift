/// Which examples share one perturbation ε (docs/algorithms.md §3.1).
public enum PerturbationScope: Equatable, Sendable {
    /// Every rank uses the same ε, from the all-reduced clean gradient (m = B).
    case global
    /// m-sharpness: each shard of `m` examples has its own ε (nil: m = per-rank batch).
    case shard(m: Int?)
}

/// How a scope maps onto ranks and micro-shards for one run: a rank runs `microShards`
/// shards of `microShardSize` examples each, and a shard larger than a rank's batch spans
/// `groupSize` consecutive ranks that average their clean gradients.
public struct ShardLayout: Equatable, Sendable {
    public let examplesPerPerturbation: Int   // m
    public let microShards: Int               // shards per rank (b / m when m < b)
    public let microShardSize: Int            // examples per micro-shard
    public let groupSize: Int                 // ranks per shard (m / b when m > b)

    /// Validates `scope` for a global batch of `globalBatch` examples over `worldSize` ranks,
    /// with the errors of docs/algorithms.md §3.5 (raised identically on every rank).
    public init(scope: PerturbationScope, globalBatch: Int, worldSize: Int) throws {
        let b = globalBatch / worldSize
        let m: Int
        switch scope {
        case .global: m = globalBatch
        case .shard(let given): m = given ?? b
        }
        guard m >= 1 else { throw SAMTrainError("--m \(m): must be at least 1") }
        let valid = ShardLayout.validM(globalBatch: globalBatch, worldSize: worldSize)
        let hint = "valid values of --m with global batch \(globalBatch) on \(worldSize) rank(s): \(valid.map(String.init).joined(separator: ", "))"
        guard globalBatch % m == 0 else {
            throw SAMTrainError("--m \(m) does not divide the global batch \(globalBatch); \(hint)")
        }
        if m <= b {
            guard b % m == 0 else {
                throw SAMTrainError("--m \(m) does not divide the per-rank batch \(b); \(hint)")
            }
            examplesPerPerturbation = m
            microShards = b / m
            microShardSize = m
            groupSize = 1
        } else {
            guard m % b == 0, worldSize % (m / b) == 0 else {
                throw SAMTrainError("--m \(m) spans \(Double(m) / Double(b)) ranks of \(b) examples, which does not divide \(worldSize) ranks; \(hint)")
            }
            examplesPerPerturbation = m
            microShards = 1
            microShardSize = b
            groupSize = m / b
        }
    }

    /// Every m the rules accept: divisors of b, and multiples b·k with k dividing R.
    public static func validM(globalBatch: Int, worldSize: Int) -> [Int] {
        let b = globalBatch / worldSize
        let below = (1...max(b, 1)).filter { b % $0 == 0 }
        let above = (2...max(worldSize, 2)).filter { worldSize % $0 == 0 && $0 <= worldSize }.map { $0 * b }
        return below + above
    }
}

extension ShardLayout {
    /// Refuses a `--micro-batch` that does not divide a shard's examples on one rank: every
    /// chunk of a pass holds the same number of examples (with BatchNorm, each chunk's batch
    /// statistics are used, as PyTorch's gradient accumulation gives).
    public func check(microBatch: Int?) throws {
        guard let k = microBatch else { return }
        guard k >= 1 else { throw SAMTrainError("--micro-batch \(k): must be at least 1") }
        let scope = groupSize > 1 ? "a shard's \(microShardSize) examples on one rank (--m \(examplesPerPerturbation) over \(groupSize) ranks)"
            : microShards > 1 ? "a shard's \(microShardSize) examples (--m \(examplesPerPerturbation))"
            : "the \(microShardSize) examples of a rank's batch"
        guard k <= microShardSize, microShardSize % k == 0 else {
            let valid = (1...microShardSize).filter { microShardSize % $0 == 0 }.map(String.init).joined(separator: ", ")
            throw SAMTrainError("--micro-batch \(k) does not divide \(scope); valid values: \(valid)")
        }
    }
}
