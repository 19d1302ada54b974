/// He et al. (2016) CIFAR ResNets `resnet20` / `resnet32` / `resnet56` (docs/algorithms.md §7):
/// a 3×3 stem of 16 channels, three stages of n basic blocks (16, 32, 64 channels, stages 2 and 3
/// start with stride 2), option-A shortcuts, global average pooling and one linear layer.
///
/// Parameter names are the `state_dict` keys of the PyTorch reference's module
/// (`../shared/peer/torch_reference.py`): `conv1`, `bn1`, `layers.K.{conv1,bn1,conv2,bn2}`, `fc`.
public struct CIFARResNet: ModelFamily {
    /// Each name's basic blocks per stage, n (the depth is 6n + 2).
    static let presets: [(name: String, blocks: Int)] = [("resnet20", 3), ("resnet32", 5), ("resnet56", 9)]
    public static let names = presets.map(\.name)
    public static let summary = "CIFAR ResNets (He et al.)"

    public init() {}

    /// Stages 2 and 3 halve the side twice.
    public func minimumImageSide(name: String) -> Int { 4 }

    public func build(name: String, inputShape: [Int], classes: Int, convolution: ConvolutionSettings) -> Sequential {
        let n = Self.presets.first { $0.name == name }!.blocks
        return Self.build(blocksPerStage: n, inputShape: inputShape, classes: classes, convolution: convolution)
    }

    static func build(blocksPerStage n: Int, inputShape: [Int], classes: Int,
                      convolution: ConvolutionSettings) -> Sequential {
        let store = ParameterStore()
        var layers = BasicBlock.stem(store: store, inputs: inputShape[0], width: 16, convolution: convolution)
        var inputs = 16, index = 0
        for (planes, firstStride) in [(16, 1), (32, 2), (64, 2)] {
            for b in 0..<n {
                let stride = b == 0 ? firstStride : 1
                // Option A: subsample and pad planes/4 zero channels on each side (16 → 32 → 64).
                let reshapes = stride != 1 || inputs != planes
                layers.append(BasicBlock.make(store: store, name: "layers.\(index)", inputs: inputs, planes: planes, stride: stride,
                                              shortcut: reshapes ? [ShortcutA(padding: (planes - inputs) / 2)] : [],
                                              convolution: convolution))
                inputs = planes
                index += 1
            }
        }
        layers.append(GlobalAveragePool2d())
        layers.append(Linear(store: store, name: "fc", inputs: 64, outputs: classes))
        return Sequential(store: store, layers: layers, inputShape: inputShape, classes: classes)
    }
}
