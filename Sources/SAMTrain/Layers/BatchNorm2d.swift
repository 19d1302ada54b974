import Foundation

/// Batch normalization over N·H·W per channel (PyTorch's BatchNorm2d; a [N, C] input is
/// BatchNorm1d). Train mode normalizes with the batch's biased variance and, unless the
/// pass freezes them (SAM's perturbed passes), folds the batch into the running statistics
/// with momentum 0.1 and the unbiased variance. Eval mode uses the running statistics.
public final class BatchNorm2d: Layer {
    public let channels: Int
    public let momentum: Float
    public let eps: Float
    unowned let store: ParameterStore
    let gamma: Int, beta: Int
    let runningMean: Int, runningVariance: Int
    private let output = Tensor(shape: [0])
    private let normalized = Tensor(shape: [0])     // x̂, for the backward pass
    private let inputGradient = Tensor(shape: [0])
    private var inverseStd: [Float] = []

    public init(store: ParameterStore, name: String, channels: Int, momentum: Float = 0.1, eps: Float = 1e-5) {
        self.store = store
        self.channels = channels
        self.momentum = momentum
        self.eps = eps
        gamma = store.addParameter("\(name).weight", shape: [channels], role: .normWeight)
        beta = store.addParameter("\(name).bias", shape: [channels], role: .normBias)
        runningMean = store.addBuffer("\(name).running_mean", shape: [channels], initial: 0)
        runningVariance = store.addBuffer("\(name).running_var", shape: [channels], initial: 1)
        inverseStd = [Float](repeating: 0, count: channels)
    }

    public func initialize(using rng: inout SplitMix64) {
        store.value(gamma).update(repeating: 1, count: channels)
        store.value(beta).update(repeating: 0, count: channels)
    }

    public func forward(_ x: Tensor, mode: PassMode) -> Tensor {
        let n = x.shape[0]
        let plane = x.count / (n * channels)
        output.resize(x.shape)
        let g = store.value(gamma), b = store.value(beta)
        let rm = store.buffer(runningMean), rv = store.buffer(runningVariance)
        let xs = x.data, ys = output.data
        guard mode.training else {
            for c in 0..<channels {
                let scale = g[c] / (rv[c] + eps).squareRoot(), shift = b[c] - rm[c] * scale
                for i in 0..<n {
                    let o = (i * channels + c) * plane
                    for j in 0..<plane { ys[o + j] = xs[o + j] * scale + shift }
                }
            }
            return output
        }
        normalized.resize(x.shape)
        let xh = normalized.data
        let count = Double(n * plane)
        for c in 0..<channels {
            // Two passes in Double: the mean, then the variance around it.
            var sum = 0.0
            for i in 0..<n {
                let o = (i * channels + c) * plane
                for j in 0..<plane { sum += Double(xs[o + j]) }
            }
            let mean = sum / count
            var squares = 0.0
            for i in 0..<n {
                let o = (i * channels + c) * plane
                for j in 0..<plane { let d = Double(xs[o + j]) - mean; squares += d * d }
            }
            let variance = squares / count
            let invStd = Float(1 / (variance + Double(eps)).squareRoot())
            inverseStd[c] = invStd
            let m = Float(mean), gc = g[c], bc = b[c]
            for i in 0..<n {
                let o = (i * channels + c) * plane
                for j in 0..<plane {
                    let h = (xs[o + j] - m) * invStd
                    xh[o + j] = h
                    ys[o + j] = gc * h + bc
                }
            }
            if mode.updatesRunningStatistics {
                let unbiased = count > 1 ? variance * count / (count - 1) : variance
                rm[c] = (1 - momentum) * rm[c] + momentum * m
                rv[c] = (1 - momentum) * rv[c] + momentum * Float(unbiased)
            }
        }
        return output
    }

    /// ∂x = γ·σ⁻¹/M · (M·∂y − Σ∂y − x̂·Σ(∂y·x̂)), with ∂β = Σ∂y and ∂γ = Σ(∂y·x̂).
    public func backward(_ gradOutput: Tensor, inputGradient needed: Bool) -> Tensor? {
        let n = gradOutput.shape[0]
        let plane = gradOutput.count / (n * channels)
        let dy = gradOutput.data, xh = normalized.data
        let dg = store.gradient(gamma), db = store.gradient(beta), g = store.value(gamma)
        if needed { inputGradient.resize(gradOutput.shape) }
        let dx = inputGradient.data
        let count = Float(n * plane)
        for c in 0..<channels {
            var sumDy: Float = 0, sumDyXh: Float = 0
            for i in 0..<n {
                let o = (i * channels + c) * plane
                for j in 0..<plane { sumDy += dy[o + j]; sumDyXh += dy[o + j] * xh[o + j] }
            }
            db[c] += sumDy
            dg[c] += sumDyXh
            guard needed else { continue }
            let scale = g[c] * inverseStd[c] / count
            for i in 0..<n {
                let o = (i * channels + c) * plane
                for j in 0..<plane { dx[o + j] = scale * (count * dy[o + j] - sumDy - xh[o + j] * sumDyXh) }
            }
        }
        return needed ? inputGradient : nil
    }

    public func forwardFLOPsPerExample(inputShape: [Int]) -> Double { 2 * Double(inputShape.reduce(1, *)) }
    public func outputShape(for inputShape: [Int]) -> [Int] { inputShape }
}
