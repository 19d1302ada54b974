/// max(0, x). The backward pass reads the mask from the layer's own output (or, replaying
/// an `ActivationPattern`, from the pattern).
public final class ReLU: PiecewiseLinearLayer {
    private let output = Tensor(shape: [0])
    private let inputGradient = Tensor(shape: [0])
    public var patternMode = PatternMode.live

    public init() {}

    public func outputShape(for inputShape: [Int]) -> [Int] { inputShape }

    public func forward(_ input: Tensor, mode: PassMode) -> Tensor {
        output.resize(input.shape)
        let x = input.data, y = output.data, n = input.count
        switch patternMode {
        case .live:
            for i in 0..<n { y[i] = max(x[i], 0) }
        case .record(let pattern):
            for i in 0..<n { y[i] = max(x[i], 0) }
            pattern.passes = (0..<n).map { x[$0] > 0 ? 1 : 0 }
        case .replay(let pattern):
            precondition(pattern.passes.count == n, "replayed pattern of another shape")
            pattern.passes.withUnsafeBufferPointer { p in for i in 0..<n { y[i] = p[i] != 0 ? x[i] : 0 } }
        }
        return output
    }

    public func backward(_ gradOutput: Tensor, inputGradient wantsInput: Bool) -> Tensor? {
        guard wantsInput else { return nil }
        precondition(gradOutput.count == output.count, "gradient shape mismatch")
        inputGradient.resize(output.shape)
        let y = output.data, g = gradOutput.data, d = inputGradient.data
        if case .replay(let pattern) = patternMode {
            pattern.passes.withUnsafeBufferPointer { p in for i in 0..<output.count { d[i] = p[i] != 0 ? g[i] : 0 } }
            return inputGradient
        }
        // load g unconditionally so the loop is a branch-free vector select
        for i in 0..<output.count { let gi = g[i]; d[i] = y[i] > 0 ? gi : 0 }
        return inputGradient
    }
}
