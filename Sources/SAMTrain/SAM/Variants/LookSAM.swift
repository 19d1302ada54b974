import ArgumentParser

/// LookSAM (Liu et al., CVPR 2022): the full SAM step only every k-th step; in between, one
/// pass, whose gradient is pushed along the sharpness direction g_v remembered from the
/// last SAM step (docs/algorithms.md §2.6). On steps t with t mod k = 0:
///   ε = ρ·g/(‖g‖+δ), g_s = ∇L(w+ε), c = (g·g_s)/(‖g‖‖g_s‖+δ),
///   g_v = g_s − ‖g_s‖·c·g/(‖g‖+δ) (kept per shard slot), direction g_s;
/// other steps: direction g + α·(‖g‖/(‖g_v‖+δ))·g_v. Cost 1 + 1/k passes.
public final class LookSAM: SAMVariant {
    public let name = "looksam"
    public let rho: Float
    public let k: Int
    public let alpha: Float
    public let normEps: Double
    private let sharpness = SlotState("looksam_gv")
    private var clean = FlatBuffer(count: 0)

    public init(rho: Float, k: Int, alpha: Float, normEps: Double) {
        self.rho = rho
        self.k = k
        self.alpha = alpha
        self.normEps = normEps
    }

    public func prepareState(slots: Int, parameters: Int) {
        sharpness.prepare(slots: slots, parameters: parameters)
        clean = FlatBuffer(count: parameters)
    }

    public var state: [(name: String, buffer: FlatBuffer)] { sharpness.named }

    public func direction(of shard: Shard, with passes: ShardPasses, to target: DirectionTarget, context: StepContext) -> ShardDirection {
        let gv = sharpness[context.slot]
        let g = passes.cleanPass(shard)
        if context.step % k != 0 {
            // Reuse: g + α·(‖g‖/(‖g_v‖+δ))·g_v, over g.
            passes.timer.measure(.ascent) {
                g.add(gv, scaledBy: Float(Double(alpha) * g.norm() / (gv.norm() + normEps)))
            }
            passes.recorder?.record("looksam_gv", buffer: gv)
            return .computed(g)
        }
        clean.copy(from: g)
        let gNorm = clean.norm()
        let gs = passes.perturbedPass(shard, along: clean, scaledBy: Float(Double(rho) / (gNorm + normEps)), groupAverage: true,
                                     normOfAlong: gNorm)
        passes.timer.measure(.ascent) {
            let gsNorm = gs.norm()
            let c = clean.dot(gs) / (gNorm * gsNorm + normEps)
            let along = Float(gsNorm * c / (gNorm + normEps))
            let v = gv.data, s = gs.data, o = clean.data
            for i in 0..<gv.count { v[i] = s[i] - along * o[i] }
        }
        passes.recorder?.record("looksam_gv", buffer: gv)
        return .computed(gs)
    }

    public struct Options: VariantOptions {
        public static let name = "looksam"
        public static let summary = "SAM every k-th step, its sharpness direction reused between (Liu et al.)"

        @Option(help: "LookSAM: the full SAM step every k steps (step index mod k = 0).")
        public var looksamK: Int = 5

        @Option(help: "LookSAM's α: the weight of the reused sharpness direction.")
        public var looksamAlpha: Float = 0.7

        public init() {}

        public var passesPerStep: Double { 1 + 1 / Double(looksamK) }

        public func validate() throws {
            if !(1...1_000_000).contains(looksamK) { throw SAMTrainError("--looksam-k \(looksamK): must be in 1…1000000") }
            if !(looksamAlpha >= 0) || !looksamAlpha.isFinite { throw SAMTrainError("--looksam-alpha \(looksamAlpha): must be ≥ 0") }
        }

        public mutating func read(vector: VectorSettings) throws {
            if let k = try vector.integer("looksam_k", in: 1...1_000_000) { looksamK = k }
            if let a = try vector.float("looksam_alpha") { looksamAlpha = a }
        }

        public func makeVariant(_ shared: AscentSettings, all: VariantSet) throws -> SAMVariant {
            LookSAM(rho: shared.rho, k: looksamK, alpha: looksamAlpha, normEps: shared.normEps)
        }
    }
}
