import CBLAS

/// 2-D convolution (PyTorch's Conv2d: weight [out][in][kh][kw], NCHW activations),
/// lowered to OpenBLAS sgemm through im2col.
///
/// The batch is processed in chunks of images: one im2col of the chunk gives a column
/// matrix [in·kh·kw][chunk·OH·OW], so each GEMM has a large N dimension with contiguous
/// operands (per-image GEMMs of 14×14 outputs are too small for OpenBLAS to reach its peak).
/// The GEMM result [out][chunk·OH·OW] is then scattered to NCHW. The backward pass redoes
/// the im2col of each chunk rather than keeping the whole batch's column matrices, which
/// would cost hundreds of MB and their memory traffic; the chunk's columns stay in cache
/// for both backward GEMMs.
///
/// The layer keeps a reference to its input for the backward pass: the input must not be
/// changed between `forward` and `backward`.
public final class Conv2d: Layer {
    public let inChannels: Int
    public let outChannels: Int
    public let kernelSize: Int
    public let stride: Int
    public let padding: Int
    public let hasBias: Bool
    public let weightIndex: Int
    public let biasIndex: Int?
    private let store: ParameterStore

    /// Output columns (chunk · OH · OW) a chunk aims at; large enough for GEMM efficiency,
    /// small enough for the column matrix to stay in the last-level cache.
    nonisolated(unsafe) public static var targetChunkColumns = 2048

    private var input: Tensor?
    private var geometry: ConvGeometry?
    private let output = Tensor(shape: [0])
    private let inputGradient = Tensor(shape: [0])
    private let columns = Tensor(shape: [0])       // im2col of a chunk, later its gradient
    private let matrix = Tensor(shape: [0])        // GEMM output / gathered ∂L/∂output of a chunk

    public init(store: ParameterStore, name: String, inChannels: Int, outChannels: Int,
                kernelSize: Int, stride: Int = 1, padding: Int = 0, bias: Bool = true) {
        precondition(inChannels > 0 && outChannels > 0 && kernelSize > 0 && stride > 0 && padding >= 0)
        self.store = store
        self.inChannels = inChannels
        self.outChannels = outChannels
        self.kernelSize = kernelSize
        self.stride = stride
        self.padding = padding
        self.hasBias = bias
        weightIndex = store.addParameter("\(name).weight",
                                         shape: [outChannels, inChannels, kernelSize, kernelSize],
                                         role: .weight)
        biasIndex = bias ? store.addParameter("\(name).bias", shape: [outChannels], role: .bias) : nil
    }

    private var fanIn: Int { inChannels * kernelSize * kernelSize }

    public func initialize(using rng: inout SplitMix64) {
        store.initializeLikePyTorch(weight: weightIndex, bias: biasIndex, fanIn: fanIn, using: &rng)
    }

    private func makeGeometry(_ shape: [Int]) -> ConvGeometry {
        precondition(shape.count == 3 && shape[0] == inChannels,
                     "Conv2d expects [\(inChannels), H, W], got \(shape)")
        return ConvGeometry(channels: inChannels, height: shape[1], width: shape[2],
                            kernelHeight: kernelSize, kernelWidth: kernelSize,
                            stride: stride, padding: padding)
    }

    public func outputShape(for inputShape: [Int]) -> [Int] {
        let g = makeGeometry(inputShape)
        return [outChannels, g.outputHeight, g.outputWidth]
    }

    public func forwardFLOPsPerExample(inputShape: [Int]) -> Double {
        let g = makeGeometry(inputShape)
        return 2 * Double(outChannels * g.patchSize * g.outputPlane)
    }

    private func chunkSize(_ g: ConvGeometry, batch: Int) -> Int {
        max(1, min(batch, Self.targetChunkColumns / max(1, g.outputPlane)))
    }

    public func forward(_ input: Tensor, mode: PassMode) -> Tensor {
        let n = input.shape[0]
        let g = makeGeometry(Array(input.shape.dropFirst()))
        self.input = input
        geometry = g
        let plane = g.outputPlane, k = g.patchSize, cout = outChannels
        output.resize([n, cout, g.outputHeight, g.outputWidth])
        let chunk = chunkSize(g, batch: n)
        columns.resize([k * chunk * plane])
        matrix.resize([cout * chunk * plane])
        let w = store.value(weightIndex)
        let bias = biasIndex.map { store.value($0) }
        var start = 0
        while start < n {
            let b = min(chunk, n - start)
            let length = b * plane
            im2col(input.data + start * g.inputSize, images: b, geometry: g, into: columns.data)
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans,
                        Int32(cout), Int32(length), Int32(k),
                        1, w, Int32(k), columns.data, Int32(length),
                        0, matrix.data, Int32(length))
            // [out][b·plane] → [b][out][plane], adding the bias on the way
            for co in 0..<cout {
                let beta = bias?[co] ?? 0
                let src = matrix.data + co * length
                for i in 0..<b {
                    let s = src + i * plane
                    let d = output.data + ((start + i) * cout + co) * plane
                    for j in 0..<plane { d[j] = s[j] + beta }
                }
            }
            start += b
        }
        return output
    }

    public func backward(_ gradOutput: Tensor, inputGradient wantsInput: Bool) -> Tensor? {
        guard let input, let g = geometry else { preconditionFailure("backward before forward") }
        let n = input.shape[0]
        let plane = g.outputPlane, k = g.patchSize, cout = outChannels
        precondition(gradOutput.count == n * cout * plane, "gradient shape mismatch")
        let chunk = chunkSize(g, batch: n)
        columns.resize([k * chunk * plane])
        matrix.resize([cout * chunk * plane])
        if wantsInput { inputGradient.resize(input.shape) }
        let w = store.value(weightIndex)
        let dw = store.gradient(weightIndex)
        if let biasIndex {
            let db = store.gradient(biasIndex)
            for co in 0..<cout {
                var sum = 0.0
                for i in 0..<n { sum += Double(laneSum(gradOutput.data + (i * cout + co) * plane, plane)) }
                db[co] += Float(sum)
            }
        }
        var start = 0
        while start < n {
            let b = min(chunk, n - start)
            let length = b * plane
            // [b][out][plane] → [out][b·plane]
            for i in 0..<b {
                for co in 0..<cout {
                    (matrix.data + co * length + i * plane)
                        .update(from: gradOutput.data + ((start + i) * cout + co) * plane, count: plane)
                }
            }
            im2col(input.data + start * g.inputSize, images: b, geometry: g, into: columns.data)
            // ∂W[out][patch] += ∂Y[out][cols] · colᵀ[cols][patch]
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans,
                        Int32(cout), Int32(k), Int32(length),
                        1, matrix.data, Int32(length), columns.data, Int32(length),
                        1, dw, Int32(k))
            if wantsInput {
                // ∂col[patch][cols] = Wᵀ[patch][out] · ∂Y[out][cols]
                cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans,
                            Int32(k), Int32(length), Int32(cout),
                            1, w, Int32(k), matrix.data, Int32(length),
                            0, columns.data, Int32(length))
                col2im(columns.data, images: b, geometry: g,
                       into: inputGradient.data + start * g.inputSize)
            }
            start += b
        }
        return wantsInput ? inputGradient : nil
    }
}
