import CBLAS

/// 2-D convolution (cross-correlation, as in PyTorch), NCHW, lowered image by image to
/// OpenBLAS sgemm through `im2col`: per image, Y[Cout][OH·OW] = W[Cout][Cin·k·k] × cols.
/// One image's columns stay in the L2 cache between im2col and the product.
public final class Conv2d: Layer {
    public let inChannels: Int, outChannels: Int, kernelSize: Int, stride: Int, padding: Int
    unowned let store: ParameterStore
    let weight: Int
    let bias: Int?
    private var input = Tensor(shape: [0])
    private var geometry = ConvGeometry(channels: 0, height: 0, width: 0, kernel: 1, stride: 1, padding: 0)
    private let output = Tensor(shape: [0])
    private let inputGradient = Tensor(shape: [0])
    private let columns = Tensor(shape: [0])

    public init(store: ParameterStore, name: String, inChannels: Int, outChannels: Int,
                kernelSize: Int, stride: Int = 1, padding: Int = 0, bias: Bool = true) {
        self.store = store
        self.inChannels = inChannels
        self.outChannels = outChannels
        self.kernelSize = kernelSize
        self.stride = stride
        self.padding = padding
        weight = store.addParameter("\(name).weight", shape: [outChannels, inChannels, kernelSize, kernelSize], role: .weight)
        self.bias = bias ? store.addParameter("\(name).bias", shape: [outChannels], role: .bias) : nil
    }

    var fanIn: Int { inChannels * kernelSize * kernelSize }

    public func initialize(using rng: inout SplitMix64) {
        let bound = 1 / Float(fanIn).squareRoot()
        let w = store.value(weight)
        for i in 0..<(outChannels * fanIn) { w[i] = rng.uniform(-bound, bound) }
        if let bias {
            let b = store.value(bias)
            for i in 0..<outChannels { b[i] = rng.uniform(-bound, bound) }
        }
    }

    public func forward(_ x: Tensor, mode: PassMode) -> Tensor {
        let n = x.shape[0]
        precondition(x.shape.count == 4 && x.shape[1] == inChannels, "Conv2d expects [N, \(inChannels), H, W], got \(x.shape)")
        input = x
        geometry = ConvGeometry(channels: inChannels, height: x.shape[2], width: x.shape[3],
                                kernel: kernelSize, stride: stride, padding: padding)
        let g = geometry
        let (k, pixels) = (g.patchSize, g.outputPixels)
        output.resize([n, outChannels, g.outputHeight, g.outputWidth])
        columns.resize([k, pixels])
        let w = store.value(weight)
        for i in 0..<n {
            let y = output.data + i * outChannels * pixels
            im2col(g, image: x.data + i * inChannels * g.height * g.width, columns: columns.data)
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(outChannels), Int32(pixels), Int32(k),
                        1, w, Int32(k), columns.data, Int32(pixels), 0, y, Int32(pixels))
            if let bias {
                let b = store.value(bias)
                for o in 0..<outChannels {
                    let row = y + o * pixels, v = b[o]
                    for j in 0..<pixels { row[j] += v }
                }
            }
        }
        return output
    }

    public func backward(_ gradOutput: Tensor, inputGradient needed: Bool) -> Tensor? {
        let g = geometry
        let n = gradOutput.shape[0]
        let (k, pixels) = (g.patchSize, g.outputPixels)
        let imageSize = inChannels * g.height * g.width
        let w = store.value(weight), dw = store.gradient(weight)
        if needed {
            inputGradient.resize(input.shape)
            inputGradient.zero()
        }
        for i in 0..<n {
            let dy = gradOutput.data + i * outChannels * pixels
            // ∂W += ∂Y·colsᵀ (the columns are rebuilt: cheaper than keeping a batch of them).
            im2col(g, image: input.data + i * imageSize, columns: columns.data)
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(outChannels), Int32(k), Int32(pixels),
                        1, dy, Int32(pixels), columns.data, Int32(pixels), 1, dw, Int32(k))
            if let bias {
                let db = store.gradient(bias)
                for o in 0..<outChannels {
                    let row = dy + o * pixels
                    var s: Float = 0
                    for j in 0..<pixels { s += row[j] }
                    db[o] += s
                }
            }
            if needed {
                // ∂cols = Wᵀ·∂Y, folded back into the image.
                cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, Int32(k), Int32(pixels), Int32(outChannels),
                            1, w, Int32(k), dy, Int32(pixels), 0, columns.data, Int32(pixels))
                col2im(g, columns: columns.data, image: inputGradient.data + i * imageSize)
            }
        }
        return needed ? inputGradient : nil
    }

    public func forwardFLOPsPerExample(inputShape s: [Int]) -> Double {
        let out = outputShape(for: s)
        return 2 * Double(outChannels * out[1] * out[2] * fanIn)
    }

    public func outputShape(for s: [Int]) -> [Int] {
        [outChannels, (s[1] + 2 * padding - kernelSize) / stride + 1, (s[2] + 2 * padding - kernelSize) / stride + 1]
    }
}
