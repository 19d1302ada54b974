import ArgumentParser
import SAMTrain

/// The SAM-family flags, shared by `train` and `bench`.
struct SAMOptions: ParsableArguments {
    @Option(help: "Variant: none, sam, asam, bisam or bsam.")
    var sam: String = "sam"

    @Option(help: "Perturbation radius ρ (default 0.05; ASAM 0.5).")
    var rho: Float?

    @Option(name: .customLong("p"), help: "SAM's norm: 2, inf, or any p > 1.")
    var p: String = "2"

    @Option(help: "δ added to the ascent norm (default 1e-12; ASAM weights scope 1e-16).")
    var normEps: Double?

    @Option(help: "Perturbation scope: shard (m-sharpness) or global (one ε for the whole batch).")
    var scope: String = "shard"

    @Option(name: .customLong("m"), help: "Examples per perturbation under --scope shard (default: the per-rank batch).")
    var m: Int?

    @Option(help: "Cross-entropy label smoothing (default 0; 0.1 for bisam and bsam).")
    var labelSmoothing: Float?

    @Flag(help: "Put 0.5·wd·‖w‖² in the loss of every pass (Google's SAM) instead of decaying in the optimizer.")
    var wdInAscent = false

    @Option(help: "Clip the averaged update direction to this global norm.")
    var clipGradNorm: Float?

    @Option(help: "ASAM: T = |w|+η on weights only (official) or on all tensors (davda54).")
    var asamScope: String = "weights"

    @Option(help: "ASAM's η (default 0.01 for the weights scope, 0 for all).")
    var asamEta: Float?

    @Option(help: "BiSAM's lower bound of the 0-1 loss: log or tanh.")
    var bisamPhi: String = "log"

    @Option(help: "BiSAM's μ.")
    var mu: Float = 1

    @Option(help: "BiSAM's α (tanh bound).")
    var alpha: Float = 0.1

    @Option(help: "BSAM: ρ_min at the largest learning rate.")
    var rhoMinMax: Float = 0.05

    @Option(help: "BSAM: ρ_min at the smallest learning rate.")
    var rhoMinMin: Float = 0

    func configuration() throws -> SAMConfiguration {
        var c = SAMConfiguration()
        guard let variant = SAMConfiguration.Variant(rawValue: sam) else {
            throw ValidationError("--sam \(sam): unknown variant; choose one of none, sam, asam, bisam, bsam")
        }
        c.variant = variant
        c.rho = rho
        c.p = p
        c.normEps = normEps
        switch scope {
        case "global": c.globalScope = true
        case "shard": c.globalScope = false
        default: throw ValidationError("--scope \(scope): choose shard or global")
        }
        c.m = m
        guard let asam = SAMConfiguration.ASAMScope(rawValue: asamScope) else {
            throw ValidationError("--asam-scope \(asamScope): choose weights or all")
        }
        c.asamScope = asam
        c.asamEta = asamEta
        guard let phi = SAMConfiguration.BiSAMPhi(rawValue: bisamPhi) else {
            throw ValidationError("--bisam-phi \(bisamPhi): choose log or tanh")
        }
        c.bisamPhi = phi
        c.mu = mu
        c.alpha = alpha
        c.rhoMinMax = rhoMinMax
        c.rhoMinMin = rhoMinMin
        c.weightDecayInAscent = wdInAscent
        c.clipGradNorm = clipGradNorm
        do { try c.validate() } catch let e as SAMTrainError { throw ValidationError(e.message) }
        return c
    }
}
