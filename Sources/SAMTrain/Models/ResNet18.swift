/// The CIFAR ResNet-18 of BSAM's and BiSAM's code (kuangliu/pytorch-cifar, docs/algorithms.md
/// §7): a 3×3 stem of 64 channels (no max-pool), four stages of two basic blocks (64, 128, 256,
/// 512 channels; strides 1, 2, 2, 2), projection shortcuts conv1×1(stride)+BN where the shape
/// changes, global average pooling and a linear layer.
///
/// Parameter names are that code's `state_dict` keys: `conv1`, `bn1`,
/// `layerS.K.{conv1,bn1,conv2,bn2}`, `layerS.K.shortcut.{0,1}`, `linear`.
public struct ResNet18: ModelFamily {
    public static let names = ["resnet18"]
    public static let summary = "CIFAR ResNet-18 (BSAM's and BiSAM's code)"

    public init() {}

    /// Stages 2 to 4 halve the side three times.
    public func minimumImageSide(name: String) -> Int { 8 }

    public func build(name: String, inputShape: [Int], classes: Int, convolution: ConvolutionSettings) -> Sequential {
        let store = ParameterStore()
        var layers = BasicBlock.stem(store: store, inputs: inputShape[0], width: 64, convolution: convolution)
        var inputs = 64
        for (stage, (planes, firstStride)) in [(64, 1), (128, 2), (256, 2), (512, 2)].enumerated() {
            for b in 0..<2 {
                let stride = b == 0 ? firstStride : 1
                let name = "layer\(stage + 1).\(b)"
                var shortcut: [Layer] = []
                if stride != 1 || inputs != planes {
                    shortcut = [
                        Conv2d(store: store, name: "\(name).shortcut.0", inChannels: inputs, outChannels: planes,
                               kernelSize: 1, stride: stride, padding: 0, bias: false, settings: convolution),
                        BatchNorm2d(store: store, name: "\(name).shortcut.1", channels: planes),
                    ]
                }
                layers.append(BasicBlock.make(store: store, name: name, inputs: inputs, planes: planes, stride: stride,
                                              shortcut: shortcut, convolution: convolution))
                inputs = planes
            }
        }
        layers.append(GlobalAveragePool2d())
        layers.append(Linear(store: store, name: "linear", inputs: inputs, outputs: classes))
        return Sequential(store: store, layers: layers, inputShape: inputShape, classes: classes)
    }
}
