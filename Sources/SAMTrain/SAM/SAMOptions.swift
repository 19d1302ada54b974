import ArgumentParser

/// The SAM-family flags of `train` and `bench` that every variant shares: the variant, ρ, δ,
/// the scope, label smoothing, weight decay in the loss, clipping. Each variant's own flags
/// are its group in `VariantRegistry` (one `--help` section per variant), beside this one;
/// `configuration(variants:)` joins the two.
public struct SAMOptions: SettingsGroup {
    @Option(help: ArgumentHelp("The variant (\(SAMOptions.variantList)).", valueName: "variant"))
    public var sam: VariantName = .sam

    @Option(help: ArgumentHelp("Perturbation radius ρ (default: the variant's; \(SAMOptions.defaults { $0.defaultRho.map { "\($0)" } })).", valueName: "rho"))
    public var rho: Float?

    @Option(help: ArgumentHelp("δ added to the ascent norm (default: the variant's; \(SAMOptions.defaults { "\($0.defaultNormEps)" })).", valueName: "norm-eps"))
    public var normEps: Double?

    @Option(help: "Perturbation scope: shard (m-sharpness) or global (one ε for the whole batch).")
    public var scope: ScopeName = .shard

    @Option(name: .customLong("m"), help: "Examples per perturbation under --scope shard (default: the per-rank batch).")
    public var m: Int?

    @Option(help: ArgumentHelp("Cross-entropy label smoothing s: 1 − s on the true class, s/(K−1) on each other (PyTorch's label_smoothing t is s = t·(K−1)/K) (default: the variant's; \(SAMOptions.defaults { "\($0.defaultLabelSmoothing)" })).", valueName: "label-smoothing"))
    public var labelSmoothing: Float?

    @Flag(help: "Put 0.5·wd·‖w‖² in the loss of every pass (Google's SAM) instead of decaying in the optimizer.")
    public var wdInAscent = false

    @Option(help: "Clip the averaged update direction to this global norm.")
    public var clipGradNorm: Float?

    @Option(help: ArgumentHelp("A SAM step every K steps (step index mod K = 0); plain base-optimizer steps on the clean gradient between.", valueName: "K"))
    public var samEvery: Int = 1

    @Option(help: ArgumentHelp("Plain base-optimizer steps until this fraction of all steps, then SAM steps (0.8: SAM in the last 20 %).", valueName: "F"))
    public var samFrom: Double = 0

    public init() {}

    /// `name: summary` for every variant, for `--sam`'s help.
    static var variantList: String {
        VariantRegistry.defaults.names.map { name in "\(name): \(type(of: VariantRegistry.defaults[name]!).summary)" }
            .joined(separator: "; ")
    }

    /// "V1 for a, b; V2 for c" over the variants' default settings (nil: no value).
    static func defaults(_ value: (any VariantOptions) -> String?) -> String {
        var groups: [(value: String, names: [String])] = []
        for name in VariantRegistry.defaults.names {
            guard let v = value(VariantRegistry.defaults[name]!.resolved(all: VariantRegistry.defaults)) else { continue }
            if let i = groups.firstIndex(where: { $0.value == v }) { groups[i].names.append(name) } else { groups.append((v, [name])) }
        }
        return groups.sorted { $0.names.count > $1.names.count }
            .map { g in g.names.count > 4 ? "\(g.value) for the others" : "\(g.value) for \(g.names.joined(separator: ", "))" }
            .sorted { !$0.hasSuffix("others") && $1.hasSuffix("others") }
            .joined(separator: "; ")
    }

    /// The run's SAM settings: the chosen variant with the shared flags.
    public func configuration(variants: VariantRegistry) -> SAMConfiguration {
        var c = SAMConfiguration()
        c.variant = sam
        c.variants = VariantSet(variants)
        c.rho = rho
        c.normEps = normEps
        c.scopeName = scope
        c.m = m
        c.labelSmoothing = labelSmoothing
        c.weightDecayInAscent = wdInAscent
        c.clipGradNorm = clipGradNorm
        c.schedule = AscentSchedule(every: samEvery, from: samFrom)
        return c
    }

    /// These options with the variant's defaults filled in for ρ (none for a variant without
    /// a radius), δ and label smoothing: the values a run uses and records.
    public func resolved(variants: VariantRegistry) -> SAMOptions {
        let c = configuration(variants: variants)
        var o = self
        o.rho = c.options.defaultRho == nil ? nil : c.effectiveRho
        o.normEps = c.effectiveNormEps
        o.labelSmoothing = c.effectiveLabelSmoothing
        return o
    }

}
