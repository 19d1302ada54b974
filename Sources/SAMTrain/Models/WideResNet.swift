/// Zagoruyko & Komodakis' wide ResNet WRN-d-k (docs/algorithms.md §7), pre-activation: a 3×3
/// stem of 16 channels, three groups of (d − 4)/6 blocks of widths 16k, 32k, 64k (strides 1, 2,
/// 2), a final BN+ReLU, global average pooling and a linear layer; no dropout.
///
/// Block: BN+ReLU → conv3×3(stride) → BN+ReLU → conv3×3. Where the shape changes the shortcut
/// is a 1×1 convolution of the first BN+ReLU's output, else the block's input itself.
/// Parameter names are the `state_dict` keys of the reference PyTorch code (xternalz/
/// WideResNet-pytorch, used by Foret et al.'s and davda54's SAM): `conv1`,
/// `blockG.layer.K.{bn1,conv1,bn2,conv2,convShortcut}`, `bn1`, `fc`.
public struct WideResNet: ModelFamily {
    /// Each name's depth d and widening factor k (WRN-d-k).
    static let presets: [(name: String, depth: Int, widen: Int)] = [("wrn16-8", 16, 8), ("wrn28-10", 28, 10)]
    public static let names = presets.map(\.name)
    public static let summary = "wide ResNets (Zagoruyko & Komodakis)"

    public init() {}

    /// Groups 2 and 3 halve the side twice.
    public func minimumImageSide(name: String) -> Int { 4 }

    public func build(name: String, inputShape: [Int], classes: Int, convolution: ConvolutionSettings) -> Sequential {
        let preset = Self.presets.first { $0.name == name }!
        return Self.build(depth: preset.depth, widen: preset.widen, inputShape: inputShape, classes: classes, convolution: convolution)
    }

    static func build(depth: Int, widen k: Int, inputShape: [Int], classes: Int,
                      convolution: ConvolutionSettings) -> Sequential {
        precondition((depth - 4) % 6 == 0, "WRN depth is 6n + 4")
        let n = (depth - 4) / 6
        let store = ParameterStore()
        var layers: [Layer] = [
            Conv2d(store: store, name: "conv1", inChannels: inputShape[0], outChannels: 16,
                   kernelSize: 3, stride: 1, padding: 1, bias: false, settings: convolution),
        ]
        var inputs = 16
        for (group, (width, firstStride)) in [(16 * k, 1), (32 * k, 2), (64 * k, 2)].enumerated() {
            for b in 0..<n {
                let stride = b == 0 ? firstStride : 1
                let name = "block\(group + 1).layer.\(b)"
                let pre: [Layer] = [BatchNorm2d(store: store, name: "\(name).bn1", channels: inputs), ReLU()]
                let main: [Layer] = [
                    Conv2d(store: store, name: "\(name).conv1", inChannels: inputs, outChannels: width,
                           kernelSize: 3, stride: stride, padding: 1, bias: false, settings: convolution),
                    BatchNorm2d(store: store, name: "\(name).bn2", channels: width),
                    ReLU(),
                    Conv2d(store: store, name: "\(name).conv2", inChannels: width, outChannels: width,
                           kernelSize: 3, stride: 1, padding: 1, bias: false, settings: convolution),
                ]
                if inputs == width {
                    layers.append(ResidualBlock(pre: pre, main: main))
                } else {
                    let projection = Conv2d(store: store, name: "\(name).convShortcut", inChannels: inputs, outChannels: width,
                                            kernelSize: 1, stride: stride, padding: 0, bias: false,
                                            settings: convolution)
                    layers.append(ResidualBlock(pre: pre, main: main, shortcut: [projection], shortcutInput: .preActivation))
                }
                inputs = width
            }
        }
        layers += [
            BatchNorm2d(store: store, name: "bn1", channels: inputs),
            ReLU(),
            GlobalAveragePool2d(),
            Linear(store: store, name: "fc", inputs: inputs, outputs: classes),
        ]
        return Sequential(store: store, layers: layers, inputShape: inputShape, classes: classes)
    }
}
