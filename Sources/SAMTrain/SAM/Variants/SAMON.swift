import ArgumentParser

/// SAM-ON (Mueller et al., NeurIPS 2023): SAM or ASAM whose ε is non-zero only on the
/// normalization layers' γ and β, the norm taken over those tensors only (docs/algorithms.md §2.9). The
/// base's ascent applied to the clean gradient with every other tensor zeroed gives exactly
/// that: zero entries add nothing to the norm and get ε = 0 (sign(0) = 0 for p = ∞).
public final class SAMON: SAMVariant {
    public let name = "samon"
    /// The base's ascent: ε for a gradient, written into the buffer given.
    let ascent: (_ gradient: FlatBuffer, _ weights: FlatBuffer, _ parameters: [ParameterSlot], _ epsilon: FlatBuffer) -> Void
    private var masked = FlatBuffer(count: 0)

    init(ascent: @escaping (FlatBuffer, FlatBuffer, [ParameterSlot], FlatBuffer) -> Void) {
        self.ascent = ascent
    }

    static func isNormalization(_ role: ParameterRole) -> Bool { role == .normWeight || role == .normBias }

    public func check(model: Sequential) throws {
        guard model.store.parameters.contains(where: { SAMON.isNormalization($0.role) }) else {
            throw SAMTrainError("--sam samon perturbs only normalization layers, and this model has none; pick a model with BatchNorm or LayerNorm (cnn, the ResNets, the ViTs)")
        }
    }

    public func direction(of shard: Shard, with passes: ShardPasses, to target: DirectionTarget, context: StepContext) -> ShardDirection {
        if masked.count != passes.weights.count { masked = FlatBuffer(count: passes.weights.count) }
        let g = passes.cleanPass(shard)
        passes.timer.measure(.ascent) {
            masked.zero()
            for slot in passes.parameters where SAMON.isNormalization(slot.role) {
                (masked.data + slot.offset).update(from: g.data + slot.offset, count: slot.count)
            }
            ascent(masked, passes.weights, passes.parameters, passes.epsilon)
        }
        return passes.perturbedPass(shard, offset: passes.epsilon, direction: target)
    }

    /// `--samon-base`.
    public enum Base: String, CaseIterable, ExpressibleByArgument, Sendable { case sam, asam }

    public struct Options: VariantOptions {
        public static let name = "samon"
        public static let summary = "SAM or ASAM on the normalization layers only (Mueller et al.)"

        @Option(help: "SAM-ON's base: sam (with its --p) or asam (with its --asam-scope, --asam-eta); ρ and δ default to the base's.")
        public var samonBase: Base = .sam

        public init() {}

        /// The base's settings (`resolved`): its defaults and result-defining settings are SAM-ON's.
        var base = Unparsed<any VariantOptions>()

        public func resolved(all: VariantSet) -> Options {
            var o = self
            o.base.value = samonBase == .sam ? all.options(SAM.Options.self).resolved(all: all) : all.options(ASAM.Options.self).resolved(all: all)
            return o
        }

        public var defaultRho: Float? { base.value?.defaultRho ?? 0.05 }
        public var defaultNormEps: Double { base.value?.defaultNormEps ?? 1e-12 }
        public var passesPerStep: Double { 2 }
        public var declaredSettings: [DeclaredSetting] { (base.value?.declaredSettings ?? []) + DeclaredSettings.of(self) }
        public var usesFlagsOf: [String] { [samonBase.rawValue] }

        public func makeVariant(_ shared: AscentSettings, all: VariantSet) throws -> SAMVariant {
            switch samonBase {
            case .sam:
                let norm = all.options(SAM.Options.self).p
                return SAMON { g, _, _, e in samAscent(gradient: g, rho: shared.rho, norm: norm, normEps: shared.normEps, into: e) }
            case .asam:
                let a = all.options(ASAM.Options.self)
                let asam = ASAM(rho: shared.rho, eta: a.effectiveEta, normEps: shared.normEps, scope: a.asamScope)
                return SAMON { g, w, slots, e in asam.ascent(gradient: g, weights: w, parameters: slots, into: e) }
            }
        }
    }
}
