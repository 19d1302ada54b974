/// 2-D convolution (PyTorch's Conv2d: weight [out][in][kh][kw], NCHW activations).
///
/// The layer holds the parameters and the bias gradient; the convolution itself runs on one of
/// three lowerings, chosen per input geometry by the `ConvolutionSettings` given at build time
/// (`ConvolutionSettings.lowering(for:outChannels:)`):
/// - `DirectConvolution`: samtrain's AVX2 + FMA kernels, any stride, where the CPU has them;
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
    /// The lowering of the last forward pass's geometry; the backward pass runs on it too.
    private(set) var activeLowering: LoweredConvolution?
    /// One lowering of each kind this layer has run on, made at its first use.
    private var lowerings: [ConvolutionLowering: LoweredConvolution] = [:]

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

    /// The lowering the settings choose for geometry `g`, made at its first use.
    private func lowering(for g: ConvGeometry) -> LoweredConvolution {
        let kind = settings.lowering(for: g, outChannels: outChannels)
        if let made = lowerings[kind] { return made }
        let made: LoweredConvolution
        switch kind {
        case .direct: made = DirectConvolution(outChannels: outChannels, settings: settings)
        case .paddedGrid: made = PaddedGridConvolution(outChannels: outChannels, settings: settings)
        case .general, .automatic: made = Im2colConvolution(outChannels: outChannels, settings: settings)
        }
        lowerings[kind] = made
        return made
    }

    public func forward(_ input: Tensor, mode: PassMode) -> Tensor {
        let n = input.shape[0]
        let g = makeGeometry(Array(input.shape.dropFirst()))
        self.input = input
        self.mode = mode
        geometry = g
        output.resize([n, outChannels, g.outputHeight, g.outputWidth])
        let chosen = lowering(for: g)
        activeLowering = chosen
        chosen.forward(input.data, images: n, g, weight: store.value(weightIndex),
                       bias: biasIndex.map { UnsafePointer(store.value($0)) }, into: output.data)
        return output
    }

    public func backward(_ gradOutput: Tensor, inputGradient wantsInput: Bool) -> Tensor? {
        guard let input, let g = geometry, let lowering = activeLowering else {
            preconditionFailure("backward before forward")
        }
        let n = input.shape[0], plane = g.outputPlane, cout = outChannels
        precondition(gradOutput.count == n * cout * plane, "gradient shape mismatch")
        if wantsInput { inputGradient.resize(input.shape) }
        if let biasIndex, mode.wantsGradient(biasIndex) {
            let db = store.gradient(biasIndex)
            for co in 0..<cout {
                var sum = 0.0
                for i in 0..<n { sum += Double(laneSum(gradOutput.data + (i * cout + co) * plane, plane)) }
                db[co] += Float(sum)
            }
        }
        lowering.backward(input.data, gradOutput.data, images: n, g, weight: store.value(weightIndex),
                          weightGradient: mode.wantsGradient(weightIndex) ? store.gradient(weightIndex) : nil,
                          inputGradient: wantsInput ? inputGradient.data : nil)
        return wantsInput ? inputGradient : nil
    }
}
