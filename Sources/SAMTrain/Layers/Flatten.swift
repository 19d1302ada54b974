/// [N, d1, d2, ...] → [N, d1·d2·...]. Copies, since a layer owns the tensor it returns.
public final class Flatten: Layer {
    private var inputShape: [Int] = []
    private let output = Tensor(shape: [0])
    private let inputGradient = Tensor(shape: [0])

    public init() {}

    public func outputShape(for inputShape: [Int]) -> [Int] { [inputShape.reduce(1, *)] }

    public func forward(_ input: Tensor, mode: PassMode) -> Tensor {
        inputShape = input.shape
        let n = input.shape[0]
        output.resize([n, n == 0 ? 0 : input.count / n])
        output.data.update(from: input.data, count: input.count)
        return output
    }

    public func backward(_ gradOutput: Tensor, inputGradient wantsInput: Bool) -> Tensor? {
        guard wantsInput else { return nil }
        precondition(gradOutput.count == output.count, "gradient shape mismatch")
        inputGradient.resize(inputShape)
        inputGradient.data.update(from: gradOutput.data, count: gradOutput.count)
        return inputGradient
    }
}
