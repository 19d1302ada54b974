/// How a pass runs, given to `forward` and kept by a layer for its `backward`: the modes of
/// one pass travel with it, never on shared objects.
public struct PassMode: Sendable, Equatable {
    /// Train mode: BatchNorm normalizes with the batch's statistics (and caches what the
    /// backward pass needs). Eval mode: it uses the running statistics.
    public var training: Bool
    /// Whether BatchNorm folds this batch into its running statistics. SAM's clean pass
    /// does; its perturbed passes must not (docs/algorithms.md §1).
    public var updatesRunningStatistics: Bool
    /// The parameters whose gradients the backward pass computes (ESAM's clean pass needs only
    /// the tensors its ascent perturbs; the others stay 0).
    public var gradients: GradientSelection = .all
    /// One-example Linear gradients kept as outer products (`RankOneGradients`).
    public var rankOne: RankOnePhase = .off
    /// Where the pass's layers add their times (`samtrain bench`; nil: not measured).
    public var profile: LayerProfile?
    /// The threads its layers cut their work among (the model's, `Sequential.parallelism`).
    public var parallelism = Parallelism.serial

    public init(training: Bool, updatesRunningStatistics: Bool, gradients: GradientSelection = .all, rankOne: RankOnePhase = .off) {
        self.training = training
        self.updatesRunningStatistics = updatesRunningStatistics
        self.gradients = gradients
        self.rankOne = rankOne
    }

    public static let train = PassMode(training: true, updatesRunningStatistics: true)
    public static let trainFrozenStatistics = PassMode(training: true, updatesRunningStatistics: false)
    public static let eval = PassMode(training: false, updatesRunningStatistics: false)

    /// Whether the backward pass computes parameter `index`'s gradient.
    @inline(__always) public func wantsGradient(_ index: Int) -> Bool { gradients.contains(index) }
}

/// Which parameter gradients a backward pass computes.
public enum GradientSelection: Sendable, Equatable {
    case all
    /// These parameter indices only.
    case only(Set<Int>)

    @inline(__always) public func contains(_ index: Int) -> Bool {
        switch self {
        case .all: true
        case .only(let wanted): wanted.contains(index)
        }
    }
}

/// Whether a pass keeps one-example Linear weight gradients factored (`RankOneGradients`).
public enum RankOnePhase: Sendable, Equatable {
    /// Every gradient is dense.
    case off
    /// A clean pass of one example and its ascent: the factored weights' gradients are
    /// their factors; their dense slices are not written.
    case recording
    /// The perturbed pass: a factored weight is `base + scale·u·vᵀ`, with `base` the
    /// unperturbed values buffer (its slice of the perturbed buffer is not written).
    case applying(scale: Float, base: FlatBuffer)

    public var isRecording: Bool { self == .recording }

    public static func == (a: RankOnePhase, b: RankOnePhase) -> Bool {
        switch (a, b) {
        case (.off, .off), (.recording, .recording): true
        case let (.applying(s1, b1), .applying(s2, b2)): s1 == s2 && b1 === b2
        default: false
        }
    }
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
        for layer in self {
            if let profile = mode.profile {
                x = profile.forward(layer, input: x) { layer.forward(x, mode: mode) }
            } else {
                x = layer.forward(x, mode: mode)
            }
        }
        return x
    }

    /// Backpropagates through the layers in reverse; returns ∂L/∂(first input) when
    /// `inputGradient` is set (an empty chain passes the gradient through). `profile` is the
    /// forward pass's (`PassMode.profile`).
    func backward(_ gradOutput: Tensor, inputGradient wantsInput: Bool, profile: LayerProfile?) -> Tensor? {
        var g = gradOutput
        for (i, layer) in enumerated().reversed() {
            let wants = wantsInput || i > 0
            let result = profile.map { $0.backward(layer, inputGradient: wants) { layer.backward(g, inputGradient: wants) } }
                ?? layer.backward(g, inputGradient: wants)
            guard let next = result else { return nil }
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
