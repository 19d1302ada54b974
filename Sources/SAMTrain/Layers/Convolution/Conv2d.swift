/// 2-D convolution (PyTorch's Conv2d: weight [out][in][kh][kw], NCHW activations).
///
/// The layer holds the parameters and the bias gradient; the convolution itself runs on one of
/// three lowerings, chosen per input geometry by the `ConvolutionSettings` given at build time
/// (`ConvolutionSettings.lowering(for:outChannels:)`):
/// - `DirectConvolution`: samtrain's AVX-512 or AVX2 + FMA kernels, any stride, where the CPU
///   has them;
/// - `PaddedGridConvolution`: sgemm on the padded-width grid, stride 1;
/// - `Im2colConvolution`: sgemm through im2col / col2im, any stride.
/// Why each is chosen where it is: docs/performance.md, "Convolution lowerings: why each is chosen".
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
    public let settings: ConvolutionSettings
    private let store: ParameterStore

    private var input: Tensor?
    /// The mode of the latest forward pass, for its backward pass.
    private var mode = PassMode.train
    private var geometry: ConvGeometry?
    private let output = Tensor(shape: [0])
    private let inputGradient = Tensor(shape: [0])
    /// The lowerings of the last forward pass, one per part of its batch (`Parallelism`); the
    /// backward pass runs each part on the same one.
    private var activeLowerings: [LoweredConvolution] = []
    var activeLowering: LoweredConvolution? { activeLowerings.first }
    /// Of each kind this layer has run on, one lowering per part (each with its own scratch),
    /// made at first use.
    private var lowerings: [ConvolutionLowering: [LoweredConvolution]] = [:]
    /// ∂W of parts 1, 2, … of a batch, added into the store's gradient in part order.
    private let partWeightGradients = Tensor(shape: [0])

    public init(store: ParameterStore, name: String, inChannels: Int, outChannels: Int,
                kernelSize: Int, stride: Int = 1, padding: Int = 0, bias: Bool = true,
                settings: ConvolutionSettings = .init()) {
        precondition(inChannels > 0 && outChannels > 0 && kernelSize > 0 && stride > 0 && padding >= 0)
        self.store = store
        self.inChannels = inChannels
        self.outChannels = outChannels
        self.kernelSize = kernelSize
        self.stride = stride
        self.padding = padding
        self.hasBias = bias
        self.settings = settings
        weightIndex = store.addParameter("\(name).weight",
                                         shape: [outChannels, inChannels, kernelSize, kernelSize],
                                         role: .weight)
        biasIndex = bias ? store.addParameter("\(name).bias", shape: [outChannels], role: .bias) : nil
    }

    private var fanIn: Int { inChannels * kernelSize * kernelSize }
    public var parameterIndices: [Int] { [weightIndex] + (biasIndex.map { [$0] } ?? []) }

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

    /// `parts` lowerings of the kind the settings choose for geometry `g`, made at first use.
    private func lowerings(for g: ConvGeometry, parts: Int) -> [LoweredConvolution] {
        let kind = settings.lowering(for: g, outChannels: outChannels)
        var made = lowerings[kind] ?? []
        while made.count < parts {
            switch kind {
            case .direct: made.append(DirectConvolution(outChannels: outChannels, settings: settings))
            case .paddedGrid: made.append(PaddedGridConvolution(outChannels: outChannels, settings: settings))
            case .general, .automatic: made.append(Im2colConvolution(outChannels: outChannels, settings: settings))
            }
        }
        lowerings[kind] = made
        return Array(made.prefix(parts))
    }

    public func forward(_ input: Tensor, mode: PassMode) -> Tensor {
        let n = input.shape[0]
        let g = makeGeometry(Array(input.shape.dropFirst()))
        self.input = input
        self.mode = mode
        geometry = g
        output.resize([n, outChannels, g.outputHeight, g.outputWidth])
        // The batch cut into parts, each on its own lowering (its own scratch).
        let parallel = mode.parallelism
        let chosen = lowerings(for: g, parts: parallel.partCount(n))
        activeLowerings = chosen
        let x = input.data, y = output.data, w = store.value(weightIndex)
        let bias = biasIndex.map { UnsafePointer(store.value($0)) }, outSize = outChannels * g.outputPlane
        parallel.forEachPart(n) { images, part in
            chosen[part].forward(x + images.lowerBound * g.inputSize, images: images.count, g, weight: w, bias: bias,
                                 into: y + images.lowerBound * outSize)
        }
        return output
    }

    public func backward(_ gradOutput: Tensor, inputGradient wantsInput: Bool) -> Tensor? {
        guard let input, let g = geometry, !activeLowerings.isEmpty else {
            preconditionFailure("backward before forward")
        }
        let n = input.shape[0], plane = g.outputPlane, cout = outChannels
        precondition(gradOutput.count == n * cout * plane, "gradient shape mismatch")
        if wantsInput { inputGradient.resize(input.shape) }
        let parallel = mode.parallelism, dy = gradOutput.data
        if let biasIndex, mode.wantsGradient(biasIndex) {
            let db = store.gradient(biasIndex)
            parallel.forEachPart(cout) { channels, _ in
                for co in channels {
                    var sum = 0.0
                    for i in 0..<n { sum += Double(laneSum(dy + (i * cout + co) * plane, plane)) }
                    db[co] += Float(sum)
                }
            }
        }
        // Each part of the batch adds its ∂W into its own buffer (part 0: the store's), and the
        // others are added in part order: the same bits for the same thread count.
        let parts = activeLowerings, weightSize = cout * g.patchSize
        let dw = mode.wantsGradient(weightIndex) ? store.gradient(weightIndex) : nil
        if dw != nil, parts.count > 1 {
            partWeightGradients.resize([(parts.count - 1) * weightSize])
            partWeightGradients.zero()
        }
        let x = input.data, w = store.value(weightIndex), dx = wantsInput ? inputGradient.data : nil
        let partials = partWeightGradients.data, outSize = cout * plane
        parallel.forEachPart(n) { images, part in
            let first = images.lowerBound
            parts[part].backward(x + first * g.inputSize, dy + first * outSize, images: images.count, g, weight: w,
                                 weightGradient: dw.map { part == 0 ? $0 : partials + (part - 1) * weightSize },
                                 inputGradient: dx.map { $0 + first * g.inputSize })
        }
        if let dw {
            for part in 1..<max(1, parts.count) { addInPlace(dw, partials + (part - 1) * weightSize, weightSize) }
        }
        return wantsInput ? inputGradient : nil
    }
}

extension Conv2d: ShapeProfiled {
    func profileShape(inputShape: [Int]) -> String {
        let plane = inputShape.dropFirst().map(String.init).joined(separator: "×")
        return "\(kernelSize)×\(kernelSize)/\(stride) \(inChannels)→\(outChannels) on \(plane)"
    }
}
