/// Which pieces of a piecewise-linear layer an input selects: the ReLU units that pass, the
/// max-pool inputs that win. Hessian probes record the pattern at w and replay it at w ± h·v,
/// so that a finite difference of gradients stays on one smooth piece of the loss and gives
/// the Hessian autograd would (ReLU'' = 0), not the jumps of the units it crossed.
public final class ActivationPattern {
    /// ReLU: 1 where the unit passes.
    var passes: [UInt8] = []
    /// MaxPool2d: the winning input of each window.
    var winners: [Int32] = []

    public init() {}
}

/// How a piecewise-linear layer chooses its piece.
public enum PatternMode {
    /// From its input (ordinary forward passes).
    case live
    /// From its input, and writes the choice into the pattern.
    case record(ActivationPattern)
    /// As the pattern says, whatever the input.
    case replay(ActivationPattern)

    public var isReplay: Bool { if case .replay = self { return true } else { return false } }
}

/// ReLU and MaxPool2d (inside residual blocks too): layers whose pattern can be recorded and replayed.
public protocol PiecewiseLinearLayer: Layer {
    var patternMode: PatternMode { get set }
}

extension Sequential {
    /// Sets every piecewise-linear layer's mode; `patterns` gives one pattern per such
    /// layer, in order (ignored for `.live`).
    func setPatternMode(_ make: (ActivationPattern) -> PatternMode, patterns: [ActivationPattern]) {
        var k = 0
        for case let layer as PiecewiseLinearLayer in layers.flattened {
            layer.patternMode = make(patterns[k])
            k += 1
        }
    }

    func setLivePatterns() {
        for case let layer as PiecewiseLinearLayer in layers.flattened { layer.patternMode = .live }
    }

    var piecewiseLinearLayerCount: Int { layers.flattened.reduce(0) { $0 + ($1 is PiecewiseLinearLayer ? 1 : 0) } }
}
