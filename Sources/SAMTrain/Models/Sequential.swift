/// A model: layers applied in order (a residual block is one layer made of layers), with all
/// their tensors in one `ParameterStore`.
public final class Sequential {
    public let store: ParameterStore
    public let layers: [Layer]
    /// Shape of one input example (e.g. [1, 28, 28]).
    public let inputShape: [Int]
    public let classes: Int

    /// The mode of the latest forward pass, for its backward pass.
    private var mode = PassMode.train
    /// When set, every pass adds its layers' times here (`samtrain bench`).
    public var profile: LayerProfile?
    /// The threads every pass's layers use (`--threads`; docs/algorithms.md §12.4).
    public var parallelism = Parallelism.serial

    /// Each layer's parameter indices (`Layer.parameterIndices`), for the backward hook.
    private let layerParameters: [[Int]]

    public init(store: ParameterStore, layers: [Layer], inputShape: [Int], classes: Int) {
        store.seal()
        self.store = store
        self.layers = layers
        self.inputShape = inputShape
        self.classes = classes
        layerParameters = layers.map(\.parameterIndices)
        fuseNormalizationWithActivation(layers)
        // The backward hook reports every tensor exactly once: a layer that forgot to declare
        // one would leave its bucket of the allreduce waiting forever.
        precondition(layerParameters.joined().sorted() == Array(store.parameters.indices),
                     "every parameter belongs to exactly one layer")
    }

    /// Logits for a batch [N, inputShape...].
    public func forward(_ input: Tensor, mode: PassMode) -> Tensor {
        var mode = mode
        if let profile { mode.profile = profile }
        mode.parallelism = parallelism
        self.mode = mode
        return layers.forward(input, mode: mode)
    }

    public func callAsFunction(_ input: Tensor, mode: PassMode = .train) -> Tensor {
        forward(input, mode: mode)
    }

    /// Backpropagates ∂L/∂logits; leaves ∂L/∂w in `store.gradients` (overwritten, or with
    /// `accumulate` added to what the buffer holds). `layerDone` runs after each layer (last
    /// to first) with the indices of the parameters whose gradients that layer has just
    /// finished (often none).
    public func backward(_ gradLogits: Tensor, accumulate: Bool = false,
                         layerDone: ((_ parameters: [Int]) -> Void)? = nil) {
        if !accumulate { store.zeroGradients(keepingFactored: mode.rankOne.isRecording) }
        var g = gradLogits
        for i in layers.indices.reversed() {
            let layer = layers[i]
            let next = mode.profile.map { $0.backward(layer, inputGradient: i > 0) { layer.backward(g, inputGradient: i > 0) } }
                ?? layer.backward(g, inputGradient: i > 0)
            layerDone?(layerParameters[i])
            guard let next else { break }
            g = next
        }
    }

    /// PyTorch's default initialization, drawn layer by layer from the seed.
    public func initialize(seed: UInt64) {
        var rng = SplitMix64(seed: seed, stream: RandomStream.initialization.rawValue)
        for layer in layers { layer.initialize(using: &rng) }
    }

    /// Forward FLOPs per example of the convolutions and linear layers (2 per multiply-add,
    /// the convention of docs/algorithms.md §7.1's table).
    public var forwardFLOPsPerExample: Double {
        layers.forwardFLOPsPerExample(inputShape: inputShape)
    }
}
