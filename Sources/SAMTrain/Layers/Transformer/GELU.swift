/// The exact GELU, y = x·Φ(x) = ½·x·(1 + erf(x/√2)) (PyTorch's `nn.GELU()`, timm's ViT MLP;
/// not the tanh approximation; docs/algorithms.md §7). ∂y/∂x = Φ(x) + x·φ(x). erf and exp are
/// `fastErf` and `fastExp` (float32-accurate, and the loops vectorize).
///
/// The layer keeps a reference to its input for the backward pass: the input must not change
/// between `forward` and `backward`.
public final class GELU: Layer {
    private var input: Tensor?
    private let output = Tensor(shape: [0])
    private let inputGradient = Tensor(shape: [0])

    public init() {}

    public func outputShape(for inputShape: [Int]) -> [Int] { inputShape }

    public func forward(_ x: Tensor, mode: PassMode) -> Tensor {
        input = x
        output.resize(x.shape)
        let p = x.data, q = output.data
        let invSqrt2 = Float(0.5).squareRoot()
        for i in 0..<x.count { q[i] = 0.5 * p[i] * (1 + fastErf(p[i] * invSqrt2)) }
        return output
    }

    public func backward(_ gradOutput: Tensor, inputGradient wantsInput: Bool) -> Tensor? {
        guard wantsInput else { return nil }
        guard let input else { preconditionFailure("backward before forward") }
        precondition(gradOutput.count == input.count, "gradient shape mismatch")
        inputGradient.resize(input.shape)
        let x = input.data, g = gradOutput.data, d = inputGradient.data
        let invSqrt2 = Float(0.5).squareRoot(), invSqrt2Pi = 1 / Float(2 * Double.pi).squareRoot()
        for i in 0..<input.count {
            let xi = x[i]
            let cdf = 0.5 * (1 + fastErf(xi * invSqrt2))
            d[i] = g[i] * (cdf + xi * invSqrt2Pi * fastExp(-0.5 * xi * xi))
        }
        return inputGradient
    }
}
