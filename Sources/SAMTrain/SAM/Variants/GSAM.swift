import ArgumentParser

/// GSAM (Zhuang et al., ICLR 2022): SAM's gradient g_p at w + ε, minus α times the part of
/// the clean gradient orthogonal to it — descending the surrogate gap without fighting the
/// loss (docs/algorithms.md §2.5):
///   ε = ρ_t·g/(‖g‖+δ);  g_⊥ = g − ((g·g_p)/(‖g_p‖²+δ))·g_p;  direction = g_p − α·g_⊥,
/// with ρ_t following the learning rate from `rhoMin` (smallest rate) to ρ (largest). Under a
/// shard spanning several ranks, g_p is the group's average before the decomposition.
public final class GSAM: SAMVariant {
    public let name = "gsam"
    public let rho: Float
    public let rhoMin: Float
    public let alpha: Float
    public let normEps: Double
    /// ρ_t of each step, when a vector file gives it instead of the schedule.
    public var rhoPerStep: [Float]?
    private var clean = FlatBuffer(count: 0)

    public init(rho: Float, rhoMin: Float, alpha: Float, normEps: Double) {
        self.rho = rho
        self.rhoMin = rhoMin
        self.alpha = alpha
        self.normEps = normEps
    }

    public func radius(_ c: StepContext) -> Float {
        if let list = rhoPerStep, c.step < list.count { return list[c.step] }
        return c.radius(from: rhoMin, to: rho)
    }

    public func direction(of shard: Shard, with passes: ShardPasses, to target: DirectionTarget, context: StepContext) -> ShardDirection {
        if clean.count != passes.weights.count { clean = FlatBuffer(count: passes.weights.count) }
        let g = clean
        g.copy(from: passes.cleanPass(shard))
        let gNorm = passes.timer.measure(.ascent) { g.norm() }
        let gp = passes.perturbedPass(shard, along: g, scaledBy: Float(Double(radius(context)) / (gNorm + normEps)),
                                     groupAverage: true, normOfAlong: gNorm)

        // g_⊥ over the clean gradient's copy, then g_p − α·g_⊥ over g_p.
        passes.timer.measure(.ascent) {
            let c = Float(g.dot(gp) / (gp.sumOfSquares() + normEps))
            let o = g.data, p = gp.data, a = alpha
            for i in 0..<g.count {
                o[i] -= c * p[i]
                p[i] -= a * o[i]
            }
        }
        passes.recorder?.record("grad_orthogonal", buffer: g)
        return .computed(gp)
    }

    public struct Options: VariantOptions {
        public static let name = "gsam"
        public static let summary = "surrogate-gap guided SAM (Zhuang et al.)"

        @Option(help: "GSAM's α: how much of the clean gradient's part orthogonal to g_p is removed (the paper uses 0.01–0.4).")
        public var gsamAlpha: Float = 0.01

        @Option(help: "GSAM: ρ_t at the smallest learning rate (--rho is ρ_t at the largest).")
        public var rhoMin: Float = 0

        /// ρ_t of each step as a vector file gives it.
        public var rhoPerStep: [Float]?

        public init() {}

        public var passesPerStep: Double { 2 }

        public func validate() throws {
            if !(gsamAlpha >= 0) || !gsamAlpha.isFinite { throw SAMTrainError("--gsam-alpha \(gsamAlpha): must be ≥ 0") }
            if !(rhoMin >= 0) || !rhoMin.isFinite { throw SAMTrainError("--rho-min \(rhoMin): must be ≥ 0") }
        }

        public mutating func read(vector: VectorSettings) throws {
            if let a = try vector.float("gsam_alpha") { gsamAlpha = a }
            rhoPerStep = try vector.perStep("rho_per_step")
        }

        public func makeVariant(_ shared: AscentSettings, all: VariantSet) throws -> SAMVariant {
            guard rhoMin <= shared.rho else { throw SAMTrainError("--rho-min \(rhoMin) must be ≤ --rho \(shared.rho) (GSAM's ρ_t runs between them)") }
            let v = GSAM(rho: shared.rho, rhoMin: rhoMin, alpha: gsamAlpha, normEps: shared.normEps)
            v.rhoPerStep = rhoPerStep
            return v
        }
    }
}
