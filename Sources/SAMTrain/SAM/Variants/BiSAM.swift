import ArgumentParser
import Foundation

/// BiSAM (Xie et al. 2024): the ascent maximizes a lower bound of the 0-1 loss instead of
/// the cross-entropy; the descent is the usual cross-entropy at w + ε (docs/algorithms.md §2.3).
public final class BiSAM: SAMVariant {
    public let name = "bisam"
    public let rho: Float
    public let normEps: Double
    public let ascentLoss: BiSAMLowerBoundLoss

    public init(rho: Float, normEps: Double, phi: Phi, mu: Float, alpha: Float) {
        self.rho = rho
        self.normEps = normEps
        ascentLoss = BiSAMLowerBoundLoss(phi: phi, mu: Double(mu), alpha: Double(alpha))
    }

    public func direction(of shard: Shard, with passes: ShardPasses, to target: DirectionTarget, context: StepContext) -> ShardDirection {
        let gradQ = passes.cleanPass(shard, objective: ascentLoss)
        passes.timer.measure(.ascent) {
            samAscent(gradient: gradQ, rho: rho, norm: .l2, normEps: normEps, into: passes.epsilon)
        }
        return passes.perturbedPass(shard, offset: passes.epsilon, direction: target)
    }

    /// `--bisam-phi`: the lower bound of the 0-1 loss.
    public enum Phi: String, CaseIterable, ExpressibleByArgument, Sendable { case log, tanh }

    public struct Options: VariantOptions {
        public static let name = "bisam"
        public static let summary = "bilevel SAM (Xie et al.)"

        @Option(help: "BiSAM's lower bound of the 0-1 loss: log or tanh.")
        public var bisamPhi: Phi = .log

        @Option(help: "BiSAM's μ (the bound's scale inside the log-sum-exp).")
        public var bisamMu: Float = 1

        @Option(help: "BiSAM's α (slope of the tanh bound).")
        public var bisamAlpha: Float = 0.1

        public init() {}

        public var defaultLabelSmoothing: Float { 0.1 }
        public var passesPerStep: Double { 2 }

        public func validate() throws {
            if !(bisamMu > 0) { throw SAMTrainError("--bisam-mu \(bisamMu): must be positive") }
            if !(bisamAlpha > 0) { throw SAMTrainError("--bisam-alpha \(bisamAlpha): must be positive") }
        }

        public mutating func read(vector: VectorSettings) throws {
            if let phi = try vector.choice("bisam_phi", Phi.self) { bisamPhi = phi }
            if let mu = try vector.float("mu") { bisamMu = mu }
            if let alpha = try vector.float("alpha") { bisamAlpha = alpha }
        }

        public func makeVariant(_ shared: AscentSettings, all: VariantSet) throws -> SAMVariant {
            BiSAM(rho: shared.rho, normEps: shared.normEps, phi: bisamPhi, mu: bisamMu, alpha: bisamAlpha)
        }
    }
}

/// BiSAM's ascent loss: per example `Q = logsumexp_j(μ·φ(z_j − z_y))` over all classes
/// (the term j = y is μ·φ(0) = 0), mean over the batch, with φ a lower bound of the 0-1
/// loss: `log` φ(x) = 1 − log(1 + e^(γ−x)), γ = log(e − 1); `tanh` φ(x) = tanh(αx).
/// Its logit gradient is closed-form: with s = softmax_j(μφ(m_j)),
/// ∂Q/∂z_j = μ·s_j·φ'(m_j) for j ≠ y and ∂Q/∂z_y = −Σ_{j≠y} μ·s_j·φ'(m_j).
public final class BiSAMLowerBoundLoss: LogitLoss {
    public let phi: BiSAM.Phi
    public let mu: Double
    public let alpha: Double
    static let gamma = log(M_E - 1)

    public init(phi: BiSAM.Phi, mu: Double, alpha: Double) {
        self.phi = phi
        self.mu = mu
        self.alpha = alpha
    }

    /// φ(x) and φ'(x), computed stably.
    func bound(_ x: Double) -> (value: Double, slope: Double) {
        switch phi {
        case .log:
            let u = BiSAMLowerBoundLoss.gamma - x
            let softplus = u > 30 ? u : log1p(exp(u))
            return (1 - softplus, 1 / (1 + exp(-u)))
        case .tanh:
            let t = tanh(alpha * x)
            return (t, alpha * (1 - t * t))
        }
    }

    public func evaluate(logits: Tensor, labels: [Int32], gradient: Tensor, keepingExampleLosses: Bool, meanOver: Int) -> LossValue {
        let n = logits.shape[0], k = logits.shape[1]
        gradient.resize([n, k])
        let z = logits.data, dz = gradient.data
        var total = 0.0
        var a = [Double](repeating: 0, count: k), slope = [Double](repeating: 0, count: k)
        for r in 0..<n {
            let y = Int(labels[r]), row = z + r * k
            var maxA = -Double.infinity
            for j in 0..<k {
                let (v, d) = bound(Double(row[j]) - Double(row[y]))
                a[j] = mu * v
                slope[j] = d
                maxA = max(maxA, a[j])
            }
            var sum = 0.0
            for j in 0..<k { sum += exp(a[j] - maxA) }
            total += maxA + log(sum)
            var toTrue = 0.0
            for j in 0..<k where j != y {
                let g = mu * exp(a[j] - maxA) / sum * slope[j] / Double(meanOver)
                dz[r * k + j] = Float(g)
                toTrue -= g
            }
            dz[r * k + y] = Float(toTrue)
        }
        return LossValue(loss: total / Double(meanOver), correct: 0)
    }
}
