/// max(0, x), element-wise.
public final class ReLU: Layer {
    private let output = Tensor(shape: [0])
    private let inputGradient = Tensor(shape: [0])

    public init() {}

    public func forward(_ input: Tensor, mode: PassMode) -> Tensor {
        output.resize(input.shape)
        let x = input.data, y = output.data
        for i in 0..<input.count { y[i] = max(x[i], 0) }
        return output
    }

    public func backward(_ gradOutput: Tensor, inputGradient needed: Bool) -> Tensor? {
        guard needed else { return nil }
        inputGradient.resize(gradOutput.shape)
        let y = output.data, g = gradOutput.data, dx = inputGradient.data
        for i in 0..<gradOutput.count { dx[i] = y[i] > 0 ? g[i] : 0 }
        return inputGradient
    }

    public func outputShape(for inputShape: [Int]) -> [Int] { inputShape }
}
