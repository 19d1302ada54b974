/// Every setting of a training run. The CLI fills it from flags; checkpoints and
/// `config.json` record it.
public struct TrainingConfiguration: Equatable, Sendable, Codable {
    public var model = "cnn"
    public var dataset = "fashion-mnist"
    public var dataDirectory = "/usr/share/datasets/fashion-mnist"
    public var epochs = 3
    /// The global batch B (all ranks together).
    public var batchSize = 128
    public var learningRate: Float = 0.05
    public var momentum: Float = 0.9
    public var nesterov = false
    public var weightDecay: Float = 5e-4
    public var optimizer = "sgd"
    public var schedule = "cosine"
    public var warmupSteps = 0
    public var seed: UInt64 = 0
    public var threads = 1
    public var trainSubset: Int?
    public var maxSteps: Int?
    public var labelNoise: Float = 0
    public var labelSmoothing: Float?
    public var outDirectory: String?
    /// Plain progress lines every N steps when stdout is not a terminal.
    public var logEvery = 50
    public var sam = SAMConfiguration()

    public init() {}

    /// Cross-entropy label smoothing: 0 for SAM/ASAM/SGD, 0.1 for BiSAM/BSAM (SPEC §9).
    public var effectiveLabelSmoothing: Float {
        labelSmoothing ?? (sam.variant == .bisam || sam.variant == .bsam ? 0.1 : 0)
    }

    /// Checks every value that is wrong whatever the data and rank count.
    public func validate() throws {
        _ = try Architecture.named(model)
        guard epochs > 0 else { throw SAMTrainError("--epochs \(epochs): must be a positive number of epochs") }
        guard batchSize > 0 else { throw SAMTrainError("--batch-size \(batchSize): must be positive") }
        guard learningRate > 0, learningRate.isFinite else {
            throw SAMTrainError("--lr \(learningRate): the learning rate must be a positive number")
        }
        guard momentum >= 0, momentum < 1 else { throw SAMTrainError("--momentum \(momentum): must be in [0, 1)") }
        guard weightDecay >= 0 else { throw SAMTrainError("--weight-decay \(weightDecay): must be ≥ 0") }
        guard ["sgd", "adamw"].contains(optimizer) else {
            throw SAMTrainError("--optimizer \(optimizer): unknown optimizer; choose sgd or adamw")
        }
        if nesterov && (optimizer != "sgd" || momentum == 0) {
            throw SAMTrainError("--nesterov needs --optimizer sgd with a positive --momentum")
        }
        _ = try LearningRateSchedule.parseShape(schedule)
        guard warmupSteps >= 0 else { throw SAMTrainError("--warmup-steps \(warmupSteps): must be ≥ 0") }
        guard threads >= 1 else { throw SAMTrainError("--threads \(threads): must be at least 1") }
        if let trainSubset, trainSubset <= 0 { throw SAMTrainError("--train-subset \(trainSubset): must be positive") }
        if let maxSteps, maxSteps <= 0 { throw SAMTrainError("--max-steps \(maxSteps): must be positive") }
        guard labelNoise >= 0, labelNoise < 1 else { throw SAMTrainError("--label-noise \(labelNoise): must be in [0, 1)") }
        if let s = labelSmoothing, !(s >= 0 && s < 1) { throw SAMTrainError("--label-smoothing \(s): must be in [0, 1)") }
        guard logEvery > 0 else { throw SAMTrainError("--log-every \(logEvery): must be positive") }
        try sam.validate()
    }

    /// The base optimizer; with `--wd-in-ascent` the decay is in the loss instead.
    public var optimizerKind: OptimizerKind {
        let wd = sam.weightDecayInAscent ? 0 : weightDecay
        if optimizer == "adamw" { return .adamW(beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: wd) }
        return .sgd(momentum: momentum, nesterov: nesterov, weightDecay: wd)
    }
}
