/// [N, C, H, W] → [N, C·H·W]; the data is already contiguous, so only the shape changes.
public final class Flatten: Layer {
    private let output = Tensor(shape: [0])
    private let inputGradient = Tensor(shape: [0])
    private var inputShape: [Int] = []

    public init() {}

    public func forward(_ input: Tensor, mode: PassMode) -> Tensor {
        inputShape = input.shape
        output.copy(from: input)
        output.resize([input.shape[0], input.count / max(input.shape[0], 1)])
        return output
    }

    public func backward(_ gradOutput: Tensor, inputGradient needed: Bool) -> Tensor? {
        guard needed else { return nil }
        inputGradient.copy(from: gradOutput)
        inputGradient.resize(inputShape)
        return inputGradient
    }

    public func outputShape(for inputShape: [Int]) -> [Int] { [inputShape.reduce(1, *)] }
}
