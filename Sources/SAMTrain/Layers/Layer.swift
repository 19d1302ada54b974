/// How a forward pass runs.
public struct PassMode: Sendable, Equatable {
    /// Train mode: BatchNorm normalizes with the batch's statistics (and caches what the
    /// backward pass needs). Eval mode: it uses the running statistics.
    public var training: Bool
    /// Whether BatchNorm folds this batch into its running statistics. SAM's clean pass
    /// does; its perturbed passes must not (SPEC §1).
    public var updatesRunningStatistics: Bool

    public static let train = PassMode(training: true, updatesRunningStatistics: true)
    public static let trainFrozenStatistics = PassMode(training: true, updatesRunningStatistics: false)
    public static let eval = PassMode(training: false, updatesRunningStatistics: false)
}

/// A layer with an explicit forward and backward pass (llm.c style), called like a
/// function (swift-apis style). Trainable tensors live in the model's `ParameterStore`.
///
/// `forward` caches what `backward` needs; `backward` takes ∂L/∂output, ADDS the parameter
/// gradients into the store's gradient buffer (the model zeroes it first) and returns
/// ∂L/∂input, or nil when `inputGradient` is false (the first layer needs none).
/// The returned tensors are owned by the layer and overwritten by its next call.
public protocol Layer: AnyObject {
    func forward(_ input: Tensor, mode: PassMode) -> Tensor
    func backward(_ gradOutput: Tensor, inputGradient: Bool) -> Tensor?
    /// PyTorch's default initialization of this layer's tensors.
    func initialize(using rng: inout SplitMix64)
    /// Floating-point operations of one forward pass per example (for the bench).
    func forwardFLOPsPerExample(inputShape: [Int]) -> Double
    /// Output shape (without the batch dimension) for an input shape (without it).
    func outputShape(for inputShape: [Int]) -> [Int]
    /// The indices of this layer's tensors in the store's `parameters`: their gradients are
    /// final once `backward` returns (the bucketed allreduce starts on them).
    var parameterIndices: [Int] { get }
}

extension Layer {
    public func callAsFunction(_ input: Tensor, mode: PassMode = .train) -> Tensor {
        forward(input, mode: mode)
    }
    public func initialize(using rng: inout SplitMix64) {}
    public func forwardFLOPsPerExample(inputShape: [Int]) -> Double { 0 }
    public var parameterIndices: [Int] { [] }
}

/// A layer made of layers (a residual block). Walks over a whole model (activation patterns,
/// parameter roles) reach inside it through `sublayers`, in forward order.
public protocol LayerContainer: Layer {
    var sublayers: [Layer] { get }
}

extension LayerContainer {
    public var parameterIndices: [Int] { sublayers.flatMap(\.parameterIndices) }
}

extension Array where Element == Layer {
    /// The layers applied in order.
    func forward(_ input: Tensor, mode: PassMode) -> Tensor {
        var x = input
        for layer in self { x = LayerProfile.forward(layer) { layer.forward(x, mode: mode) } }
        return x
    }

    /// Backpropagates through the layers in reverse; returns ∂L/∂(first input) when
    /// `inputGradient` is set (an empty chain passes the gradient through).
    func backward(_ gradOutput: Tensor, inputGradient wantsInput: Bool) -> Tensor? {
        var g = gradOutput
        for (i, layer) in enumerated().reversed() {
            guard let next = LayerProfile.backward(layer, { layer.backward(g, inputGradient: wantsInput || i > 0) })
            else { return nil }
            g = next
        }
        return g
    }

    func outputShape(for inputShape: [Int]) -> [Int] {
        reduce(inputShape) { $1.outputShape(for: $0) }
    }

    func forwardFLOPsPerExample(inputShape: [Int]) -> Double {
        var shape = inputShape, total = 0.0
        for layer in self {
            total += layer.forwardFLOPsPerExample(inputShape: shape)
            shape = layer.outputShape(for: shape)
        }
        return total
    }

    /// Every layer, containers opened depth-first, in forward order.
    var flattened: [Layer] {
        flatMap { layer -> [Layer] in
            if let container = layer as? LayerContainer { return [layer] + container.sublayers.flattened }
            return [layer]
        }
    }
}
