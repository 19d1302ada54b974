/// Adaptive SAM (Kwon et al. 2021): the ascent in a scale-invariant metric,
/// ε = ρ·T²⊙g / (‖T⊙g‖₂ + δ) with T = |w| + η (SPEC §2).
public final class ASAM: SAMVariant {
    public let name = "asam"
    public let passesPerStep = 2
    public let rho: Float
    public let eta: Float
    public let normEps: Double
    /// `weights`: T on weights and BatchNorm γ, T = 1 on biases and β (the official code);
    /// `all`: T on every tensor (davda54's `adaptive=True`).
    public let scope: SAMConfiguration.ASAMScope

    public init(rho: Float, eta: Float, normEps: Double, scope: SAMConfiguration.ASAMScope) {
        self.rho = rho
        self.eta = eta
        self.normEps = normEps
        self.scope = scope
    }

    func isScaled(_ role: ParameterRole) -> Bool {
        scope == .all || role == .weight || role == .normWeight
    }

    public func direction(for shard: ShardPasses, context: StepContext) -> FlatBuffer {
        let g = shard.cleanPass()
        shard.timer.measure(.ascent) {
            let w = shard.weights.data, gp = g.data, e = shard.epsilon.data
            // Pass 1: e = T²⊙g, and ‖T⊙g‖².
            var sum = 0.0
            for slot in shard.parameters {
                let range = slot.offset..<(slot.offset + slot.count)
                if isScaled(slot.role) {
                    for i in range {
                        let t = abs(w[i]) + eta, tg = t * gp[i]
                        sum += Double(tg) * Double(tg)
                        e[i] = t * tg
                    }
                } else {
                    for i in range { sum += Double(gp[i]) * Double(gp[i]); e[i] = gp[i] }
                }
            }
            // Pass 2: scale.
            shard.epsilon.scale(by: Float(Double(rho) / (sum.squareRoot() + normEps)))
        }
        return shard.perturbedPass(offset: shard.epsilon, yieldsDirection: true)
    }
}
