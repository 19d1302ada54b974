/// A base optimizer: applies one step to the flat parameter buffer from the averaged
/// descent direction `u` (docs/algorithms.md §5.1). Its state is a list of flat buffers (checkpointed as is).
public protocol Optimizer: AnyObject {
    /// Steps taken so far (PyTorch's `state["step"]`; the first step is number 1).
    var stepCount: Int { get set }
    /// Named state buffers, each the size of the parameter buffer.
    var state: [(name: String, buffer: FlatBuffer)] { get }
    func step(parameters w: FlatBuffer, direction u: FlatBuffer, learningRate lr: Float)
}

/// Which base optimizer and its settings, as given on the command line or in a vector file.
public enum OptimizerKind: Equatable, Sendable {
    case sgd(momentum: Float, nesterov: Bool, weightDecay: Float)
    case adamW(beta1: Float, beta2: Float, eps: Float, weightDecay: Float)

    public func make(parameterCount: Int) -> Optimizer {
        switch self {
        case let .sgd(momentum, nesterov, wd):
            return SGD(count: parameterCount, momentum: momentum, nesterov: nesterov, weightDecay: wd)
        case let .adamW(b1, b2, eps, wd):
            return AdamW(count: parameterCount, beta1: b1, beta2: b2, eps: eps, weightDecay: wd)
        }
    }

    /// The same optimizer without weight decay (when decay is part of the loss instead).
    public var withoutWeightDecay: OptimizerKind {
        switch self {
        case let .sgd(m, n, _): return .sgd(momentum: m, nesterov: n, weightDecay: 0)
        case let .adamW(b1, b2, e, _): return .adamW(beta1: b1, beta2: b2, eps: e, weightDecay: 0)
        }
    }

    public var weightDecay: Float {
        switch self {
        case let .sgd(_, _, wd), let .adamW(_, _, _, wd): return wd
        }
    }
}
