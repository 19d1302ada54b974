import CBLAS

/// The vision transformer's patch embedding (timm's `PatchEmbed`): a P×P convolution with
/// stride P and bias from C channels to d, its output read as tokens: [N, C, H, W] →
/// [N, (H/P)·(W/P), d], tokens in row-major patch order (`x.flatten(2).transpose(1, 2)`).
///
/// Patches do not overlap, so the convolution is one GEMM: gather each patch into a row of
/// `[N·T, C·P·P]` (columns in the weight's (c, ky, kx) order), then y = rows·Wᵀ + b; the
/// backward pass scatters the rows' gradient back (docs/algorithms.md §7). The weight keeps
/// PyTorch's Conv2d layout [d, C, P, P] and its default initialization.
public final class PatchEmbedding: Layer {
    public let channels: Int
    public let width: Int
    public let patch: Int
    public let weightIndex: Int
    public let biasIndex: Int
    private let store: ParameterStore

    private var mode = PassMode.train
    private var inputShape: [Int] = []
    /// The gathered patches of the last forward pass, [N·T, C·P·P].
    private let patches = Tensor(shape: [0])
    private let output = Tensor(shape: [0])
    private let patchGradient = Tensor(shape: [0])
    private let inputGradient = Tensor(shape: [0])

    /// `name` is the module's `state_dict` prefix (`patch_embed.proj`).
    public init(store: ParameterStore, name: String, channels: Int, width: Int, patch: Int) {
        precondition(channels > 0 && width > 0 && patch > 0)
        self.store = store
        self.channels = channels
        self.width = width
        self.patch = patch
        weightIndex = store.addParameter("\(name).weight", shape: [width, channels, patch, patch], role: .weight)
        biasIndex = store.addParameter("\(name).bias", shape: [width], role: .bias)
    }

    private var patchSize: Int { channels * patch * patch }
    public var parameterIndices: [Int] { [weightIndex, biasIndex] }

    /// PyTorch's Conv2d default (timm leaves the patch embedding to it).
    public func initialize(using rng: inout SplitMix64) {
        store.initializeLikePyTorch(weight: weightIndex, bias: biasIndex, fanIn: patchSize, using: &rng)
    }

    /// (tokens, rows of patches, columns of patches) of a C×H×W image.
    private func grid(_ shape: [Int]) -> (Int, Int, Int) {
        precondition(shape.count == 3 && shape[0] == channels && shape[1] % patch == 0 && shape[2] % patch == 0,
                     "PatchEmbedding expects [\(channels), H, W] with H and W multiples of \(patch), got \(shape)")
        let rows = shape[1] / patch, columns = shape[2] / patch
        return (rows * columns, rows, columns)
    }

    public func outputShape(for inputShape: [Int]) -> [Int] { [grid(inputShape).0, width] }

    public func forwardFLOPsPerExample(inputShape: [Int]) -> Double {
        2 * Double(grid(inputShape).0 * width * patchSize)
    }

    /// Visits every patch row piece: `body(row, column, image offset)` for each of the
    /// N·T·C·P runs of P contiguous pixels, in the rows' column order.
    @inline(__always)
    private func forEachRun(n: Int, height: Int, imageWidth: Int, _ body: (_ row: Int, _ column: Int, _ offset: Int) -> Void) {
        let p = patch, c = channels, gridRows = height / p, gridColumns = imageWidth / p
        let t = gridRows * gridColumns
        for e in 0..<n {
            for gy in 0..<gridRows {
                for gx in 0..<gridColumns {
                    let row = (e * t + gy * gridColumns + gx)
                    for ch in 0..<c {
                        for ky in 0..<p {
                            let offset = ((e * c + ch) * height + gy * p + ky) * imageWidth + gx * p
                            body(row, (ch * p + ky) * p, offset)
                        }
                    }
                }
            }
        }
    }

    public func forward(_ x: Tensor, mode: PassMode) -> Tensor {
        let n = x.shape[0]
        let (t, _, _) = grid(Array(x.shape.dropFirst()))
        let (h, w) = (x.shape[2], x.shape[3])
        self.mode = mode
        inputShape = x.shape
        let k = patchSize, p = patch, d = width
        patches.resize([n * t, k])
        let src = x.data, cols = patches.data
        forEachRun(n: n, height: h, imageWidth: w) { row, column, offset in
            (cols + row * k + column).update(from: src + offset, count: p)
        }
        output.resize([n, t, d])
        let y = output.data, b = store.value(biasIndex)
        for r in 0..<(n * t) { (y + r * d).update(from: b, count: d) }
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(n * t), Int32(d), Int32(k),
                    1, cols, Int32(k), store.value(weightIndex), Int32(k), 1, y, Int32(d))
        return output
    }

    public func backward(_ gradOutput: Tensor, inputGradient wantsInput: Bool) -> Tensor? {
        let k = patchSize, p = patch, d = width
        let rows = patches.count / k
        precondition(gradOutput.count == rows * d, "gradient shape mismatch")
        let g = gradOutput.data
        // ∂W += ∂Yᵀ·rows ; ∂b += Σ_rows ∂Y
        if mode.wantsGradient(weightIndex) {
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, Int32(d), Int32(k), Int32(rows),
                        1, g, Int32(d), patches.data, Int32(k), 1, store.gradient(weightIndex), Int32(k))
        }
        if mode.wantsGradient(biasIndex) {
            let db = store.gradient(biasIndex)
            for r in 0..<rows { let gr = g + r * d; for j in 0..<d { db[j] += gr[j] } }
        }
        guard wantsInput else { return nil }
        // ∂rows = ∂Y·W, then each run back to its pixels (patches do not overlap: no sums).
        patchGradient.resize([rows, k])
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(rows), Int32(k), Int32(d),
                    1, g, Int32(d), store.value(weightIndex), Int32(k), 0, patchGradient.data, Int32(k))
        inputGradient.resize(inputShape)
        let dst = inputGradient.data, cols = patchGradient.data
        forEachRun(n: inputShape[0], height: inputShape[2], imageWidth: inputShape[3]) { row, column, offset in
            (dst + offset).update(from: cols + row * k + column, count: p)
        }
        return inputGradient
    }
}
