/// He et al.'s option-A shortcut of the CIFAR ResNets: where a stage halves the feature map
/// and doubles the channels, the identity becomes `x[:, :, ::2, ::2]` with `padding` zero
/// channels on each side (no parameters). Output: [N, C + 2·padding, ⌈H/2⌉, ⌈W/2⌉], the shape
/// of a stride-2 3×3 convolution with padding 1.
public final class ShortcutA: Layer {
    public let padding: Int
    private var inputShape: [Int] = []
    private let output = Tensor(shape: [0])
    private let inputGradient = Tensor(shape: [0])

    public init(padding: Int) {
        precondition(padding >= 0)
        self.padding = padding
    }

    public func outputShape(for inputShape: [Int]) -> [Int] {
        precondition(inputShape.count == 3, "ShortcutA expects [C, H, W]")
        return [inputShape[0] + 2 * padding, (inputShape[1] + 1) / 2, (inputShape[2] + 1) / 2]
    }

    public func forward(_ input: Tensor, mode: PassMode) -> Tensor {
        precondition(input.shape.count == 4, "ShortcutA expects [N, C, H, W], got \(input.shape)")
        inputShape = input.shape
        let (n, c, h, w) = (input.shape[0], input.shape[1], input.shape[2], input.shape[3])
        let (oh, ow) = ((h + 1) / 2, (w + 1) / 2)
        let cout = c + 2 * padding, outPlane = oh * ow
        output.resize([n, cout, oh, ow])
        output.zero()
        for i in 0..<n {
            for ch in 0..<c {
                let x = input.data + (i * c + ch) * h * w
                let y = output.data + (i * cout + ch + padding) * outPlane
                for r in 0..<oh {
                    for col in 0..<ow { y[r * ow + col] = x[2 * r * w + 2 * col] }
                }
            }
        }
        return output
    }

    public func backward(_ gradOutput: Tensor, inputGradient wantsInput: Bool) -> Tensor? {
        guard wantsInput else { return nil }
        precondition(gradOutput.count == output.count, "gradient shape mismatch")
        let (n, c, h, w) = (inputShape[0], inputShape[1], inputShape[2], inputShape[3])
        let (oh, ow) = ((h + 1) / 2, (w + 1) / 2)
        let cout = c + 2 * padding, outPlane = oh * ow
        inputGradient.resize(inputShape)
        inputGradient.zero()
        for i in 0..<n {
            for ch in 0..<c {
                let d = inputGradient.data + (i * c + ch) * h * w
                let g = gradOutput.data + (i * cout + ch + padding) * outPlane
                for r in 0..<oh {
                    for col in 0..<ow { d[2 * r * w + 2 * col] = g[r * ow + col] }
                }
            }
        }
        return inputGradient
    }
}
