/// The attention of a multi-head self-attention layer, between its qkv and output
/// projections: [N, T, 3d] → [N, T, d]. Column `s·d + h·(d/heads) + e` of the input is element
/// e of head h's query (s = 0), key (1) or value (2), as timm's
/// `qkv.reshape(B, T, 3, heads, d/heads)` reads it; head h's output lands in columns
/// `h·(d/heads) ..< (h+1)·(d/heads)` (timm's `transpose(1, 2).reshape(B, T, d)`).
///
/// Per example and head: S = QKᵀ/√(d/heads), P = softmax over keys (max subtracted first),
/// O = P·V (docs/algorithms.md §7). The products are T×T×(d/heads), too small for sgemm's
/// speed: they run as the vector kernels' register-tiled products, reading the heads' slices
/// in place. The probabilities P are kept for the backward pass, as is a reference to the
/// input: it must not change between `forward` and `backward`.
public final class ScaledDotProductAttention: Layer {
    public let width: Int
    public let heads: Int
    private var input: Tensor?
    /// P of the last forward pass, [N, heads, T, T].
    private let probabilities = Tensor(shape: [0])
    private let output = Tensor(shape: [0])
    private let inputGradient = Tensor(shape: [0])
    /// The kernels' packed operands and ∂S of one head.
    private let scratch = Tensor(shape: [0])

    public init(width: Int, heads: Int) {
        precondition(heads > 0 && width % heads == 0, "\(heads) heads do not divide the width \(width)")
        self.width = width
        self.heads = heads
    }

    public func outputShape(for inputShape: [Int]) -> [Int] { Array(inputShape.dropLast()) + [width] }

    /// QKᵀ and P·V: 2·T·T·d each (2 per multiply-add).
    public func forwardFLOPsPerExample(inputShape: [Int]) -> Double {
        let t = Double(inputShape[0])
        return 4 * t * t * Double(width)
    }

    public func forward(_ x: Tensor, mode: PassMode) -> Tensor {
        precondition(x.shape.count == 3 && x.shape[2] == 3 * width, "attention expects [N, T, \(3 * width)], got \(x.shape)")
        input = x
        let (n, t, d) = (x.shape[0], x.shape[1], width)
        probabilities.resize([n, heads, t, t])
        output.resize([n, t, d])
        scratch.resize([VectorKernels.attentionScratchCount(tokens: t, headWidth: d / heads)])
        for e in 0..<n {
            VectorKernels.active.attentionForward(x.data + e * t * 3 * d, tokens: t, width: d, heads: heads,
                                                  probabilities: probabilities.data + e * heads * t * t,
                                                  output: output.data + e * t * d, scratch: scratch.data)
        }
        return output
    }

    /// ∂V = Pᵀ·∂O, ∂P = ∂O·Vᵀ, ∂S = P ⊙ (∂P − rowsum(P ⊙ ∂P)), ∂Q = ∂S·K/√(d/h), ∂K = ∂Sᵀ·Q/√(d/h).
    public func backward(_ gradOutput: Tensor, inputGradient wantsInput: Bool) -> Tensor? {
        guard wantsInput else { return nil }
        guard let input else { preconditionFailure("backward before forward") }
        let (n, t, d) = (input.shape[0], input.shape[1], width)
        precondition(gradOutput.count == n * t * d, "gradient shape mismatch")
        inputGradient.resize(input.shape)
        scratch.resize([VectorKernels.attentionScratchCount(tokens: t, headWidth: d / heads)])
        for e in 0..<n {
            VectorKernels.active.attentionBackward(input.data + e * t * 3 * d, probabilities: probabilities.data + e * heads * t * t,
                                                   gradOutput: gradOutput.data + e * t * d, tokens: t, width: d, heads: heads,
                                                   inputGradient: inputGradient.data + e * t * 3 * d, scratch: scratch.data)
        }
        return inputGradient
    }
}
