/// Layer normalization over the last axis of [..., d] (PyTorch's `nn.LayerNorm(d, eps)`):
/// each row of d values is normalized by its own mean and biased variance, then scaled by γ
/// and shifted by β. The vision transformers use eps 1e-6 (timm; docs/algorithms.md §7).
///
/// γ and β are normalization tensors (`.normWeight`, `.normBias`), so SAM-ON perturbs them as
/// it does BatchNorm's. The layer keeps a reference to its input for the backward pass (x̂ is
/// recomputed from it): the input must not change between `forward` and `backward`.
public final class LayerNorm: Layer {
    public let features: Int
    public let epsilon: Float
    public let weightIndex: Int
    public let biasIndex: Int
    private let store: ParameterStore

    private var input: Tensor?
    private var mode = PassMode.train
    private let output = Tensor(shape: [0])
    private let inputGradient = Tensor(shape: [0])
    /// Per row, the mean and 1/√(var + eps) of the last forward pass.
    private let statistics = Tensor(shape: [0])
    /// One row of ∂x̂ = ∂y·γ.
    private var scratch: [Float]

    public init(store: ParameterStore, name: String, features: Int, epsilon: Float = 1e-6) {
        precondition(features > 0)
        self.store = store
        self.features = features
        self.epsilon = epsilon
        weightIndex = store.addParameter("\(name).weight", shape: [features], role: .normWeight)
        biasIndex = store.addParameter("\(name).bias", shape: [features], role: .normBias)
        scratch = Array(repeating: 0, count: features)
    }

    /// γ = 1, β = 0 (draws no numbers).
    public func initialize(using rng: inout SplitMix64) {
        store.value(weightIndex).update(repeating: 1, count: features)
        store.value(biasIndex).update(repeating: 0, count: features)
    }

    public var parameterIndices: [Int] { [weightIndex, biasIndex] }
    public func outputShape(for inputShape: [Int]) -> [Int] { inputShape }

    public func forward(_ x: Tensor, mode: PassMode) -> Tensor {
        precondition(x.shape.last == features, "LayerNorm expects [..., \(features)], got \(x.shape)")
        input = x
        self.mode = mode
        let d = features, rows = x.count / d
        output.resize(x.shape)
        statistics.resize([rows, 2])
        let gamma = store.value(weightIndex), beta = store.value(biasIndex)
        let stats = statistics.data
        for r in 0..<rows {
            let p = x.data + r * d, q = output.data + r * d
            let mu = laneSum(p, d) / Float(d)
            let inv = 1 / (laneSquaredDeviations(p, d, mu) / Float(d) + epsilon).squareRoot()
            stats[2 * r] = mu
            stats[2 * r + 1] = inv
            for j in 0..<d { q[j] = (p[j] - mu) * inv * gamma[j] + beta[j] }
        }
        return output
    }

    /// ∂x = σ⁻¹·(∂x̂ − mean(∂x̂) − x̂·mean(∂x̂·x̂)) with ∂x̂ = ∂y·γ, per row;
    /// ∂γ += Σ_rows ∂y·x̂, ∂β += Σ_rows ∂y.
    public func backward(_ gradOutput: Tensor, inputGradient wantsInput: Bool) -> Tensor? {
        guard let input else { preconditionFailure("backward before forward") }
        precondition(gradOutput.count == input.count, "gradient shape mismatch")
        let d = features, rows = input.count / d
        if wantsInput { inputGradient.resize(input.shape) }
        let gamma = store.value(weightIndex)
        let dGamma = store.gradient(weightIndex), dBeta = store.gradient(biasIndex)
        let wantsGamma = mode.wantsGradient(weightIndex), wantsBeta = mode.wantsGradient(biasIndex)
        let stats = statistics.data
        scratch.withUnsafeMutableBufferPointer { buffer in
            let dxhat = buffer.baseAddress!
            for r in 0..<rows {
                let x = input.data + r * d, dy = gradOutput.data + r * d
                let mu = stats[2 * r], inv = stats[2 * r + 1]
                if wantsGamma { for j in 0..<d { dGamma[j] += dy[j] * (x[j] - mu) * inv } }
                if wantsBeta { for j in 0..<d { dBeta[j] += dy[j] } }
                guard wantsInput else { continue }
                for j in 0..<d { dxhat[j] = dy[j] * gamma[j] }
                let (sum, dot) = laneSumAndDot(dxhat, x, d, mu)
                let meanDxhat = sum / Float(d), meanDxhatXhat = dot * inv / Float(d)
                let dx = inputGradient.data + r * d
                for j in 0..<d { dx[j] = inv * (dxhat[j] - meanDxhat - (x[j] - mu) * inv * meanDxhatXhat) }
            }
        }
        return wantsInput ? inputGradient : nil
    }
}
