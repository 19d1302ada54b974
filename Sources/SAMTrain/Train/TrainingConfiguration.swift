import ArgumentParser

/// Every setting of a training run. The CLI fills it from flags; checkpoints and
/// `config.json` record it.
public struct TrainingConfiguration {
    public var model = "cnn"
    public var dataset = "fashion-mnist"
    public var dataDirectory = DatasetKind.defaultDirectory
    public var epochs = 3
    /// The global batch B (all ranks together).
    public var batchSize = 128
    public var learningRate: Float = 0.05
    public var momentum: Float = 0.9
    public var nesterov = false
    public var weightDecay: Float = 5e-4
    public var optimizer: OptimizerName = .sgd
    public var schedule = "cosine"
    public var warmupSteps = 0
    public var seed: UInt64 = 0
    public var threads = 1
    public var trainSubset: Int?
    /// Evaluate on the first N test examples only (quick runs; training is unaffected).
    public var testSubset: Int?
    public var maxSteps: Int?
    public var labelNoise: Float = 0
    public var labelSmoothing: Float?
    /// Training augmentation; nil: the dataset's default (`effectiveAugment`).
    public var augment: Augmentation.Kind?
    /// Side of the cutout square (0: off).
    public var cutout = 0
    public var outDirectory: String?
    /// TensorBoard event files of the metrics (`--tensorboard DIR`); never changes a result.
    public var tensorboardDirectory: String?
    /// Checkpoint every N steps (`--checkpoint-every N`) or every N epochs (`Nepoch`);
    /// with `--out` and neither, every epoch. Always at the end.
    public var checkpointEverySteps: Int?
    public var checkpointEveryEpochs: Int?
    /// Checkpoints kept (the newest).
    public var keep = 3
    /// A checkpoint file, or an `--out` directory whose newest valid checkpoint to resume.
    public var resume: String?
    /// Plain progress lines every N steps when stdout is not a terminal.
    public var logEvery = 50
    /// Seconds a collective may wait for a rank that stopped responding before the job ends
    /// (`Watchdog`); never changes a result.
    public var collectiveTimeout = 60.0
    /// Every rank prints its final parameter digest (replica-consistency tests).
    public var reportDigests = false
    public var sam = SAMConfiguration()
    /// How the gradient allreduce is bucketed and scheduled (never changes a result).
    public var allreduce = AllreduceSettings()

    public init() {}

    /// Cross-entropy label smoothing: the variant's default unless given (0.1 for BiSAM and
    /// BSAM, 0 for the others; SPEC §9).
    public var effectiveLabelSmoothing: Float {
        labelSmoothing ?? sam.options.defaultLabelSmoothing
    }

    /// crop-flip for CIFAR, none for the IDX sets (SPEC §7), unless `--augment` says.
    public var effectiveAugment: Augmentation.Kind {
        augment ?? (DatasetKind(rawValue: dataset)?.defaultAugment ?? .none)
    }

    /// The training-set augmentation of the run (nil when there is none).
    public var augmentation: Augmentation? {
        let a = Augmentation(kind: effectiveAugment, cutout: cutout, seed: seed)
        return a.isIdentity ? nil : a
    }

    /// Checks every value that is wrong whatever the data and rank count.
    public func validate() throws {
        _ = try Architecture.named(model)
        _ = try DatasetKind.named(dataset)
        guard cutout >= 0 else { throw SAMTrainError("--cutout \(cutout): must be ≥ 0 (0: off)") }
        guard epochs > 0 else { throw SAMTrainError("--epochs \(epochs): must be a positive number of epochs") }
        guard batchSize > 0 else { throw SAMTrainError("--batch-size \(batchSize): must be positive") }
        guard learningRate > 0, learningRate.isFinite else {
            throw SAMTrainError("--lr \(learningRate): the learning rate must be a positive number")
        }
        guard momentum >= 0, momentum < 1 else { throw SAMTrainError("--momentum \(momentum): must be in [0, 1)") }
        guard weightDecay >= 0 else { throw SAMTrainError("--weight-decay \(weightDecay): must be ≥ 0") }
        if nesterov && (optimizer != .sgd || momentum == 0) {
            throw SAMTrainError("--nesterov needs --optimizer sgd with a positive --momentum")
        }
        _ = try LearningRateSchedule.parseShape(schedule)
        guard warmupSteps >= 0 else { throw SAMTrainError("--warmup-steps \(warmupSteps): must be ≥ 0") }
        guard threads >= 1 else { throw SAMTrainError("--threads \(threads): must be at least 1") }
        if let trainSubset, trainSubset <= 0 { throw SAMTrainError("--train-subset \(trainSubset): must be positive") }
        if let testSubset, testSubset <= 0 { throw SAMTrainError("--test-subset \(testSubset): must be positive") }
        if let maxSteps, maxSteps <= 0 { throw SAMTrainError("--max-steps \(maxSteps): must be positive") }
        guard labelNoise >= 0, labelNoise < 1 else { throw SAMTrainError("--label-noise \(labelNoise): must be in [0, 1)") }
        if let s = labelSmoothing, !(s >= 0 && s < 1) { throw SAMTrainError("--label-smoothing \(s): must be in [0, 1)") }
        if let n = checkpointEverySteps, n <= 0 { throw SAMTrainError("--checkpoint-every \(n): must be positive") }
        if let n = checkpointEveryEpochs, n <= 0 { throw SAMTrainError("--checkpoint-every \(n)epoch: must be positive") }
        guard keep >= 1 else { throw SAMTrainError("--keep \(keep): keep at least 1 checkpoint") }
        guard collectiveTimeout >= 1, collectiveTimeout <= 1e6 else {
            throw SAMTrainError("--collective-timeout \(collectiveTimeout): must be between 1 and 1000000 seconds")
        }
        guard logEvery > 0 else { throw SAMTrainError("--log-every \(logEvery): must be positive") }
        try sam.validate()
    }

    /// Parses `--checkpoint-every`: `N` or `Nstep(s)` for steps, `Nepoch(s)` for epochs.
    public mutating func setCheckpointEvery(_ text: String) throws {
        let digits = text.prefix { $0.isNumber }
        let unit = text.dropFirst(digits.count).lowercased()
        guard let n = Int(digits), n > 0 else {
            throw SAMTrainError("--checkpoint-every \(text): give a positive number of steps (500) or epochs (1epoch)")
        }
        switch unit {
        case "", "s", "step", "steps": checkpointEverySteps = n; checkpointEveryEpochs = nil
        case "e", "epoch", "epochs": checkpointEveryEpochs = n; checkpointEverySteps = nil
        default: throw SAMTrainError("--checkpoint-every \(text): unknown unit \(unit); use steps (500) or epochs (1epoch)")
        }
    }

    /// Settings that change what a run computes: a resumed run must agree on all of them.
    public var resultDefiningSettings: [String: String] {
        var s: [String: String] = [
            "model": model, "dataset": dataset, "epochs": "\(epochs)", "batch_size": "\(batchSize)",
            "lr": "\(learningRate)", "momentum": "\(momentum)", "nesterov": "\(nesterov)",
            "weight_decay": "\(weightDecay)", "optimizer": optimizer.rawValue, "schedule": schedule,
            "warmup_steps": "\(warmupSteps)", "seed": "\(seed)", "train_subset": trainSubset.map(String.init) ?? "all",
            "label_noise": "\(labelNoise)", "label_smoothing": "\(effectiveLabelSmoothing)",
            "augment": effectiveAugment.rawValue, "cutout": "\(cutout)",
        ]
        s.merge(sam.resultDefiningSettings) { a, _ in a }
        return s
    }

    /// The base optimizer; with `--wd-in-ascent` the decay is in the loss instead.
    public var optimizerKind: OptimizerKind {
        let wd = sam.weightDecayInAscent ? 0 : weightDecay
        if optimizer == .adamw { return .adamW(beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: wd) }
        return .sgd(momentum: momentum, nesterov: nesterov, weightDecay: wd)
    }
}

/// `--optimizer`: the base optimizer (SPEC §5).
public enum OptimizerName: String, CaseIterable, Sendable, ExpressibleByArgument {
    case sgd, adamw
}
