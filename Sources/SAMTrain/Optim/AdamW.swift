import Foundation

/// AdamW with PyTorch's semantics: decoupled decay `w ← w·(1 − lr·wd)`, then Adam with
/// bias correction: `w −= (lr/bc1) · m / (√v/√bc2 + eps)`.
public final class AdamW: Optimizer {
    public let beta1: Float, beta2: Float, eps: Float, weightDecay: Float
    public var stepCount = 0
    let exponentialAverage: FlatBuffer
    let exponentialAverageOfSquares: FlatBuffer

    public init(count: Int, beta1: Float = 0.9, beta2: Float = 0.999, eps: Float = 1e-8, weightDecay: Float) {
        self.beta1 = beta1
        self.beta2 = beta2
        self.eps = eps
        self.weightDecay = weightDecay
        exponentialAverage = FlatBuffer(count: count)
        exponentialAverageOfSquares = FlatBuffer(count: count)
    }

    public var state: [(name: String, buffer: FlatBuffer)] {
        [("exp_avg", exponentialAverage), ("exp_avg_sq", exponentialAverageOfSquares)]
    }

    public func step(parameters w: FlatBuffer, direction u: FlatBuffer, learningRate lr: Float) {
        stepCount += 1
        let t = Double(stepCount)
        let biasCorrection1 = 1 - pow(Double(beta1), t)
        let biasCorrection2Sqrt = Float(sqrt(1 - pow(Double(beta2), t)))
        let stepSize = Float(Double(lr) / biasCorrection1)
        let decay = 1 - lr * weightDecay
        let (b1, b2, eps) = (beta1, beta2, self.eps)
        let w = w.data, g = u.data
        let m = exponentialAverage.data, v = exponentialAverageOfSquares.data
        for i in 0..<exponentialAverage.count {
            w[i] *= decay
            m[i] = b1 * m[i] + (1 - b1) * g[i]
            v[i] = b2 * v[i] + (1 - b2) * g[i] * g[i]
            w[i] -= stepSize * m[i] / (v[i].squareRoot() / biasCorrection2Sqrt + eps)
        }
    }
}
