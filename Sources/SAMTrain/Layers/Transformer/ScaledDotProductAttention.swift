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
    /// The kernels' packed operands and ∂S of one head, for each part of the batch.
    private var scratch: [Tensor] = []
    /// The threads of the last forward pass, for its backward pass.
    private var parallelism = Parallelism.serial

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
        parallelism = mode.parallelism
        let scratch = scratch(tokens: t, parts: parallelism.partCount(n)), heads = heads
        let (xs, p, y) = (x.data, probabilities.data, output.data)
        parallelism.forEachPart(n) { examples, part in
            for e in examples {
                VectorKernels.active.attentionForward(xs + e * t * 3 * d, tokens: t, width: d, heads: heads,
                                                      probabilities: p + e * heads * t * t, output: y + e * t * d,
                                                      scratch: scratch[part])
            }
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
        let scratch = scratch(tokens: t, parts: parallelism.partCount(n)), heads = heads
        let (x, p, dy, dx) = (input.data, probabilities.data, gradOutput.data, inputGradient.data)
        parallelism.forEachPart(n) { examples, part in
            for e in examples {
                VectorKernels.active.attentionBackward(x + e * t * 3 * d, probabilities: p + e * heads * t * t,
                                                       gradOutput: dy + e * t * d, tokens: t, width: d, heads: heads,
                                                       inputGradient: dx + e * t * 3 * d, scratch: scratch[part])
            }
        }
        return inputGradient
    }

    /// One scratch buffer per part, sized for `tokens` tokens.
    private func scratch(tokens t: Int, parts: Int) -> [UnsafeMutablePointer<Float>] {
        while scratch.count < parts { scratch.append(Tensor(shape: [0])) }
        let count = VectorKernels.attentionScratchCount(tokens: t, headWidth: width / heads)
        return scratch.prefix(parts).map { $0.resize([count]); return $0.data }
    }
}
