/// A model: layers applied in order, with all their tensors in one `ParameterStore`.
public final class Sequential {
    public let store: ParameterStore
    public let layers: [Layer]
    /// Shape of one input example (e.g. [1, 28, 28]).
    public let inputShape: [Int]
    public let classes: Int

    public init(store: ParameterStore, layers: [Layer], inputShape: [Int], classes: Int) {
        store.seal()
        self.store = store
        self.layers = layers
        self.inputShape = inputShape
        self.classes = classes
    }

    /// Logits for a batch [N, inputShape...].
    public func forward(_ input: Tensor, mode: PassMode) -> Tensor {
        var x = input
        for layer in layers { x = layer.forward(x, mode: mode) }
        return x
    }

    public func callAsFunction(_ input: Tensor, mode: PassMode = .train) -> Tensor {
        forward(input, mode: mode)
    }

    /// Backpropagates ∂L/∂logits; leaves ∂L/∂w in `store.gradients` (overwritten).
    public func backward(_ gradLogits: Tensor) {
        store.gradients.zero()
        var g = gradLogits
        for (i, layer) in layers.enumerated().reversed() {
            guard let next = layer.backward(g, inputGradient: i > 0) else { break }
            g = next
        }
    }

    /// PyTorch's default initialization, drawn layer by layer from the seed.
    public func initialize(seed: UInt64) {
        var rng = SplitMix64(seed: seed, stream: RandomStream.initialization.rawValue)
        for layer in layers { layer.initialize(using: &rng) }
    }

    public var forwardFLOPsPerExample: Double {
        var shape = inputShape
        var total = 0.0
        for layer in layers {
            total += layer.forwardFLOPsPerExample(inputShape: shape)
            shape = layer.outputShape(for: shape)
        }
        return total
    }
}
