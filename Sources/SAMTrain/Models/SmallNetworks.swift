import ArgumentParser

/// The Fashion-MNIST reference models `mlp` and `cnn` (docs/algorithms.md §7.2). Parameter
/// names are the PyTorch `nn.Sequential` indices of the peer's models.
public struct SmallNetworks: ModelFamily {
    public static let names = ["mlp", "cnn"]
    public static let summary = "Fashion-MNIST networks"

    public init() {}

    public func defaultInputShape(name: String) -> [Int] { [1, 28, 28] }

    /// The cnn's two 2×2 poolings must leave one pixel.
    public func minimumImageSide(name: String) -> Int { name == "mlp" ? 1 : 4 }

    public func build(name: String, inputShape: [Int], classes: Int, convolution: ConvolutionSettings) -> Sequential {
        name == "mlp" ? Self.mlp(inputShape: inputShape, classes: classes)
            : Self.cnn(inputShape: inputShape, classes: classes, convolution: convolution)
    }

    /// 784 → 256 → 256 → 10, ReLU.
    static func mlp(inputShape: [Int], classes: Int) -> Sequential {
        let store = ParameterStore()
        let layers: [Layer] = [
            Flatten(),
            Linear(store: store, name: "1", inputs: inputShape.reduce(1, *), outputs: 256),
            ReLU(),
            Linear(store: store, name: "3", inputs: 256, outputs: 256),
            ReLU(),
            Linear(store: store, name: "5", inputs: 256, outputs: classes),
        ]
        return Sequential(store: store, layers: layers, inputShape: inputShape, classes: classes)
    }

    /// Two blocks of two 3×3 conv+BN+ReLU, each max-pooled, then two FC layers. Convolutions
    /// have no bias: the BatchNorm after each one makes it redundant.
    static func cnn(inputShape: [Int], classes: Int, convolution: ConvolutionSettings) -> Sequential {
        let store = ParameterStore()
        let (c, h, w) = (inputShape[0], inputShape[1], inputShape[2])
        var layers: [Layer] = []
        func convBlock(_ cin: Int, _ cout: Int) {
            layers.append(Conv2d(store: store, name: "\(layers.count)", inChannels: cin, outChannels: cout,
                                 kernelSize: 3, stride: 1, padding: 1, bias: false, settings: convolution))
            layers.append(BatchNorm2d(store: store, name: "\(layers.count)", channels: cout))
            layers.append(ReLU())
        }
        convBlock(c, 32)
        convBlock(32, 32)
        layers.append(MaxPool2d())
        convBlock(32, 64)
        convBlock(64, 64)
        layers.append(MaxPool2d())
        layers.append(Flatten())
        layers.append(Linear(store: store, name: "\(layers.count)", inputs: 64 * (h / 4) * (w / 4), outputs: 256))
        layers.append(ReLU())
        layers.append(Linear(store: store, name: "\(layers.count)", inputs: 256, outputs: classes))
        return Sequential(store: store, layers: layers, inputShape: inputShape, classes: classes)
    }
}
