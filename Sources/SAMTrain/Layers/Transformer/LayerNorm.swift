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
    /// ∂γ and ∂β of parts 1, 2, … of the rows, added into the store's in part order.
    private let partGradients = Tensor(shape: [0])
    /// Rows of work below which a part is not worth a thread.
    private static let rowGrain = 64

    public init(store: ParameterStore, name: String, features: Int, epsilon: Float = 1e-6) {
        precondition(features > 0)
        self.store = store
        self.features = features
        self.epsilon = epsilon
        weightIndex = store.addParameter("\(name).weight", shape: [features], role: .normWeight)
        biasIndex = store.addParameter("\(name).bias", shape: [features], role: .normBias)
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
        let (xs, y, stats, eps) = (x.data, output.data, statistics.data, epsilon)
        let gamma = store.value(weightIndex), beta = store.value(biasIndex)
        mode.parallelism.forEachPart(rows, grain: Self.rowGrain) { part, _ in
            let r = part.lowerBound
            VectorKernels.active.layerNormForward(xs + r * d, gamma: gamma, beta: beta, y + r * d, statistics: stats + 2 * r,
                                                  rows: part.count, features: d, epsilon: eps)
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
        // Each part of the rows sums its ∂γ, ∂β into its own buffers (part 0: the store's); the
        // others are added in part order, so the same thread count gives the same bits.
        let parts = mode.parallelism.partCount(rows, grain: Self.rowGrain)
        if parts > 1 {
            partGradients.resize([(parts - 1) * 2 * d])
            partGradients.zero()
        }
        let (x, dy, stats, partials) = (input.data, gradOutput.data, statistics.data, partGradients.data)
        let gamma = store.value(weightIndex), dx = wantsInput ? inputGradient.data : nil
        let dGamma = mode.wantsGradient(weightIndex) ? store.gradient(weightIndex) : nil
        let dBeta = mode.wantsGradient(biasIndex) ? store.gradient(biasIndex) : nil
        mode.parallelism.forEachPart(rows, grain: Self.rowGrain) { part, index in
            let r = part.lowerBound, own = partials + max(0, index - 1) * 2 * d
            VectorKernels.active.layerNormBackward(
                x + r * d, dy + r * d, gamma: gamma, statistics: stats + 2 * r, dx: dx.map { $0 + r * d },
                dGamma: dGamma.map { index == 0 ? $0 : own }, dBeta: dBeta.map { index == 0 ? $0 : own + d },
                rows: part.count, features: d)
        }
        for index in 1..<max(1, parts) {
            let own = partials + (index - 1) * 2 * d
            if let dGamma { addInPlace(dGamma, own, d) }
            if let dBeta { addInPlace(dBeta, own + d, d) }
        }
        return wantsInput ? inputGradient : nil
    }
}
