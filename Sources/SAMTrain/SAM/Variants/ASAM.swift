import ArgumentParser

/// Adaptive SAM (Kwon et al. 2021): the ascent in a scale-invariant metric,
/// ε = ρ·T²⊙g / (‖T⊙g‖₂ + δ) with T = |w| + η (docs/algorithms.md §2.2).
public final class ASAM: SAMVariant {
    public let name = "asam"
    public let rho: Float
    public let eta: Float
    public let normEps: Double
    /// `weights`: T on weights and BatchNorm γ, T = 1 on biases and β (the official code);
    /// `all`: T on every tensor (davda54's `adaptive=True`).
    public let scope: Scope

    public init(rho: Float, eta: Float, normEps: Double, scope: Scope) {
        self.rho = rho
        self.eta = eta
        self.normEps = normEps
        self.scope = scope
    }

    func isScaled(_ role: ParameterRole) -> Bool {
        scope == .all || role == .weight || role == .normWeight
    }

    public func direction(of shard: Shard, with passes: ShardPasses, to target: DirectionTarget, context: StepContext) -> ShardDirection {
        let g = passes.cleanPass(shard)
        passes.timer.measure(.ascent) { ascent(gradient: g, weights: passes.weights, parameters: passes.parameters, into: passes.epsilon) }
        return passes.perturbedPass(shard, offset: passes.epsilon, direction: target)
    }

    /// ε = ρ·T²⊙g / (‖T⊙g‖₂ + δ), written into `epsilon`.
    public func ascent(gradient g: FlatBuffer, weights: FlatBuffer, parameters: [ParameterSlot], into epsilon: FlatBuffer) {
            let w = weights.data, gp = g.data, e = epsilon.data
            // Pass 1: e = T²⊙g, and ‖T⊙g‖².
            var sum = 0.0
            for slot in parameters {
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
            epsilon.scale(by: Float(Double(rho) / (sum.squareRoot() + normEps)))
    }

    /// `--asam-scope`.
    public enum Scope: String, CaseIterable, ExpressibleByArgument, Sendable { case weights, all }

    public struct Options: VariantOptions {
        public static let name = "asam"
        public static let summary = "adaptive SAM (Kwon et al.)"

        @Option(help: "T = |w|+η on weights only (official code) or on all tensors (davda54).")
        public var asamScope: Scope = .weights

        @Option(help: "ASAM's η (default 0.01 for the weights scope, 0 for all).")
        public var asamEta: Float?

        public init() {}

        public var defaultRho: Float? { 0.5 }
        public var defaultNormEps: Double { asamScope == .weights ? 1e-16 : 1e-12 }
        public var effectiveEta: Float { asamEta ?? (asamScope == .weights ? 0.01 : 0) }

        /// η filled in (a checkpoint records the η the run used).
        public func resolved(all: VariantSet) -> Options {
            var o = self
            o.asamEta = effectiveEta
            return o
        }
        public var passesPerStep: Double { 2 }

        public func validate() throws {
            if let asamEta, !(asamEta >= 0) { throw SAMTrainError("--asam-eta \(asamEta): must be ≥ 0") }
        }

        public mutating func read(vector: VectorSettings) throws {
            if let s = try vector.choice("asam_scope", Scope.self) { asamScope = s }
            if let eta = try vector.float("asam_eta") { asamEta = eta }
        }

        public func makeVariant(_ shared: AscentSettings, all: VariantSet) throws -> SAMVariant {
            ASAM(rho: shared.rho, eta: effectiveEta, normEps: shared.normEps, scope: asamScope)
        }
    }
}
