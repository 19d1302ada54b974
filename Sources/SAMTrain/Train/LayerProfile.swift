/// Wall time per layer type of the forward and backward passes, for `samtrain bench`; and, for
/// the layers that do the arithmetic (convolutions, linear layers), per shape with its FLOPs,
/// so that each shape's GFLOP/s shows which ones run below the machine's rate.
///
/// A model whose `profile` is set gives it to every pass (`PassMode.profile`): then every
/// leaf layer's `forward` and `backward` (a container's sublayers, not the container itself,
/// so nothing is counted twice) adds its time under its type's name. What a container does
/// itself (a residual block's sums) and the loss stay outside, in the phase totals.
///
/// Sendable unchecked: a profile belongs to one rank's model, used by one thread.
public final class LayerProfile: @unchecked Sendable, Equatable {
    public struct Times: Codable, Sendable, Equatable {
        public var forward: Double = 0
        public var backward: Double = 0
    }

    /// One shape of a layer type: seconds and FLOPs of its passes (2 per multiply-add; a
    /// backward pass counts ∂W and, where it is wanted, ∂x, each as much as the forward).
    public struct ShapeTimes: Codable, Sendable, Equatable {
        public var forward: Double = 0
        public var backward: Double = 0
        public var forwardFLOPs: Double = 0
        public var backwardFLOPs: Double = 0
    }

    public private(set) var seconds: [String: Times] = [:]
    /// Keyed by the layer type and `ShapeProfiled.profileShape`, e.g. "Conv2d 3×3/1 16→16 on 32×32".
    public private(set) var shapes: [String: ShapeTimes] = [:]
    /// Per shape, the first layer seen with it and its input shape without the batch dimension
    /// (`Benchmark` times each one alone).
    private(set) var shapeLayers: [String: (layer: Layer, inputShape: [Int])] = [:]
    private var names: [ObjectIdentifier: String] = [:]
    /// Per layer instance, the shape key and forward FLOPs of its last forward pass.
    private var lastForward: [ObjectIdentifier: (key: String, flops: Double)] = [:]

    public init() {}

    @inline(__always)
    func forward(_ layer: Layer, input: Tensor, _ body: () -> Tensor) -> Tensor {
        guard !(layer is LayerContainer) else { return body() }
        let t0 = PhaseTimer.now()
        let y = body()
        let dt = PhaseTimer.now() - t0
        seconds[name(layer), default: Times()].forward += dt
        if let shaped = layer as? ShapeProfiled, let examples = input.shape.first {
            let perExample = Array(input.shape.dropFirst())
            let key = name(layer) + " " + shaped.profileShape(inputShape: perExample)
            let flops = layer.forwardFLOPsPerExample(inputShape: perExample) * Double(examples)
            lastForward[ObjectIdentifier(layer)] = (key, flops)
            if shapeLayers[key] == nil { shapeLayers[key] = (layer, perExample) }
            shapes[key, default: ShapeTimes()].forward += dt
            shapes[key, default: ShapeTimes()].forwardFLOPs += flops
        }
        return y
    }

    @inline(__always)
    func backward(_ layer: Layer, inputGradient: Bool, _ body: () -> Tensor?) -> Tensor? {
        guard !(layer is LayerContainer) else { return body() }
        let t0 = PhaseTimer.now()
        let g = body()
        let dt = PhaseTimer.now() - t0
        seconds[name(layer), default: Times()].backward += dt
        if let last = lastForward[ObjectIdentifier(layer)] {
            shapes[last.key, default: ShapeTimes()].backward += dt
            shapes[last.key, default: ShapeTimes()].backwardFLOPs += last.flops * (inputGradient ? 2 : 1)
        }
        return g
    }

    private func name(_ layer: Layer) -> String {
        let id = ObjectIdentifier(type(of: layer))
        if let known = names[id] { return known }
        let name = String(describing: type(of: layer))
        names[id] = name
        return name
    }

    public static func == (a: LayerProfile, b: LayerProfile) -> Bool { a === b }
}

/// A layer whose time `LayerProfile` also keeps per input shape (the layers whose FLOPs are
/// the model's: convolutions and linear layers).
protocol ShapeProfiled: Layer {
    /// The shape of one pass on examples of `inputShape`, e.g. "3×3/1 16→16 on 32×32".
    func profileShape(inputShape: [Int]) -> String
}
