import ArgumentParser

/// Bilateral SAM (Deng et al.): besides the worst point w + ε it looks at a flat nearby
/// point w − ε_min, three passes (docs/algorithms.md §2.4):
///   g0 = ∇L(w); g_max = ∇L(w + ρ·ĝ0); g_min = ∇L(w − ρ_min,t·ĝ0), ĝ0 = g0/(‖g0‖+δ);
///   d = g_max + g0 − (‖g_max‖/‖g_min‖)·g_min   (d = g_max when ‖g_min‖ = 0).
/// ρ_min,t follows the learning rate between `rhoMinMin` and `rhoMinMax`. Under a shard
/// spanning several ranks, g_max and g_min are group averages before they are combined.
public final class BSAM: SAMVariant {
    public let name = "bsam"
    public let rho: Float
    public let normEps: Double
    public let rhoMinMax: Float
    public let rhoMinMin: Float
    /// ρ_min for each step, when given explicitly (conformance files) instead of following lr.
    public var rhoMinPerStep: [Float]?
    private var cleanGradient = FlatBuffer(count: 0)
    private var maxGradient = FlatBuffer(count: 0)

    public init(rho: Float, normEps: Double, rhoMinMax: Float, rhoMinMin: Float) {
        self.rho = rho
        self.normEps = normEps
        self.rhoMinMax = rhoMinMax
        self.rhoMinMin = rhoMinMin
    }

    public func rhoMin(_ c: StepContext) -> Float {
        if let list = rhoMinPerStep, c.step < list.count { return list[c.step] }
        return c.radius(from: rhoMinMin, to: rhoMinMax)
    }

    public func direction(of shard: Shard, with passes: ShardPasses, to target: DirectionTarget, context: StepContext) -> ShardDirection {
        if cleanGradient.count != passes.weights.count {
            cleanGradient = FlatBuffer(count: passes.weights.count)
            maxGradient = FlatBuffer(count: passes.weights.count)
        }
        passes.cleanPass(shard)
        passes.keepGradient(in: &cleanGradient)
        let g0 = cleanGradient
        let g0Norm = g0.norm()
        let unit = Float(1 / (g0Norm + normEps))
        passes.perturbedPass(shard, along: g0, scaledBy: rho * unit, point: .ascent, groupAverage: true, normOfAlong: g0Norm)
        passes.keepGradient(in: &maxGradient)
        let gMin = passes.perturbedPass(shard, along: g0, scaledBy: -rhoMin(context) * unit, point: .minimum, groupAverage: true)

        // d = g_max + g0 − (‖g_max‖/‖g_min‖)·g_min, written over g_min's buffer.
        passes.timer.measure(.ascent) {
            let minNorm = gMin.norm()
            let ratio = minNorm == 0 ? 0 : Float(maxGradient.norm() / minNorm)
            let d = gMin.data, gmax = maxGradient.data, gc = g0.data
            for i in 0..<gMin.count { d[i] = gmax[i] + gc[i] - ratio * d[i] }
            if minNorm == 0 {
                gMin.copy(from: maxGradient)
            }
        }
        return .computed(gMin)
    }
}

extension BSAM {
    public struct Options: VariantOptions {
        public static let name = "bsam"
        public static let summary = "bilateral SAM (Deng et al.)"

        @Option(help: "BSAM: ρ_min at the largest learning rate.")
        public var rhoMinMax: Float = 0.05

        @Option(help: "BSAM: ρ_min at the smallest learning rate.")
        public var rhoMinMin: Float = 0

        /// ρ_min of each step as a vector file gives it (instead of following the rate).
        public var rhoMinPerStep: [Float]?

        public init() {}

        public var defaultLabelSmoothing: Float { 0.1 }
        public var passesPerStep: Double { 3 }

        public func validate() throws {
            if !(rhoMinMax >= rhoMinMin) || !(rhoMinMin >= 0) {
                throw SAMTrainError("--rho-min-max \(rhoMinMax) must be ≥ --rho-min-min \(rhoMinMin) ≥ 0")
            }
        }

        public mutating func read(vector: VectorSettings) throws {
            rhoMinPerStep = try vector.perStep("rho_min")
        }

        public func makeVariant(_ shared: AscentSettings, all: VariantSet) throws -> SAMVariant {
            let v = BSAM(rho: shared.rho, normEps: shared.normEps, rhoMinMax: rhoMinMax, rhoMinMin: rhoMinMin)
            v.rhoMinPerStep = rhoMinPerStep
            return v
        }
    }
}
