/// max(0, x). The backward pass reads the mask from the layer's own output (or, replaying
/// an `ActivationPattern`, from the pattern).
///
/// After a BatchNorm2d (`fuseNormalizationWithActivation`), the BatchNorm applies max(0, ·)
/// as it writes its output and masks the gradient as it reads it: this layer then passes
/// both through untouched (one read and one write of the activations less each way), except
/// when it replays a pattern, which needs the unclamped input.
public final class ReLU: PiecewiseLinearLayer {
    private let output = Tensor(shape: [0])
    private let inputGradient = Tensor(shape: [0])
    public var patternMode = PatternMode.live
    /// Set when the BatchNorm before it clamps and masks for it.
    public internal(set) var fusedIntoNormalization = false
    /// The threads of the last forward pass, for its backward pass.
    private var parallelism = Parallelism.serial

    public init() {}

    public func outputShape(for inputShape: [Int]) -> [Int] { inputShape }

    public func forward(_ input: Tensor, mode: PassMode) -> Tensor {
        if fusedIntoNormalization && !patternMode.isReplay {
            // The input is max(0, BN(x)) already: x > 0 exactly where BN(x) > 0.
            if case .record(let pattern) = patternMode { pattern.passes = (0..<input.count).map { input[$0] > 0 ? 1 : 0 } }
            return input
        }
        output.resize(input.shape)
        let x = input.data, y = output.data, n = input.count
        parallelism = mode.parallelism
        switch patternMode {
        case .live:
            parallelism.forEachPart(n, grain: Parallelism.elementGrain) { part, _ in for i in part { y[i] = max(x[i], 0) } }
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
        if fusedIntoNormalization && !patternMode.isReplay { return gradOutput }   // the BatchNorm masks it
        precondition(gradOutput.count == output.count, "gradient shape mismatch")
        inputGradient.resize(output.shape)
        let y = output.data, g = gradOutput.data, d = inputGradient.data
        if case .replay(let pattern) = patternMode {
            pattern.passes.withUnsafeBufferPointer { p in for i in 0..<output.count { d[i] = p[i] != 0 ? g[i] : 0 } }
            return inputGradient
        }
        // load g unconditionally so the loop is a branch-free vector select
        parallelism.forEachPart(output.count, grain: Parallelism.elementGrain) { part, _ in for i in part { let gi = g[i]; d[i] = y[i] > 0 ? gi : 0 } }
        return inputGradient
    }
}
