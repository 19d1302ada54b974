import ArgumentParser

/// Friendly-SAM (Li et al., CVPR 2024; official nblt/F-SAM): the ascent leaves out the
/// full-gradient component, estimated by a momentum of the clean gradients, and climbs along
/// the batch-specific remainder (docs/algorithms.md §2.7). Step 0: a = g, m = g; later a = g − σ·m, then
/// m ← λ·m + (1−λ)·g; ε = ρ·a/(‖a‖+δ); direction ∇L(w+ε). m is kept per shard slot.
public final class FriendlySAM: SAMVariant {
    public let name = "fsam"
    public let rho: Float
    public let sigma: Float
    public let lambda: Float
    public let normEps: Double
    private let momentum = SlotState("fsam_momentum")
    private var ascentDirection = FlatBuffer(count: 0)

    public init(rho: Float, sigma: Float, lambda: Float, normEps: Double) {
        self.rho = rho
        self.sigma = sigma
        self.lambda = lambda
        self.normEps = normEps
    }

    public func prepareState(slots: Int, parameters: Int) {
        momentum.prepare(slots: slots, parameters: parameters)
        ascentDirection = FlatBuffer(count: parameters)
    }

    public var state: [(name: String, buffer: FlatBuffer)] { momentum.named }

    public func direction(of shard: Shard, with passes: ShardPasses, to target: DirectionTarget, context: StepContext) -> ShardDirection {
        let m = momentum[context.slot], a = ascentDirection
        let g = passes.cleanPass(shard)
        passes.timer.measure(.ascent) {
            if context.step == 0 {
                a.copy(from: g)
                m.copy(from: g)
            } else {
                // a uses the momentum before this step's update.
                let ap = a.data, mp = m.data, gp = g.data, s = sigma, l = lambda
                for i in 0..<g.count {
                    ap[i] = gp[i] - s * mp[i]
                    mp[i] = l * mp[i] + (1 - l) * gp[i]
                }
            }
        }
        passes.recorder?.record("ascent_direction", buffer: a)
        passes.recorder?.record("fsam_momentum", buffer: m)
        let aNorm = passes.timer.measure(.ascent) { a.norm() }
        return passes.perturbedPass(shard, along: a, scaledBy: Float(Double(rho) / (aNorm + normEps)), normOfAlong: aNorm,
                                    direction: target)
    }

    public struct Options: VariantOptions {
        public static let name = "fsam"
        public static let summary = "Friendly-SAM: the ascent without the full-gradient component (Li et al.)"

        @Option(help: "Friendly-SAM's σ: how much of the gradient momentum the ascent leaves out.")
        public var fsamSigma: Float = 1

        @Option(help: "Friendly-SAM's λ: the momentum of the clean gradients.")
        public var fsamLambda: Float = 0.95

        public init() {}

        public var passesPerStep: Double { 2 }

        public func validate() throws {
            if !fsamSigma.isFinite { throw SAMTrainError("--fsam-sigma \(fsamSigma): must be a finite number") }
            if !(fsamLambda >= 0 && fsamLambda < 1) { throw SAMTrainError("--fsam-lambda \(fsamLambda): must be in [0, 1)") }
        }

        public mutating func read(vector: VectorSettings) throws {
            if let s = try vector.float("fsam_sigma") { fsamSigma = s }
            if let l = try vector.float("fsam_lambda") { fsamLambda = l }
        }

        public func makeVariant(_ shared: AscentSettings, all: VariantSet) throws -> SAMVariant {
            FriendlySAM(rho: shared.rho, sigma: fsamSigma, lambda: fsamLambda, normEps: shared.normEps)
        }
    }
}
