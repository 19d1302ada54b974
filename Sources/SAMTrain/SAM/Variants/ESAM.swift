import ArgumentParser

/// ESAM (Du et al., ICLR 2022), SAM made cheaper twice over (docs/algorithms.md §2.10):
/// - stochastic weight perturbation: each parameter tensor joins the ascent with probability
///   β, drawn from (seed, step, tensor index) — the same draws on every rank and shard —
///   and ε = ρ·g/((‖g‖+δ)·β) on the chosen tensors (g and its norm over them), 0 elsewhere;
/// - sharpness-sensitive data selection: a forward pass at w + ε gives every example's
///   l(w+ε) − l(w); the perturbed backward uses only the top γ fraction of the shard's
///   examples (ties broken by example index). With γ = 1 that forward is skipped.
public final class ESAM: SAMVariant {
    public let name = "esam"
    public let rho: Float
    public let beta: Float
    public let gamma: Float
    public let normEps: Double
    /// The draws' stream (SplitMix64 streams keyed by the run's seed).
    static let stream: UInt64 = 0xE5A4

    public init(rho: Float, beta: Float, gamma: Float, normEps: Double) {
        self.rho = rho
        self.beta = beta
        self.gamma = gamma
        self.normEps = normEps
    }

    /// Whether parameter tensor `tensor` takes part in step `step`'s ascent.
    public func chooses(tensor: Int, step: Int, seed: UInt64) -> Bool {
        var rng = SplitMix64(seed: seed, stream: ESAM.stream, index: UInt64(step) << 16 | UInt64(tensor))
        return rng.nextUnitFloat() < beta
    }

    /// The examples of the perturbed backward: the top ⌊γ·n⌋ (at least one) by
    /// `after − before`, largest first, ties by lower index; returned in index order.
    public func selection(before: [Double], after: [Double]) -> [Int] {
        let n = before.count
        let count = min(n, max(1, Int((Double(gamma) * Double(n)).rounded(.down))))
        let ranked = (0..<n).sorted { i, j in
            let a = after[i] - before[i], b = after[j] - before[j]
            return a != b ? a > b : i < j
        }
        return ranked.prefix(count).sorted()
    }

    public func direction(of shard: Shard, with passes: ShardPasses, to target: DirectionTarget, context: StepContext) -> ShardDirection {
        let chosen = passes.parameters.indices.filter { chooses(tensor: $0, step: context.step, seed: context.seed) }
        // The clean pass computes the chosen tensors' gradients only (the rest stay 0): the
        // ascent is all it is for.
        let (g, before) = passes.cleanPass(shard, gradients: .only(Set(chosen)))
        let e = passes.epsilon
        passes.timer.measure(.ascent) {
            var sum = 0.0
            for index in chosen {
                let slot = passes.parameters[index], p = g.data + slot.offset
                for i in 0..<slot.count { sum += Double(p[i]) * Double(p[i]) }
            }
            let scale = Float(Double(rho) / ((sum.squareRoot() + normEps) * Double(beta)))
            e.zero()
            for index in chosen {
                let slot = passes.parameters[index], p = g.data + slot.offset, q = e.data + slot.offset
                for i in 0..<slot.count { q[i] = scale * p[i] }
            }
        }
        let n = before.count
        if Int((Double(gamma) * Double(n)).rounded(.down)) >= n {
            return passes.perturbedPass(shard, offset: e, direction: target)
        }
        let after = passes.exampleLosses(shard, at: e)
        return passes.perturbedPass(shard, offset: e, examples: selection(before: before, after: after), direction: target)
    }

    public struct Options: VariantOptions {
        public static let name = "esam"
        public static let summary = "efficient SAM: random tensors in the ascent, the sharpest examples in the descent (Du et al.)"

        @Option(help: "ESAM's β: the probability that a parameter tensor takes part in the ascent.")
        public var esamBeta: Float = 0.5

        @Option(help: "ESAM's γ: the fraction of each shard's examples (the sharpest) in the perturbed backward pass.")
        public var esamGamma: Float = 0.5

        public init() {}

        /// In forward+backward passes (a forward ~1/3, a weight gradient ~1/3): the clean pass
        /// without the unchosen tensors' weight gradients, a forward at w + ε, and a pass on
        /// γ of the examples.
        public var passesPerStep: Double {
            let clean = 1 - (1 - Double(esamBeta)) / 3
            return esamGamma >= 1 ? clean + 1 : clean + 1.0 / 3 + Double(esamGamma)
        }

        public func validate() throws {
            if !(esamBeta > 0 && esamBeta <= 1) { throw SAMTrainError("--esam-beta \(esamBeta): must be in (0, 1]") }
            if !(esamGamma > 0 && esamGamma <= 1) { throw SAMTrainError("--esam-gamma \(esamGamma): must be in (0, 1]") }
        }

        public func makeVariant(_ shared: AscentSettings, all: VariantSet) throws -> SAMVariant {
            ESAM(rho: shared.rho, beta: esamBeta, gamma: esamGamma, normEps: shared.normEps)
        }
    }
}
