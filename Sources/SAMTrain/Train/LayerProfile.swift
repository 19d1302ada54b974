/// Wall time per layer type of the forward and backward passes, for `samtrain bench`.
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

    public private(set) var seconds: [String: Times] = [:]
    private var names: [ObjectIdentifier: String] = [:]

    public init() {}

    @inline(__always)
    func forward(_ layer: Layer, _ body: () -> Tensor) -> Tensor {
        guard !(layer is LayerContainer) else { return body() }
        let t0 = PhaseTimer.now()
        let y = body()
        seconds[name(layer), default: Times()].forward += PhaseTimer.now() - t0
        return y
    }

    @inline(__always)
    func backward(_ layer: Layer, _ body: () -> Tensor?) -> Tensor? {
        guard !(layer is LayerContainer) else { return body() }
        let t0 = PhaseTimer.now()
        let g = body()
        seconds[name(layer), default: Times()].backward += PhaseTimer.now() - t0
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
