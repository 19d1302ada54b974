/// A vision transformer's classifier on the class token (timm's `global_pool='token'`):
/// the final LayerNorm `norm`, token 0, and the Linear `head` → [N, classes].
///
/// timm normalizes every token and then takes `x[:, 0]`; LayerNorm acts on each token alone,
/// so normalizing the class token only gives the same logits and the same gradients, and the
/// other tokens' ∂ is 0 (docs/algorithms.md §7). `head` is one row per example, so it is an
/// ordinary (rank-one factorable) Linear, registered last: the model's classifier head.
public final class ClassTokenHead: LayerContainer {
    public let norm: LayerNorm
    public let head: Linear
    private var inputShape: [Int] = []
    private let classTokens = Tensor(shape: [0])
    private let inputGradient = Tensor(shape: [0])
    /// The forward pass's profile, for its backward pass.
    private var profile: LayerProfile?

    public init(store: ParameterStore, width: Int, classes: Int, epsilon: Float = 1e-6) {
        norm = LayerNorm(store: store, name: "norm", features: width, epsilon: epsilon)
        head = Linear(store: store, name: "head", inputs: width, outputs: classes,
                      initialization: .truncatedNormal(std: 0.02))
    }

    public var sublayers: [Layer] { [norm, head] }

    public func initialize(using rng: inout SplitMix64) {
        for layer in sublayers { layer.initialize(using: &rng) }
    }

    public func outputShape(for inputShape: [Int]) -> [Int] { sublayers.outputShape(for: [inputShape.last!]) }
    public func forwardFLOPsPerExample(inputShape: [Int]) -> Double {
        sublayers.forwardFLOPsPerExample(inputShape: [inputShape.last!])
    }

    public func forward(_ input: Tensor, mode: PassMode) -> Tensor {
        precondition(input.shape.count == 3 && input.shape[2] == norm.features,
                     "ClassTokenHead expects [N, T, \(norm.features)], got \(input.shape)")
        profile = mode.profile
        inputShape = input.shape
        let (n, t, d) = (input.shape[0], input.shape[1], input.shape[2])
        classTokens.resize([n, d])
        for e in 0..<n { (classTokens.data + e * d).update(from: input.data + e * t * d, count: d) }
        return sublayers.forward(classTokens, mode: mode)
    }

    public func backward(_ gradOutput: Tensor, inputGradient wantsInput: Bool) -> Tensor? {
        guard let g = sublayers.backward(gradOutput, inputGradient: wantsInput, profile: profile) else { return nil }
        let (n, t, d) = (inputShape[0], inputShape[1], inputShape[2])
        inputGradient.resize(inputShape)
        inputGradient.zero()
        for e in 0..<n { (inputGradient.data + e * t * d).update(from: g.data + e * d, count: d) }
        return inputGradient
    }
}
