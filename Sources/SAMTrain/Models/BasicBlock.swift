/// He et al.'s basic block, shared by the CIFAR ResNets and ResNet-18: conv3×3(stride)+BN+ReLU,
/// conv3×3+BN, + shortcut, ReLU. `name` is the block's `state_dict` prefix.
enum BasicBlock {
    static func make(store: ParameterStore, name: String, inputs: Int, planes: Int, stride: Int,
                     shortcut: [Layer], convolution: ConvolutionSettings) -> ResidualBlock {
        let main: [Layer] = [
            Conv2d(store: store, name: "\(name).conv1", inChannels: inputs, outChannels: planes,
                   kernelSize: 3, stride: stride, padding: 1, bias: false, settings: convolution),
            BatchNorm2d(store: store, name: "\(name).bn1", channels: planes),
            ReLU(),
            Conv2d(store: store, name: "\(name).conv2", inChannels: planes, outChannels: planes,
                   kernelSize: 3, stride: 1, padding: 1, bias: false, settings: convolution),
            BatchNorm2d(store: store, name: "\(name).bn2", channels: planes),
        ]
        return ResidualBlock(main: main, shortcut: shortcut, post: [ReLU()])
    }

    /// The stem of both: conv3×3(C → width, no bias) + BN + ReLU, named `conv1`, `bn1`.
    static func stem(store: ParameterStore, inputs: Int, width: Int, convolution: ConvolutionSettings) -> [Layer] {
        [Conv2d(store: store, name: "conv1", inChannels: inputs, outChannels: width,
                kernelSize: 3, stride: 1, padding: 1, bias: false, settings: convolution),
         BatchNorm2d(store: store, name: "bn1", channels: width),
         ReLU()]
    }
}
