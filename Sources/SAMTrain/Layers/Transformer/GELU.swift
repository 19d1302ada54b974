/// The exact GELU, y = x·Φ(x) = ½·x·(1 + erf(x/√2)) (PyTorch's `nn.GELU()`, timm's ViT MLP;
/// not the tanh approximation; docs/algorithms.md §7). ∂y/∂x = Φ(x) + x·φ(x). Both run as the
/// process's vector kernels, whose erf and exp are float32-accurate rational and polynomial
/// approximations (`fastErf`, `fastExp` in Swift).
///
/// The layer keeps a reference to its input for the backward pass: the input must not change
/// between `forward` and `backward`.
public final class GELU: Layer {
    private var input: Tensor?
    private let output = Tensor(shape: [0])
    private let inputGradient = Tensor(shape: [0])
    /// The threads of the last forward pass, for its backward pass.
    private var parallelism = Parallelism.serial

    public init() {}

    public func outputShape(for inputShape: [Int]) -> [Int] { inputShape }

    public func forward(_ x: Tensor, mode: PassMode) -> Tensor {
        input = x
        output.resize(x.shape)
        parallelism = mode.parallelism
        let (xs, y) = (x.data, output.data)
        parallelism.forEachPart(x.count, grain: Parallelism.elementGrain) { part, _ in
            VectorKernels.active.geluForward(xs + part.lowerBound, y + part.lowerBound, part.count)
        }
        return output
    }

    public func backward(_ gradOutput: Tensor, inputGradient wantsInput: Bool) -> Tensor? {
        guard wantsInput else { return nil }
        guard let input else { preconditionFailure("backward before forward") }
        precondition(gradOutput.count == input.count, "gradient shape mismatch")
        inputGradient.resize(input.shape)
        let (x, dy, dx) = (input.data, gradOutput.data, inputGradient.data)
        parallelism.forEachPart(input.count, grain: Parallelism.elementGrain) { part, _ in
            let i = part.lowerBound
            VectorKernels.active.geluBackward(x + i, dy + i, dx + i, part.count)
        }
        return inputGradient
    }
}
