/// The m-sharpness of docs/algorithms.md §8.2: max over ‖ε‖ ≤ ρ of L_S(w + ε) − L_S(w), by a few projected
/// (normalized) gradient-ascent steps, averaged over shards S of m examples. Each rank
/// handles the shards inside its part of the subset; the averages are all-reduced.
public enum MSharpness {
    public static func estimate(_ landscape: LossLandscape, rho: Float, m: Int, ascentSteps: Int = 5) -> Double {
        let w = landscape.weights
        let saved = FlatBuffer(count: w.count), epsilon = FlatBuffer(count: w.count)
        saved.copy(from: w)
        var sum = 0.0, shards = 0.0
        var start = landscape.range.lowerBound
        while start + m <= landscape.range.upperBound {
            let shard = start..<(start + m)
            let base = landscape.evaluate(withGradient: false, examples: shard, collective: false)
            epsilon.zero()
            for _ in 0..<ascentSteps {
                w.copy(from: saved)
                w.add(epsilon)
                landscape.evaluate(withGradient: true, examples: shard, collective: false)
                let g = landscape.gradient
                let norm = g.norm()
                if norm == 0 { break }
                // A step of ρ along the normalized gradient, projected back onto the ball.
                epsilon.add(g, scaledBy: Float(Double(rho) / norm))
                let e = epsilon.norm()
                if e > Double(rho) { epsilon.scale(by: Float(Double(rho) / e)) }
            }
            w.copy(from: saved)
            w.add(epsilon)
            sum += landscape.evaluate(withGradient: false, examples: shard, collective: false) - base
            shards += 1
            start += m
        }
        w.copy(from: saved)
        let g = landscape.world.allreduceSum([sum, shards])
        return g[1] > 0 ? g[0] / g[1] : 0
    }

    /// Loss along w + t·d for a unit random direction d and t in [−radius, radius].
    public static func line(_ landscape: LossLandscape, radius: Float, points: Int, seed: UInt64 = 0) -> [(t: Float, loss: Double)] {
        let w = landscape.weights
        let saved = FlatBuffer(count: w.count)
        saved.copy(from: w)
        let d = HessianSpectrum.randomUnit(count: w.count, seed: seed &+ 1)
        var out: [(Float, Double)] = []
        for i in 0..<points {
            let t = points == 1 ? 0 : -radius + 2 * radius * Float(i) / Float(points - 1)
            w.copy(from: saved)
            w.add(d, scaledBy: t)
            out.append((t, landscape.evaluate(withGradient: false)))
        }
        w.copy(from: saved)
        return out
    }
}
