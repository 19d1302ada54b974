import ArgumentParser

/// The SAM settings of a run (docs/algorithms.md §1–§3): the variant, the flags every variant
/// shares, and every variant's own settings (`VariantSet`), from flags or a vector file.
public struct SAMConfiguration {
    public var variant: VariantName = .sam
    /// Every variant's settings (the chosen one's are `options`).
    public var variants: VariantSet = VariantRegistry.defaults
    /// nil: the variant's default (`VariantOptions.defaultRho`).
    public var rho: Float?
    /// nil: the variant's default (`VariantOptions.defaultNormEps`).
    public var normEps: Double?
    public var scopeName: ScopeName = .shard
    /// Examples per perturbation under the shard scope; nil = the per-rank batch.
    public var m: Int?
    public var weightDecayInAscent = false
    public var clipGradNorm: Float?

    public init() {}

    /// A configuration of `variant` with its defaults.
    public init(_ variant: String) {
        self.variant = VariantName(argument: variant)!
    }

    /// The chosen variant's settings.
    public var options: any VariantOptions { variants[variant.rawValue]!.resolved(all: variants) }

    /// Whether the variant perturbs at all (`--sam none` is the base optimizer alone).
    public var perturbs: Bool { variant != .none }

    public var globalScope: Bool { scopeName == .global }
    public var scope: PerturbationScope { globalScope ? .global : .shard(m: m) }

    public var effectiveRho: Float { rho ?? options.defaultRho ?? 0 }
    public var effectiveNormEps: Double { normEps ?? options.defaultNormEps }

    /// Checks the values that need no knowledge of the data or ranks.
    public func validate() throws {
        if let rho, !(rho > 0) || !rho.isFinite { throw SAMTrainError("--rho \(rho): must be a positive number") }
        if let normEps, !(normEps >= 0) { throw SAMTrainError("--norm-eps \(normEps): must be ≥ 0") }
        if let clipGradNorm, !(clipGradNorm > 0) { throw SAMTrainError("--clip-grad-norm \(clipGradNorm): must be positive") }
        if globalScope, let m { throw SAMTrainError("--m \(m) is for --scope shard; --scope global shares one ε over the whole batch") }
        var options = self.options
        // The variant's own checks (its flags' `validate()`, which ArgumentParser also runs on
        // the command line); the message as they give it.
        do { try options.validate() } catch let e as SAMTrainError { throw e } catch { throw SAMTrainError("\(error)") }
    }

    /// The variant object for this configuration.
    public func makeVariant() throws -> SAMVariant {
        try validate()
        return try options.makeVariant(AscentSettings(rho: effectiveRho, normEps: effectiveNormEps), all: variants)
    }

    /// The SAM settings a resumed run must agree on: the shared ones and the variant's own.
    public var resultDefiningSettings: [String: String] {
        var s: [String: String] = [
            "sam": variant.rawValue, "norm_eps": "\(effectiveNormEps)",
            "scope": scopeName.rawValue, "m": m.map(String.init) ?? "per-rank batch",
            "wd_in_ascent": "\(weightDecayInAscent)", "clip_grad_norm": clipGradNorm.map { "\($0)" } ?? "off",
        ]
        if options.defaultRho != nil { s["rho"] = "\(effectiveRho)" }
        s.merge(options.resultDefiningSettings) { a, _ in a }
        return s
    }
}

/// `--scope`: which examples share one ε (docs/algorithms.md §3).
public enum ScopeName: String, CaseIterable, ExpressibleByArgument, Sendable {
    case shard, global
}
