import Foundation

/// The α–β cost of a ring allreduce (reduce-scatter then allgather): on P ranks, a buffer of
/// n bytes takes 2(P − 1) messages of n/P bytes each way, so
///   T(n, P) = 2(P − 1)·α + 2(P − 1)/P · n·β,
/// with α the latency of one message and β the seconds per byte of the link. `fit` measures
/// both from timed allreduces on the job's own ranks and links.
public struct AllreduceCostModel: Codable, Sendable, Equatable {
    /// Seconds per message.
    public var alpha: Double
    /// Seconds per byte.
    public var beta: Double

    public init(alpha: Double, beta: Double) {
        self.alpha = alpha
        self.beta = beta
    }

    /// A link of `gigabitsPerSecond` with per-message latency `alpha`.
    public init(gigabitsPerSecond: Double, alpha: Double) {
        self.init(alpha: alpha, beta: 8 / (gigabitsPerSecond * 1e9))
    }

    public func seconds(bytes: Double, ranks: Int) -> Double {
        guard ranks > 1 else { return 0 }
        let p = Double(ranks)
        return 2 * (p - 1) * alpha + 2 * (p - 1) / p * bytes * beta
    }

    /// Parallel efficiency of a data-parallel step on `ranks` ranks that computes for
    /// `computeSeconds` and then reduces `bytes` of gradient `allreduces` times: the share
    /// of the step that is computation. `overlappableSeconds` of the communication can hide
    /// behind the backward pass (0 for the blocking schedule).
    public func efficiency(computeSeconds: Double, overlappableSeconds: Double = 0, bytes: Double,
                           ranks: Int, allreduces: Int = 1) -> Double {
        let exposed = max(0, Double(allreduces) * seconds(bytes: bytes, ranks: ranks) - overlappableSeconds)
        return computeSeconds / (computeSeconds + exposed)
    }

    /// Fit of T = a + b·n to (bytes, seconds) samples taken on `ranks` ranks, least squares
    /// in relative error (weights 1/T²): the small sizes, whose time is nearly all latency,
    /// pin a (α), the large ones b (β). An unweighted fit lets the few large sizes decide
    /// both, and their noise can drive a below zero.
    public static func fit(_ samples: [(bytes: Double, seconds: Double)], ranks: Int) -> AllreduceCostModel {
        precondition(samples.count >= 2 && ranks > 1, "a fit needs two sizes and two ranks")
        let w = samples.map { 1 / max($0.seconds * $0.seconds, 1e-30) }
        let total = w.reduce(0, +)
        let mx = zip(w, samples).reduce(0) { $0 + $1.0 * $1.1.bytes } / total
        let my = zip(w, samples).reduce(0) { $0 + $1.0 * $1.1.seconds } / total
        let sxy = zip(w, samples).reduce(0) { $0 + $1.0 * ($1.1.bytes - mx) * ($1.1.seconds - my) }
        let sxx = zip(w, samples).reduce(0) { $0 + $1.0 * ($1.1.bytes - mx) * ($1.1.bytes - mx) }
        let slope = sxy / sxx, intercept = my - slope * mx
        let p = Double(ranks)
        return AllreduceCostModel(alpha: max(0, intercept) / (2 * (p - 1)), beta: slope / (2 * (p - 1) / p))
    }

    /// The fit with α given by the time of a tiny allreduce (`latency`: all α, T = 2(P − 1)·α),
    /// β then the least-squares slope in relative error through that intercept. Where a
    /// shaped link sends small messages at burst speed (tc's tbf), the sizes' line alone
    /// cannot see α.
    public static func fit(_ samples: [(bytes: Double, seconds: Double)], latency: Double, ranks: Int) -> AllreduceCostModel {
        precondition(!samples.isEmpty && ranks > 1, "a fit needs a size and two ranks")
        let p = Double(ranks), a = latency
        let w = samples.map { 1 / max($0.seconds * $0.seconds, 1e-30) }
        let num = zip(w, samples).reduce(0) { $0 + $1.0 * $1.1.bytes * ($1.1.seconds - a) }
        let den = zip(w, samples).reduce(0) { $0 + $1.0 * $1.1.bytes * $1.1.bytes }
        return AllreduceCostModel(alpha: a / (2 * (p - 1)), beta: num / den / (2 * (p - 1) / p))
    }

    /// Median seconds of a blocking allreduce of each size (bytes, a multiple of 4) on
    /// `world`, after one untimed call; every rank returns the slowest rank's medians.
    public static func measure(world: Communicator, sizes: [Int], repeats: Int) -> [(bytes: Double, seconds: Double)] {
        let buffer = FlatBuffer(count: max(1, (sizes.max() ?? 4) / 4))
        var medians: [Double] = []
        for size in sizes {
            let count = size / 4
            world.allreduceSum(buffer.data, count: count)
            var times: [Double] = []
            for _ in 0..<repeats {
                world.barrier()
                let t0 = PhaseTimer.now()
                world.allreduceSum(buffer.data, count: count)
                times.append(PhaseTimer.now() - t0)
            }
            medians.append(times.sorted()[times.count / 2])
        }
        let slowest = world.allreduceMaxDoubles(medians)
        return zip(sizes, slowest).map { (Double($0), $1) }
    }
}
