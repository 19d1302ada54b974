import ArgumentParser
import Foundation

/// The dual-norm exponent of SAM's ascent (Foret et al. eq. 2).
public enum AscentNorm: Equatable, Sendable, CustomStringConvertible, ExpressibleByArgument {
    case l2
    case infinity
    /// 1 < p < ∞
    case p(Double)

    public init?(argument: String) {
        guard let norm = try? AscentNorm.parse(argument) else { return nil }
        self = norm
    }

    public static func parse(_ text: String) throws -> AscentNorm {
        switch text.lowercased() {
        case "2", "2.0": return .l2
        case "inf", "infinity", "∞": return .infinity
        default:
            guard let p = Double(text), p > 1, p.isFinite else {
                throw SAMTrainError("--p \(text): must be a number greater than 1, or inf")
            }
            return p == 2 ? .l2 : .p(p)
        }
    }

    public var description: String {
        switch self {
        case .l2: return "2"
        case .infinity: return "inf"
        case .p(let p): return "\(p)"
        }
    }
}

/// The ascent step of SAM: ε maximizing ⟨ε, g⟩ under ‖ε‖_p ≤ ρ (docs/algorithms.md §2.1), one joint norm
/// over all parameters, written into `epsilon` in one or two passes.
public func samAscent(gradient g: FlatBuffer, rho: Float, norm: AscentNorm, normEps: Double, into epsilon: FlatBuffer) {
    let n = g.count, gp = g.data, e = epsilon.data
    switch norm {
    case .l2:
        let scale = samAscentScale(gradientNorm: g.norm(), rho: rho, normEps: normEps)
        for i in 0..<n { e[i] = scale * gp[i] }
    case .infinity:
        for i in 0..<n { e[i] = gp[i] > 0 ? rho : (gp[i] < 0 ? -rho : 0) }
    case .p(let p):
        // ε = ρ·sign(g)·|g|^(q−1) / (‖g‖_q^q + δ)^(1/p), with 1/p + 1/q = 1.
        let q = p / (p - 1)
        var sum = 0.0
        for i in 0..<n { sum += pow(abs(Double(gp[i])), q) }
        let scale = Double(rho) / pow(sum + normEps, 1 / p)
        for i in 0..<n {
            let v = Double(gp[i])
            e[i] = v == 0 ? 0 : Float((v < 0 ? -scale : scale) * pow(abs(v), q - 1))
        }
    }
}

/// ρ / (‖g‖₂ + δ): SAM's ε for p = 2 is this times g.
public func samAscentScale(gradientNorm: Double, rho: Float, normEps: Double) -> Float {
    Float(Double(rho) / (gradientNorm + normEps))
}

/// SAM (Foret et al. 2021): descend along the gradient taken at the worst nearby point.
public final class SAM: SAMVariant {
    public let name = "sam"
    public let rho: Float
    public let norm: AscentNorm
    public let normEps: Double

    public init(rho: Float, norm: AscentNorm = .l2, normEps: Double = 1e-12) {
        self.rho = rho
        self.norm = norm
        self.normEps = normEps
    }

    public func direction(of shard: Shard, with passes: ShardPasses, to target: DirectionTarget, context: StepContext) -> ShardDirection {
        if norm == .l2 {
            // ε = ρ·g/(‖g‖ + δ) goes straight into the perturbed weights (one pass less).
            return passes.perturbedPassAlongCleanGradient(shard, direction: target) {
                samAscentScale(gradientNorm: $0, rho: rho, normEps: normEps)
            }
        }
        let g = passes.cleanPass(shard)
        passes.timer.measure(.ascent) {
            samAscent(gradient: g, rho: rho, norm: norm, normEps: normEps, into: passes.epsilon)
        }
        return passes.perturbedPass(shard, offset: passes.epsilon, direction: target)
    }
}

extension SAM {
    public struct Options: VariantOptions {
        public static let name = "sam"
        public static let summary = "SAM (Foret et al.)"

        @Option(name: .customLong("p"), help: "The ascent's norm: 2, inf, or any p > 1.")
        public var p: AscentNorm = .l2

        public init() {}

        public var passesPerStep: Double { 2 }

        public mutating func read(vector: VectorSettings) throws {
            if let text = try vector.string("p") { p = try AscentNorm.parse(text == "2.0" ? "2" : text) }
        }

        public func makeVariant(_ shared: AscentSettings, all: VariantSet) throws -> SAMVariant {
            SAM(rho: shared.rho, norm: p, normEps: shared.normEps)
        }
    }
}
