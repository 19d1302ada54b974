/// The models samtrain builds by name (SPEC §7).
public enum Architecture: String, CaseIterable, Sendable {
    case mlp
    case cnn
    case resnet20, resnet32, resnet56
    case wrn16_8 = "wrn16-8"
    case wrn28_10 = "wrn28-10"
    case resnet18

    /// The input shape the bench times (SPEC §12) and a model is built for by default: the
    /// Fashion-MNIST models take 1×28×28, the residual networks CIFAR's 3×32×32.
    public var defaultInputShape: [Int] {
        switch self {
        case .mlp, .cnn: [1, 28, 28]
        default: [3, 32, 32]
        }
    }

    /// Builds the model for inputs of shape `inputShape` (C, H, W) and `classes` outputs.
    public func build(inputShape: [Int]? = nil, classes: Int = 10) -> Sequential {
        let inputShape = inputShape ?? defaultInputShape
        let store = ParameterStore()
        let inputs = inputShape.reduce(1, *)
        switch self {
        case .mlp:
            // 784 → 256 → 256 → 10, ReLU.
            let layers: [Layer] = [
                Flatten(),
                Linear(store: store, name: "1", inputs: inputs, outputs: 256),
                ReLU(),
                Linear(store: store, name: "3", inputs: 256, outputs: 256),
                ReLU(),
                Linear(store: store, name: "5", inputs: 256, outputs: classes),
            ]
            return Sequential(store: store, layers: layers, inputShape: inputShape, classes: classes)
        case .cnn:
            // Two blocks of two 3×3 conv+BN+ReLU, each max-pooled, then two FC layers.
            // Convolutions have no bias: the BatchNorm after each one makes it redundant.
            // Parameter names are the PyTorch nn.Sequential indices of the peer's model.
            let (c, h, w) = (inputShape[0], inputShape[1], inputShape[2])
            var layers: [Layer] = []
            func convBlock(_ cin: Int, _ cout: Int) {
                layers.append(Conv2d(store: store, name: "\(layers.count)", inChannels: cin, outChannels: cout,
                                     kernelSize: 3, stride: 1, padding: 1, bias: false))
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
        case .resnet20: return CIFARResNet.build(blocksPerStage: 3, inputShape: inputShape, classes: classes)
        case .resnet32: return CIFARResNet.build(blocksPerStage: 5, inputShape: inputShape, classes: classes)
        case .resnet56: return CIFARResNet.build(blocksPerStage: 9, inputShape: inputShape, classes: classes)
        case .wrn16_8: return WideResNet.build(depth: 16, widen: 8, inputShape: inputShape, classes: classes)
        case .wrn28_10: return WideResNet.build(depth: 28, widen: 10, inputShape: inputShape, classes: classes)
        case .resnet18: return ResNet18.build(inputShape: inputShape, classes: classes)
        }
    }

    public static func named(_ name: String) throws -> Architecture {
        guard let a = Architecture(rawValue: name) else {
            throw SAMTrainError("--model \(name): unknown model; choose one of \(allCases.map(\.rawValue).joined(separator: ", "))")
        }
        return a
    }
}
