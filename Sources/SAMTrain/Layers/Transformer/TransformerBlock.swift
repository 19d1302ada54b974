/// timm's pre-norm ViT `Block` (no layer scale, dropout or drop-path), on [N, T, d]:
///
///     x = x + proj(MHSA(norm1(x)))
///     x = x + fc2(GELU(fc1(norm2(x))))
///
/// with MLP width `mlpRatio`·d (docs/algorithms.md §7). `name` is the block's `state_dict`
/// prefix (`blocks.K`): `NAME.norm1`, `NAME.attn.qkv`, `NAME.attn.proj`, `NAME.norm2`,
/// `NAME.mlp.fc1`, `NAME.mlp.fc2`. Backward: each residual sum passes its gradient to both of
/// its terms, which meet again at the branch's input.
public final class TransformerBlock: LayerContainer {
    public let norm1: LayerNorm
    public let attention: MultiHeadSelfAttention
    public let norm2: LayerNorm
    public let fc1: Linear
    public let activation: GELU
    public let fc2: Linear

    private let afterAttention = Tensor(shape: [0])
    private let output = Tensor(shape: [0])
    private let middleGradient = Tensor(shape: [0])
    private let inputGradient = Tensor(shape: [0])
    /// The forward pass's profile, for its backward pass.
    private var profile: LayerProfile?

    /// The threads of the last forward pass, for its backward pass.
    private var parallelism = Parallelism.serial

    public init(store: ParameterStore, name: String, width: Int, heads: Int, mlpRatio: Int = 4, epsilon: Float = 1e-6) {
        norm1 = LayerNorm(store: store, name: "\(name).norm1", features: width, epsilon: epsilon)
        attention = MultiHeadSelfAttention(store: store, name: "\(name).attn", width: width, heads: heads)
        norm2 = LayerNorm(store: store, name: "\(name).norm2", features: width, epsilon: epsilon)
        fc1 = Linear(store: store, name: "\(name).mlp.fc1", inputs: width, outputs: mlpRatio * width,
                     tokenwise: true, initialization: .truncatedNormal(std: 0.02))
        activation = GELU()
        fc2 = Linear(store: store, name: "\(name).mlp.fc2", inputs: mlpRatio * width, outputs: width,
                     tokenwise: true, initialization: .truncatedNormal(std: 0.02))
    }

    private var attentionBranch: [Layer] { [norm1, attention] }
    private var mlpBranch: [Layer] { [norm2, fc1, activation, fc2] }
    public var sublayers: [Layer] { attentionBranch + mlpBranch }

    public func initialize(using rng: inout SplitMix64) {
        for layer in sublayers { layer.initialize(using: &rng) }
    }

    public func outputShape(for inputShape: [Int]) -> [Int] {
        precondition(attentionBranch.outputShape(for: inputShape) == inputShape, "the attention branch keeps the shape")
        return inputShape
    }

    public func forwardFLOPsPerExample(inputShape: [Int]) -> Double {
        attentionBranch.forwardFLOPsPerExample(inputShape: inputShape) + mlpBranch.forwardFLOPsPerExample(inputShape: inputShape)
    }

    public func forward(_ input: Tensor, mode: PassMode) -> Tensor {
        profile = mode.profile
        parallelism = mode.parallelism
        let a = attentionBranch.forward(input, mode: mode)
        afterAttention.resize(input.shape)
        afterAttention.setSum(input, a, parallelism: parallelism)
        let m = mlpBranch.forward(afterAttention, mode: mode)
        output.resize(input.shape)
        output.setSum(afterAttention, m, parallelism: parallelism)
        return output
    }

    public func backward(_ gradOutput: Tensor, inputGradient wantsInput: Bool) -> Tensor? {
        // ∂(after attention) = ∂y + mlp'ᵀ∂y ; ∂x = ∂(after attention) + attention'ᵀ∂(after attention).
        // The attention branch computes its parameters' gradients even when ∂x is not wanted.
        let fromMLP = mlpBranch.backward(gradOutput, inputGradient: true, profile: profile)!
        middleGradient.resize(gradOutput.shape)
        middleGradient.setSum(gradOutput, fromMLP, parallelism: parallelism)
        guard let fromAttention = attentionBranch.backward(middleGradient, inputGradient: wantsInput, profile: profile) else { return nil }
        inputGradient.resize(gradOutput.shape)
        inputGradient.setSum(middleGradient, fromAttention, parallelism: parallelism)
        return inputGradient
    }

}
