import CBLAS

/// The attention of a multi-head self-attention layer, between its qkv and output
/// projections: [N, T, 3d] → [N, T, d]. Column `s·d + h·(d/heads) + e` of the input is element
/// e of head h's query (s = 0), key (1) or value (2), as timm's
/// `qkv.reshape(B, T, 3, heads, d/heads)` reads it; head h's output lands in columns
/// `h·(d/heads) ..< (h+1)·(d/heads)` (timm's `transpose(1, 2).reshape(B, T, d)`).
///
/// Per example and head: S = QKᵀ/√(d/heads), P = softmax over keys (max subtracted first),
/// O = P·V. Each product is one sgemm whose leading dimensions (3d for q, k, v; d for O) read
/// and write the heads' slices in place, without copies (docs/algorithms.md §7). The
/// probabilities P are kept for the backward pass, as is a reference to the input: it must
/// not change between `forward` and `backward`.
public final class ScaledDotProductAttention: Layer {
    public let width: Int
    public let heads: Int
    private var input: Tensor?
    /// P of the last forward pass, [N, heads, T, T].
    private let probabilities = Tensor(shape: [0])
    private let output = Tensor(shape: [0])
    private let inputGradient = Tensor(shape: [0])
    /// ∂P, then ∂S, of one (example, head).
    private let scores = Tensor(shape: [0])

    public init(width: Int, heads: Int) {
        precondition(heads > 0 && width % heads == 0, "\(heads) heads do not divide the width \(width)")
        self.width = width
        self.heads = heads
    }

    private var headWidth: Int { width / heads }
    private var scale: Float { 1 / Float(headWidth).squareRoot() }

    public func outputShape(for inputShape: [Int]) -> [Int] { Array(inputShape.dropLast()) + [width] }

    /// QKᵀ and P·V: 2·T·T·d each (2 per multiply-add).
    public func forwardFLOPsPerExample(inputShape: [Int]) -> Double {
        let t = Double(inputShape[0])
        return 4 * t * t * Double(width)
    }

    public func forward(_ x: Tensor, mode: PassMode) -> Tensor {
        precondition(x.shape.count == 3 && x.shape[2] == 3 * width, "attention expects [N, T, \(3 * width)], got \(x.shape)")
        input = x
        let (n, t, d, hd) = (x.shape[0], x.shape[1], width, headWidth)
        probabilities.resize([n, heads, t, t])
        output.resize([n, t, d])
        for e in 0..<n {
            for h in 0..<heads {
                let q = x.data + e * t * 3 * d + h * hd, k = q + d, v = q + 2 * d
                let p = probabilities.data + (e * heads + h) * t * t
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(t), Int32(t), Int32(hd),
                            scale, q, Int32(3 * d), k, Int32(3 * d), 0, p, Int32(t))
                for i in 0..<t { softmaxInPlace(p + i * t, t) }
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(t), Int32(hd), Int32(t),
                            1, p, Int32(t), v, Int32(3 * d), 0, output.data + e * t * d + h * hd, Int32(d))
            }
        }
        return output
    }

    /// ∂V = Pᵀ·∂O, ∂P = ∂O·Vᵀ, ∂S = P ⊙ (∂P − rowsum(P ⊙ ∂P)), ∂Q = ∂S·K/√(d/h), ∂K = ∂Sᵀ·Q/√(d/h).
    public func backward(_ gradOutput: Tensor, inputGradient wantsInput: Bool) -> Tensor? {
        guard wantsInput else { return nil }
        guard let input else { preconditionFailure("backward before forward") }
        let (n, t, d, hd) = (input.shape[0], input.shape[1], width, headWidth)
        precondition(gradOutput.count == n * t * d, "gradient shape mismatch")
        inputGradient.resize(input.shape)
        scores.resize([t, t])
        let ds = scores.data
        for e in 0..<n {
            for h in 0..<heads {
                let q = input.data + e * t * 3 * d + h * hd, k = q + d, v = q + 2 * d
                let dq = inputGradient.data + e * t * 3 * d + h * hd, dk = dq + d, dv = dq + 2 * d
                let p = probabilities.data + (e * heads + h) * t * t
                let dO = gradOutput.data + e * t * d + h * hd
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(t), Int32(t), Int32(hd),
                            1, dO, Int32(d), v, Int32(3 * d), 0, ds, Int32(t))
                cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, Int32(t), Int32(hd), Int32(t),
                            1, p, Int32(t), dO, Int32(d), 0, dv, Int32(3 * d))
                for i in 0..<t {
                    let pi = p + i * t, gi = ds + i * t
                    let c = laneSumAndDot(gi, pi, t, 0).1
                    for j in 0..<t { gi[j] = pi[j] * (gi[j] - c) }
                }
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(t), Int32(hd), Int32(t),
                            scale, ds, Int32(t), k, Int32(3 * d), 0, dq, Int32(3 * d))
                cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, Int32(t), Int32(hd), Int32(t),
                            scale, ds, Int32(t), q, Int32(3 * d), 0, dk, Int32(3 * d))
            }
        }
        return inputGradient
    }
}

/// p ← softmax(p) over `count` values, the maximum subtracted first.
@inline(__always)
func softmaxInPlace(_ p: UnsafeMutablePointer<Float>, _ count: Int) {
    var m = -Float.infinity
    for j in 0..<count { m = max(m, p[j]) }
    for j in 0..<count { p[j] = fastExp(p[j] - m) }
    let inv = 1 / laneSum(p, count)
    for j in 0..<count { p[j] *= inv }
}
