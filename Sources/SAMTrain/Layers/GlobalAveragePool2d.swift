/// Global average pooling: [N, C, H, W] → [N, C], the mean of each channel plane (PyTorch's
/// `adaptive_avg_pool2d(x, 1).flatten(1)`); a ResNet's last feature map meets its classifier
/// through it, whatever the input's height and width.
public final class GlobalAveragePool2d: Layer {
    private var inputShape: [Int] = []
    private let output = Tensor(shape: [0])
    private let inputGradient = Tensor(shape: [0])

    public init() {}

    public func outputShape(for inputShape: [Int]) -> [Int] {
        precondition(inputShape.count == 3, "GlobalAveragePool2d expects [C, H, W]")
        return [inputShape[0]]
    }

    public func forward(_ input: Tensor, mode: PassMode) -> Tensor {
        precondition(input.shape.count == 4, "GlobalAveragePool2d expects [N, C, H, W], got \(input.shape)")
        inputShape = input.shape
        let planes = input.shape[0] * input.shape[1], plane = input.shape[2] * input.shape[3]
        output.resize([input.shape[0], input.shape[1]])
        let scale = 1 / Float(plane)
        for p in 0..<planes { output.data[p] = laneSum(input.data + p * plane, plane) * scale }
        return output
    }

    public func backward(_ gradOutput: Tensor, inputGradient wantsInput: Bool) -> Tensor? {
        guard wantsInput else { return nil }
        precondition(gradOutput.count == output.count, "gradient shape mismatch")
        inputGradient.resize(inputShape)
        let planes = inputShape[0] * inputShape[1], plane = inputShape[2] * inputShape[3]
        let scale = 1 / Float(plane)
        for p in 0..<planes {
            (inputGradient.data + p * plane).update(repeating: gradOutput.data[p] * scale, count: plane)
        }
        return inputGradient
    }
}
