/// What a training step is built from, whoever runs it (the trainer, `bench`, the
/// conformance runner): the SAM settings, the base optimizer with the run's weight decay,
/// the label smoothing, the global batch and how the allreduce runs.
public struct StepSettings {
    public var sam: SAMConfiguration
    /// The base optimizer with the weight decay the run asks for; under `--wd-in-ascent`
    /// `SAMStep.make` moves that decay into the loss.
    public var optimizer: OptimizerKind
    /// nil: the variant's default.
    public var labelSmoothing: Float?
    /// B, all ranks together.
    public var globalBatch: Int
    public var allreduce: AllreduceSettings
    /// Examples per chunk of a pass (`--micro-batch`; nil: whole shards).
    public var microBatch: Int?

    public init(sam: SAMConfiguration, optimizer: OptimizerKind, labelSmoothing: Float? = nil, globalBatch: Int,
                allreduce: AllreduceSettings = AllreduceSettings(), microBatch: Int? = nil) {
        self.sam = sam
        self.optimizer = optimizer
        self.labelSmoothing = labelSmoothing
        self.globalBatch = globalBatch
        self.allreduce = allreduce
        self.microBatch = microBatch
    }

    /// A training run's step.
    public init(_ c: TrainingConfiguration) {
        self.init(sam: c.samConfiguration, optimizer: c.optimization.optimizerKind, globalBatch: c.batches.batchSize,
                  allreduce: c.communication.settings, microBatch: c.batches.microBatch)
    }
}

extension SAMStep {
    /// Builds the step of `settings` for `model` on every rank of `world` (collective): the
    /// shard layout of the scope, the variant (refusing a model it cannot work on), the
    /// rank group of a shard that spans ranks, the optimizer and the losses. Under
    /// `--wd-in-ascent` (docs/algorithms.md §1) the decay 0.5·wd·‖w‖² is in every pass's loss and
    /// the optimizer does not decay: the one place that rule is written.
    public static func make(model: Sequential, settings s: StepSettings, world: Communicator) throws -> SAMStep {
        let layout = try world.agree { try ShardLayout(scope: s.sam.scope, globalBatch: s.globalBatch, worldSize: world.size) }
        try world.agree { try layout.check(microBatch: s.microBatch) }
        let variant = try world.agree { try s.sam.makeVariant() }
        try world.agree { try variant.check(model: model) }
        let inLoss = s.sam.weightDecayInAscent
        let smoothing = s.labelSmoothing ?? s.sam.effectiveLabelSmoothing
        return SAMStep(model: model, variant: variant, schedule: s.sam.schedule, layout: layout, world: world,
                       group: makeGroup(layout: layout, world: world),
                       optimizer: (inLoss ? s.optimizer.withoutWeightDecay : s.optimizer).make(parameterCount: model.store.count),
                       descentLoss: SoftmaxCrossEntropy(labelSmoothing: smoothing),
                       weightDecayInLoss: inLoss ? s.optimizer.weightDecay : 0,
                       clipGradNorm: s.sam.clipGradNorm, allreduce: s.allreduce, microBatch: s.microBatch)
    }
}
