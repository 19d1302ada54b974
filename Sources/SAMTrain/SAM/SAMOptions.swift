import ArgumentParser

/// The SAM-family flags of `train` and `bench`: the variant, the flags every variant shares,
/// and each variant's own group (`VariantRegistry`, one `--help` section per variant).
public struct SAMOptions: ParsableArguments {
    @Option(help: ArgumentHelp("The variant (\(SAMOptions.variantList)).", valueName: "variant"))
    public var sam: VariantName = .sam

    @Option(help: "Perturbation radius ρ (default: the variant's; 0.05 for most, ASAM 0.5).")
    public var rho: Float?

    @Option(help: "δ added to the ascent norm (default 1e-12; ASAM weights scope 1e-16).")
    public var normEps: Double?

    @Option(help: "Perturbation scope: shard (m-sharpness) or global (one ε for the whole batch).")
    public var scope: ScopeName = .shard

    @Option(name: .customLong("m"), help: "Examples per perturbation under --scope shard (default: the per-rank batch).")
    public var m: Int?

    @Option(help: "Cross-entropy label smoothing (default 0; 0.1 for bisam and bsam).")
    public var labelSmoothing: Float?

    @Flag(help: "Put 0.5·wd·‖w‖² in the loss of every pass (Google's SAM) instead of decaying in the optimizer.")
    public var wdInAscent = false

    @Option(help: "Clip the averaged update direction to this global norm.")
    public var clipGradNorm: Float?

    @OptionGroup public var variants: VariantRegistry

    public init() {}

    /// `name: summary` for every variant, for `--sam`'s help.
    static var variantList: String {
        VariantRegistry.defaults.names.map { name in "\(name): \(type(of: VariantRegistry.defaults[name]!).summary)" }
            .joined(separator: "; ")
    }

    public func configuration() throws -> SAMConfiguration {
        var c = SAMConfiguration()
        c.variant = sam
        c.variants = VariantSet(variants)
        c.rho = rho
        c.normEps = normEps
        c.scopeName = scope
        c.m = m
        c.weightDecayInAscent = wdInAscent
        c.clipGradNorm = clipGradNorm
        do { try c.validate() } catch let e as SAMTrainError { throw ValidationError(e.message) }
        return c
    }
}
