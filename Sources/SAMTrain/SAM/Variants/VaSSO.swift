import ArgumentParser

/// VaSSO (Li & Giannakis, NeurIPS 2023): the ascent along a variance-suppressed estimate d
/// of the gradient instead of the noisy batch gradient (docs/algorithms.md §2.8):
///   d ← (1−θ)·d + θ·g (d starts at 0; kept per shard slot), ε = ρ·d/(‖d‖+δ),
///   direction ∇L(w+ε).
/// (The official code starts d at the first gradient; docs/algorithms.md §2.8 and the golden vectors start it at 0.)
public final class VaSSO: SAMVariant {
    public let name = "vasso"
    public let rho: Float
    public let theta: Float
    public let normEps: Double
    private let estimate = SlotState("vasso_d")

    public init(rho: Float, theta: Float, normEps: Double) {
        self.rho = rho
        self.theta = theta
        self.normEps = normEps
    }

    public func prepareState(slots: Int, parameters: Int) { estimate.prepare(slots: slots, parameters: parameters) }
    public var state: [(name: String, buffer: FlatBuffer)] { estimate.named }

    public func direction(of shard: Shard, with passes: ShardPasses, to target: DirectionTarget, context: StepContext) -> ShardDirection {
        let d = estimate[context.slot]
        let g = passes.cleanPass(shard)
        let dNorm = passes.timer.measure(.ascent) { () -> Double in
            let dp = d.data, gp = g.data, t = theta
            for i in 0..<d.count { dp[i] = (1 - t) * dp[i] + t * gp[i] }
            return d.norm()
        }
        passes.recorder?.record("vasso_d", buffer: d)
        return passes.perturbedPass(shard, along: d, scaledBy: Float(Double(rho) / (dNorm + normEps)), normOfAlong: dNorm,
                                    direction: target)
    }

    public struct Options: VariantOptions {
        public static let name = "vasso"
        public static let summary = "variance-suppressed sharpness-aware optimization (Li & Giannakis)"

        @Option(help: "VaSSO's θ: the weight of the new gradient in d (θ = 1 is SAM).")
        public var vassoTheta: Float = 0.9

        public init() {}

        public var passesPerStep: Double { 2 }

        public func validate() throws {
            if !(vassoTheta > 0 && vassoTheta <= 1) { throw SAMTrainError("--vasso-theta \(vassoTheta): must be in (0, 1]") }
        }

        public mutating func read(vector: VectorSettings) throws {
            if let t = try vector.float("vasso_theta") { vassoTheta = t }
        }

        public func makeVariant(_ shared: AscentSettings, all: VariantSet) throws -> SAMVariant {
            VaSSO(rho: shared.rho, theta: vassoTheta, normEps: shared.normEps)
        }
    }
}
