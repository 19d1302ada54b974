/// timm's `Attention` (qkv with bias, no q/k normalization, no dropout): the token-wise qkv
/// projection d → 3d (one sgemm over all N·T rows), `ScaledDotProductAttention` with `heads`
/// heads, and the token-wise output projection d → d (docs/algorithms.md §7).
///
/// `name` is the module's `state_dict` prefix (`blocks.K.attn`): its tensors are
/// `NAME.qkv.{weight,bias}` [3d, d], [3d] and `NAME.proj.{weight,bias}` [d, d], [d], drawn as timm
/// draws them (weights truncated normal with std 0.02, biases 0).
public final class MultiHeadSelfAttention: LayerContainer {
    public let qkv: Linear
    public let attention: ScaledDotProductAttention
    public let projection: Linear
    /// The forward pass's profile, for its backward pass.
    private var profile: LayerProfile?

    public init(store: ParameterStore, name: String, width: Int, heads: Int) {
        qkv = Linear(store: store, name: "\(name).qkv", inputs: width, outputs: 3 * width,
                     tokenwise: true, initialization: .truncatedNormal(std: 0.02))
        attention = ScaledDotProductAttention(width: width, heads: heads)
        projection = Linear(store: store, name: "\(name).proj", inputs: width, outputs: width,
                            tokenwise: true, initialization: .truncatedNormal(std: 0.02))
    }

    public var sublayers: [Layer] { [qkv, attention, projection] }

    public func initialize(using rng: inout SplitMix64) {
        for layer in sublayers { layer.initialize(using: &rng) }
    }

    public func outputShape(for inputShape: [Int]) -> [Int] { sublayers.outputShape(for: inputShape) }
    public func forwardFLOPsPerExample(inputShape: [Int]) -> Double { sublayers.forwardFLOPsPerExample(inputShape: inputShape) }

    public func forward(_ input: Tensor, mode: PassMode) -> Tensor {
        profile = mode.profile
        return sublayers.forward(input, mode: mode)
    }

    public func backward(_ gradOutput: Tensor, inputGradient wantsInput: Bool) -> Tensor? {
        sublayers.backward(gradOutput, inputGradient: wantsInput, profile: profile)
    }
}
