/// The models samtrain builds by name (docs/algorithms.md §7).
public enum Architecture: String, CaseIterable, Sendable {
    case mlp
    case cnn
    case resnet20, resnet32, resnet56
    case wrn16_8 = "wrn16-8"
    case wrn28_10 = "wrn28-10"
    case resnet18
    case vitT4 = "vit-t4"
    case vitS4 = "vit-s4"

    /// The input shape the bench times (docs/algorithms.md §12) and a model is built for by
    /// default: the Fashion-MNIST models take 1×28×28, the residual networks CIFAR's 3×32×32.
    public var defaultInputShape: [Int] {
        switch self {
        case .mlp, .cnn: [1, 28, 28]
        default: [3, 32, 32]
        }
    }

    /// Builds the model for inputs of shape `inputShape` (C, H, W) and `classes` outputs;
    /// every convolution runs as `convolution` says.
    public func build(inputShape: [Int]? = nil, classes: Int = 10,
                      convolution: ConvolutionSettings = .init()) -> Sequential {
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
        case .resnet20:
            return CIFARResNet.build(blocksPerStage: 3, inputShape: inputShape, classes: classes, convolution: convolution)
        case .resnet32:
            return CIFARResNet.build(blocksPerStage: 5, inputShape: inputShape, classes: classes, convolution: convolution)
        case .resnet56:
            return CIFARResNet.build(blocksPerStage: 9, inputShape: inputShape, classes: classes, convolution: convolution)
        case .wrn16_8:
            return WideResNet.build(depth: 16, widen: 8, inputShape: inputShape, classes: classes, convolution: convolution)
        case .wrn28_10:
            return WideResNet.build(depth: 28, widen: 10, inputShape: inputShape, classes: classes, convolution: convolution)
        case .resnet18: return ResNet18.build(inputShape: inputShape, classes: classes, convolution: convolution)
        case .vitT4, .vitS4:
            return VisionTransformer.build(configuration: transformer!, inputShape: inputShape, classes: classes,
                                           convolution: convolution)
        }
    }

    /// The vision transformers' shape (nil: a convolutional or fully connected model).
    public var transformer: VisionTransformer.Configuration? {
        switch self {
        case .vitT4: .tiny4
        case .vitS4: .small4
        default: nil
        }
    }

    /// The smallest image side the model can take (a ViT: one patch; see `check` for the rest):
    /// each 2×2 pooling or stride-2 stage halves it,
    /// and the last one must still leave one pixel.
    public var minimumImageSide: Int {
        switch self {
        case .mlp: 1
        case .cnn, .resnet20, .resnet32, .resnet56, .wrn16_8, .wrn28_10: 4
        case .resnet18: 8
        case .vitT4, .vitS4: transformer!.patch
        }
    }

    /// Refuses images the model cannot take, naming `source` (the data directory).
    public func check(imageShape shape: [Int], classes: Int, source: String) throws {
        let text = shape.map(String.init).joined(separator: "×")
        guard shape.count == 3, shape.allSatisfy({ $0 >= 1 }) else { throw SAMTrainError("\(source): images of shape \(text) are not C×H×W") }
        guard shape[1] >= minimumImageSide, shape[2] >= minimumImageSide else {
            throw SAMTrainError("\(source): images of \(text) are too small for --model \(rawValue), which needs height and width ≥ \(minimumImageSide)")
        }
        // mlp's first layer holds inputs × 256 weights: bound it so the model fits in memory.
        guard CheckedSize.product(shape, limit: 1 << 24) != nil else {
            throw SAMTrainError("\(source): images of \(text) are larger than samtrain trains on (at most \(1 << 24) values per image)")
        }
        if let transformer, let why = transformer.mismatch(imageShape: shape, model: rawValue) {
            throw SAMTrainError("\(source): \(why)")
        }
        guard classes >= 2 else { throw SAMTrainError("\(source): \(classes) class(es); a classifier needs at least 2") }
    }

    public static func named(_ name: String) throws -> Architecture {
        guard let a = Architecture(rawValue: name) else {
            throw SAMTrainError("--model \(name): unknown model; choose one of \(allCases.map(\.rawValue).joined(separator: ", "))")
        }
        return a
    }
}
