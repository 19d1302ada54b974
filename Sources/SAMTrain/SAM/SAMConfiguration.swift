/// The SAM settings of a run (SPEC §2, §3, §9), from flags or a vector file.
public struct SAMConfiguration: Equatable, Sendable, Codable {
    public enum Variant: String, Codable, CaseIterable, Sendable {
        case none, sam, asam, bisam, bsam
    }
    public enum ASAMScope: String, Codable, CaseIterable, Sendable { case weights, all }
    public enum BiSAMPhi: String, Codable, CaseIterable, Sendable { case log, tanh }

    public var variant: Variant = .sam
    /// nil: the variant's default (0.05, ASAM 0.5).
    public var rho: Float?
    public var p: String = "2"
    /// nil: 1e-12 (ASAM `weights` scope: 1e-16, the official code's).
    public var normEps: Double?
    public var globalScope = false
    /// Examples per perturbation under the shard scope; nil = the per-rank batch.
    public var m: Int?
    public var asamScope: ASAMScope = .weights
    /// nil: 0.01 for the `weights` scope, 0 for `all`.
    public var asamEta: Float?
    public var bisamPhi: BiSAMPhi = .log
    public var mu: Float = 1
    public var alpha: Float = 0.1
    public var rhoMinMax: Float = 0.05
    public var rhoMinMin: Float = 0
    public var weightDecayInAscent = false
    public var clipGradNorm: Float?

    public init() {}

    public var scope: PerturbationScope { globalScope ? .global : .shard(m: m) }

    public var effectiveRho: Float { rho ?? (variant == .asam ? 0.5 : 0.05) }

    public var effectiveNormEps: Double {
        normEps ?? (variant == .asam && asamScope == .weights ? 1e-16 : 1e-12)
    }

    public var effectiveASAMEta: Float { asamEta ?? (asamScope == .weights ? 0.01 : 0) }

    /// Checks the values that need no knowledge of the data or ranks.
    public func validate() throws {
        if let rho, !(rho > 0) || !rho.isFinite { throw SAMTrainError("--rho \(rho): must be a positive number") }
        _ = try AscentNorm.parse(p)
        if let normEps, !(normEps >= 0) { throw SAMTrainError("--norm-eps \(normEps): must be ≥ 0") }
        if let clipGradNorm, !(clipGradNorm > 0) { throw SAMTrainError("--clip-grad-norm \(clipGradNorm): must be positive") }
        if let asamEta, !(asamEta >= 0) { throw SAMTrainError("--asam-eta \(asamEta): must be ≥ 0") }
        if !(mu > 0) { throw SAMTrainError("--mu \(mu): must be positive") }
        if !(alpha > 0) { throw SAMTrainError("--alpha \(alpha): must be positive") }
        if !(rhoMinMax >= rhoMinMin) || rhoMinMin < 0 {
            throw SAMTrainError("--rho-min-max \(rhoMinMax) must be ≥ --rho-min-min \(rhoMinMin) ≥ 0")
        }
        if globalScope, let m { throw SAMTrainError("--m \(m) is for --scope shard; --scope global shares one ε over the whole batch") }
    }

    /// The variant object for this configuration.
    public func makeVariant() throws -> SAMVariant {
        try validate()
        switch variant {
        case .none:
            return NoPerturbation()
        case .sam:
            return SAM(rho: effectiveRho, norm: try AscentNorm.parse(p), normEps: effectiveNormEps)
        case .asam:
            return ASAM(rho: effectiveRho, eta: effectiveASAMEta, normEps: effectiveNormEps, scope: asamScope)
        case .bisam:
            return BiSAM(rho: effectiveRho, normEps: effectiveNormEps, phi: bisamPhi, mu: mu, alpha: alpha)
        case .bsam:
            return BSAM(rho: effectiveRho, normEps: effectiveNormEps, rhoMinMax: rhoMinMax, rhoMinMin: rhoMinMin)
        }
    }
}
