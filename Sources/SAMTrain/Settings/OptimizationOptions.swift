import ArgumentParser

/// The base optimizer and its learning-rate schedule (`train` and `bench`).
public struct OptimizationOptions: SettingsGroup {
    @Option(help: "Base learning rate.")
    public var lr: Float = 0.05

    @Option(help: "SGD momentum.")
    public var momentum: Float = 0.9

    @Flag(help: "Nesterov momentum.")
    public var nesterov = false

    @Option(help: "Weight decay (coupled L2 for SGD, decoupled for AdamW).")
    public var weightDecay: Float = 5e-4

    @Option(help: "Base optimizer.")
    public var optimizer: OptimizerName = .sgd

    @Option(help: "Learning-rate schedule: cosine, constant or multistep[:F1,F2,...[:FACTOR]].")
    public var schedule: LearningRateSchedule.Shape = .cosine

    @Option(help: "Linear warm-up steps.")
    public var warmupSteps: Int = 0

    public init() {}

    public func validate() throws {
        guard lr > 0, lr.isFinite else { throw SAMTrainError("--lr \(lr): the learning rate must be a positive number") }
        guard momentum >= 0, momentum < 1 else { throw SAMTrainError("--momentum \(momentum): must be in [0, 1)") }
        guard weightDecay >= 0 else { throw SAMTrainError("--weight-decay \(weightDecay): must be ≥ 0") }
        if nesterov && (optimizer != .sgd || momentum == 0) {
            throw SAMTrainError("--nesterov needs --optimizer sgd with a positive --momentum")
        }
        guard warmupSteps >= 0 else { throw SAMTrainError("--warmup-steps \(warmupSteps): must be ≥ 0") }
    }

    /// The base optimizer with the run's weight decay (`SAMStep.make` moves the decay into the
    /// loss under `--wd-in-ascent`).
    public var optimizerKind: OptimizerKind {
        let wd = weightDecay
        switch optimizer {
        case .adamw: return .adamW(beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: wd)
        case .sgd: return .sgd(momentum: momentum, nesterov: nesterov, weightDecay: wd)
        }
    }
}

/// `--optimizer`: the base optimizer (docs/algorithms.md §5).
public enum OptimizerName: String, CaseIterable, Sendable, ExpressibleByArgument {
    case sgd, adamw
}

extension LearningRateSchedule.Shape: ExpressibleByArgument, CustomStringConvertible {
    public init?(argument: String) {
        guard let shape = try? LearningRateSchedule.parseShape(argument) else { return nil }
        self = shape
    }

    /// The text `--schedule` takes back (`multistep:0.3,0.6,0.8:0.2`).
    public var description: String {
        switch self {
        case .constant: "constant"
        case .cosine: "cosine"
        case let .multiStep(milestones, factor): "multistep:" + milestones.map { "\($0)" }.joined(separator: ",") + ":\(factor)"
        }
    }

    public var defaultValueDescription: String { description }
}
