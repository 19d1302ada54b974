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
    /// nil: the variant's default (`VariantOptions.defaultLabelSmoothing`).
    public var labelSmoothing: Float?
    public var weightDecayInAscent = false
    public var clipGradNorm: Float?
    /// Which steps are SAM steps (`--sam-every`, `--sam-from`).
    public var schedule = AscentSchedule()

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
    public var effectiveLabelSmoothing: Float { labelSmoothing ?? options.defaultLabelSmoothing }

    /// Checks the values that need no knowledge of the data or ranks.
    public func validate() throws {
        if let rho, !(rho > 0) || !rho.isFinite { throw SAMTrainError("--rho \(rho): must be a positive number") }
        if let normEps, !(normEps >= 0) { throw SAMTrainError("--norm-eps \(normEps): must be ≥ 0") }
        if let s = labelSmoothing, !(s >= 0 && s < 1) { throw SAMTrainError("--label-smoothing \(s): must be in [0, 1)") }
        try schedule.validate()
        if let clipGradNorm, !(clipGradNorm > 0) { throw SAMTrainError("--clip-grad-norm \(clipGradNorm): must be positive") }
        if globalScope, let m { throw SAMTrainError("--m \(m) is for --scope shard; --scope global shares one ε over the whole batch") }
        // The variant's own checks (its flags' `validate()`, which ArgumentParser also runs on
        // the command line).
        var options = self.options
        try options.validate()
    }

    /// The variant object for this configuration.
    public func makeVariant() throws -> SAMVariant {
        try validate()
        return try options.makeVariant(AscentSettings(rho: effectiveRho, normEps: effectiveNormEps), all: variants)
    }

    /// The chosen variant's own settings (resolved: SAM-ON's include its base's).
    public var variantSettings: [DeclaredSetting] { options.declaredSettings }

    /// Refuses a flag of a variant other than the chosen one (or one whose flags it uses,
    /// SAM-ON's base): `--sam sam --looksam-k 3` would otherwise be silently ignored.
    public func checkVariantFlags(given arguments: [String]) throws {
        let allowed = Set([variant.rawValue] + options.usesFlagsOf)
        for name in VariantRegistry.names where !allowed.contains(name) {
            let other = VariantRegistry.defaults[name]!
            for flag in DeclaredSettings.flags(of: type(of: other)) {
                guard let given = arguments.first(where: { $0 == flag || $0.hasPrefix(flag + "=") }) else { continue }
                throw SAMTrainError("\(given.split(separator: "=").first ?? "\(flag)") is a flag of --sam \(name) (\(type(of: other).summary)); this run uses --sam \(variant.rawValue): drop the flag or choose --sam \(name)")
            }
        }
    }
}

/// `--scope`: which examples share one ε (docs/algorithms.md §3).
public enum ScopeName: String, CaseIterable, ExpressibleByArgument, Sendable {
    case shard, global
}
