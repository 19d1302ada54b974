/// The class token and the learned position embedding of a vision transformer (timm's
/// `_pos_embed` with a class token): [N, T', d] → [N, T' + 1, d], with
/// `out[n, 0] = cls_token + pos_embed[0]` and `out[n, 1 + t] = x[n, t] + pos_embed[1 + t]`.
///
/// `cls_token` [1, 1, d] and `pos_embed` [1, T' + 1, d] carry the role `.bias`: both are
/// additive offsets (a per-token bias and a learned constant input), neither a weight that
/// multiplies an activation nor a normalization tensor. ASAM's `weights` scope then leaves
/// them unscaled, as ASAM's reference code does for every tensor whose name lacks "weight",
/// and SAM-ON does not perturb them (docs/algorithms.md §7).
public final class TokenEmbedding: Layer {
    public let tokens: Int
    public let width: Int
    public let classTokenIndex: Int
    public let positionIndex: Int
    private let store: ParameterStore

    private var mode = PassMode.train
    private var inputShape: [Int] = []
    private let output = Tensor(shape: [0])
    private let inputGradient = Tensor(shape: [0])

    /// `tokens` counts the patches only (the output has one more).
    public init(store: ParameterStore, tokens: Int, width: Int) {
        precondition(tokens > 0 && width > 0)
        self.store = store
        self.tokens = tokens
        self.width = width
        classTokenIndex = store.addParameter("cls_token", shape: [1, 1, width], role: .bias)
        positionIndex = store.addParameter("pos_embed", shape: [1, tokens + 1, width], role: .bias)
    }

    public var parameterIndices: [Int] { [classTokenIndex, positionIndex] }

    /// timm's `init_weights`: `pos_embed` truncated normal (std 0.02, bounds ±2), then
    /// `cls_token` normal with std 1e-6.
    public func initialize(using rng: inout SplitMix64) {
        let pos = store.value(positionIndex), cls = store.value(classTokenIndex)
        for i in 0..<((tokens + 1) * width) { pos[i] = rng.truncatedNormal(std: 0.02) }
        for i in 0..<width { cls[i] = rng.normal(std: 1e-6) }
    }

    public func outputShape(for inputShape: [Int]) -> [Int] {
        precondition(inputShape == [tokens, width], "TokenEmbedding expects [\(tokens), \(width)], got \(inputShape)")
        return [tokens + 1, width]
    }

    public func forward(_ x: Tensor, mode: PassMode) -> Tensor {
        precondition(x.shape.count == 3 && Array(x.shape.dropFirst()) == [tokens, width],
                     "TokenEmbedding expects [N, \(tokens), \(width)], got \(x.shape)")
        self.mode = mode
        inputShape = x.shape
        let n = x.shape[0], d = width, t = tokens + 1
        output.resize([n, t, d])
        let pos = store.value(positionIndex), cls = store.value(classTokenIndex)
        for e in 0..<n {
            let y = output.data + e * t * d, src = x.data + e * tokens * d
            for j in 0..<d { y[j] = cls[j] + pos[j] }
            for i in 0..<(tokens * d) { y[d + i] = src[i] + pos[d + i] }
        }
        return output
    }

    public func backward(_ gradOutput: Tensor, inputGradient wantsInput: Bool) -> Tensor? {
        let n = inputShape[0], d = width, t = tokens + 1
        precondition(gradOutput.count == n * t * d, "gradient shape mismatch")
        let wantsPosition = mode.wantsGradient(positionIndex), wantsClass = mode.wantsGradient(classTokenIndex)
        let dPos = store.gradient(positionIndex), dCls = store.gradient(classTokenIndex)
        if wantsInput { inputGradient.resize(inputShape) }
        for e in 0..<n {
            let g = gradOutput.data + e * t * d
            if wantsPosition { for i in 0..<(t * d) { dPos[i] += g[i] } }
            if wantsClass { for j in 0..<d { dCls[j] += g[j] } }
            if wantsInput { (inputGradient.data + e * tokens * d).update(from: g + d, count: tokens * d) }
        }
        return wantsInput ? inputGradient : nil
    }
}
