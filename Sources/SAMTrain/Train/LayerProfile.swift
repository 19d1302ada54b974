/// Wall time per layer type of the forward and backward passes, for `samtrain bench`.
///
/// Off unless the bench turns it on: then every leaf layer's `forward` and `backward` (a
/// container's sublayers, not the container itself, so nothing is counted twice) adds its
/// time under its type's name. What a container does itself (a residual block's sums) and
/// the loss stay outside, in the phase totals.
public enum LayerProfile {
    public struct Times: Codable, Sendable, Equatable {
        public var forward: Double = 0
        public var backward: Double = 0
    }

    nonisolated(unsafe) public static var enabled = false
    nonisolated(unsafe) public private(set) static var seconds: [String: Times] = [:]
    nonisolated(unsafe) private static var names: [ObjectIdentifier: String] = [:]

    public static func reset() { seconds.removeAll() }

    @inline(__always)
    static func forward(_ layer: Layer, _ body: () -> Tensor) -> Tensor {
        guard enabled, !(layer is LayerContainer) else { return body() }
        let t0 = PhaseTimer.now()
        let y = body()
        seconds[name(layer), default: Times()].forward += PhaseTimer.now() - t0
        return y
    }

    @inline(__always)
    static func backward(_ layer: Layer, _ body: () -> Tensor?) -> Tensor? {
        guard enabled, !(layer is LayerContainer) else { return body() }
        let t0 = PhaseTimer.now()
        let g = body()
        seconds[name(layer), default: Times()].backward += PhaseTimer.now() - t0
        return g
    }

    private static func name(_ layer: Layer) -> String {
        let id = ObjectIdentifier(type(of: layer))
        if let known = names[id] { return known }
        let name = String(describing: type(of: layer))
        names[id] = name
        return name
    }
}
