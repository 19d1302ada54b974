/// max(0, x). The backward pass reads the mask from the layer's own output.
public final class ReLU: Layer {
    private let output = Tensor(shape: [0])
    private let inputGradient = Tensor(shape: [0])

    public init() {}

    public func outputShape(for inputShape: [Int]) -> [Int] { inputShape }

    public func forward(_ input: Tensor, mode: PassMode) -> Tensor {
        output.resize(input.shape)
        let x = input.data, y = output.data
        for i in 0..<input.count { y[i] = max(x[i], 0) }
        return output
    }

    public func backward(_ gradOutput: Tensor, inputGradient wantsInput: Bool) -> Tensor? {
        guard wantsInput else { return nil }
        precondition(gradOutput.count == output.count, "gradient shape mismatch")
        inputGradient.resize(output.shape)
        let y = output.data, g = gradOutput.data, d = inputGradient.data
        // load g unconditionally so the loop is a branch-free vector select
        for i in 0..<output.count { let gi = g[i]; d[i] = y[i] > 0 ? gi : 0 }
        return inputGradient
    }
}
