/// One training step of the SAM family (docs/algorithms.md §1), top to bottom:
///
///     for each shard of this rank's batch:            (one, or b/m micro-shards)
///         clean pass → ascent → perturbed pass(es) → restore     (the variant's moves)
///         accumulate the shard's direction
///     allreduce the direction (mean over ranks)       (the only collective of shard scope)
///     clip by global norm (optional)
///     base-optimizer update
///
/// Each shard's direction pass is given a `DirectionTarget`: with micro-shards it adds its
/// gradient into `direction`, and the last shard's hands each layer's parameters to the step
/// as the backward pass finishes them, so that the step completes that slice (sum over the
/// shards, ÷ shards) and its bucket of the allreduce leaves at once (`BucketedAllreduce`). A
/// variant whose direction is not one pass's gradient (BSAM, GSAM) returns it, and the step
/// reduces it after its passes. A schedule (`--sam-every`, `--sam-from`) runs the plain step
/// instead of the variant on the steps it leaves out.
///
/// A shard that spans several ranks (m > b, or `--scope global`) averages its clean
/// gradient over its group inside `ShardPasses.cleanPass`: the global scope's one extra
/// allreduce.
public final class SAMStep: DirectionSink {
    public let model: Sequential
    public let variant: SAMVariant
    /// Which steps run the variant; the others are plain steps (`plain`).
    public let schedule: AscentSchedule
    /// The base optimizer alone, for the steps the schedule leaves plain.
    private let plain = NoPerturbation()
    public let layout: ShardLayout
    public let world: Communicator
    public let optimizer: Optimizer
    public let clipGradNorm: Float?
    public let passes: ShardPasses
    public let timer = PhaseTimer()

    /// Σ over this rank's shards of their directions, then the mean over all ranks.
    public let direction: FlatBuffer
    /// The mean over all ranks of `direction`, bucket by bucket.
    public let allreduce: BucketedAllreduce
    /// When set, every step measures ‖u‖ before clipping (`directionNorm`; conformance).
    public var measuresDirectionNorm = false
    /// ‖u‖ of the latest step before clipping (when measured or clipping is on).
    public private(set) var directionNorm: Double?
    /// Whether clipping scaled the latest step's direction.
    public private(set) var clipped = false

    /// - Parameters:
    ///   - group: the sub-communicator of the ranks that share a shard (nil when
    ///     `layout.groupSize` is 1); see `SAMStep.makeGroup`.
    init(model: Sequential, variant: SAMVariant, schedule: AscentSchedule = AscentSchedule(), layout: ShardLayout, world: Communicator,
                group: Communicator?, optimizer: Optimizer, descentLoss: LogitLoss,
                weightDecayInLoss: Float = 0, clipGradNorm: Float? = nil,
                allreduce settings: AllreduceSettings = AllreduceSettings(), microBatch: Int? = nil) {
        self.model = model
        self.variant = variant
        self.schedule = schedule
        self.layout = layout
        self.world = world
        self.optimizer = optimizer
        self.clipGradNorm = clipGradNorm
        direction = FlatBuffer(count: model.store.count)
        allreduce = BucketedAllreduce(communicator: world, parameters: model.store.parameters, settings: settings)
        passes = ShardPasses(model: model, descentLoss: descentLoss, group: group,
                             weightDecayInLoss: weightDecayInLoss, timer: timer, allreduce: settings, microBatch: microBatch)
        variant.prepareState(slots: layout.microShards, parameters: model.store.count)
    }

    /// The sub-communicator of consecutive ranks that share one shard (collective: every
    /// rank calls it). Nil when every shard lives within one rank.
    public static func makeGroup(layout: ShardLayout, world: Communicator) -> Communicator? {
        guard layout.groupSize > 1 else { return nil }
        return world.split(color: world.rank / layout.groupSize)
    }

    /// Runs one step on this rank's `images` [b, C, H, W] and `labels`.
    @discardableResult
    public func run(images: Tensor, labels: [Int32], context: StepContext) -> StepStatistics {
        let shards = layout.microShards
        let ascends = schedule.isEveryStep || schedule.runsAscent(step: context.step, totalSteps: context.totalSteps)
        let variant = ascends ? self.variant : plain
        var stats = StepStatistics(ascended: ascends && self.variant.perturbs)
        if shards > 1 { direction.zero() }

        // Moves 1–4, shard by shard; the last shard's direction pass starts the allreduce.
        for s in 0..<shards {
            let shard = shards == 1 ? Shard(images: images, labels: labels)
                                    : timer.measure(.data) { microShard(s, images: images, labels: labels) }
            let last = s == shards - 1
            if last { allreduce.begin(direction) }
            // Several micro-shards add their directions into `direction`; the last one's
            // parameters go to the allreduce as its backward pass finishes them.
            let target = DirectionTarget(accumulator: shards > 1 ? direction : nil, sink: last ? self : nil)
            var shardContext = context
            shardContext.slot = s
            let d = variant.direction(of: shard, with: passes, to: target, context: shardContext)
            if let buffer = d.buffer { passes.recorder?.record("direction", buffer: buffer) }
            if !d.streamed {
                timer.measure(.ascent) {
                    for slot in model.store.parameters.indices { complete(slot, shard: s, from: d.buffer) }
                }
            }
            stats.add(passes, examples: shard.count)
        }

        // Move 5: the descent. Under `.overlap` most buckets are on their way already.
        timer.measure(.allreduce) { allreduce.finish() }
        directionNorm = clipGradNorm != nil || measuresDirectionNorm ? direction.norm() : nil
        clipped = false
        if let clip = clipGradNorm, let norm = directionNorm, norm > Double(clip) {
            direction.scale(by: Float(Double(clip) / norm))
            clipped = true
        }
        timer.measure(.update) {
            optimizer.step(parameters: model.store.values, direction: direction, learningRate: context.learningRate)
        }
        return stats
    }

    /// Parameter `slot` of shard `s`'s direction `d` into `direction`: copied from the first
    /// shard, added from the others (nil: the pass added it there itself), and divided by
    /// the shard count after the last, whose slot then goes to the allreduce.
    private func complete(_ slot: Int, shard s: Int, from d: FlatBuffer?) {
        let p = model.store.parameters[slot], range = p.offset..<(p.offset + p.count)
        let out = direction.data, shards = layout.microShards
        if let d {
            let g = d.data
            if s == 0 {
                (out + p.offset).update(from: g + p.offset, count: p.count)
            } else {
                for i in range { out[i] += g[i] }
            }
        }
        if shards > 1 && s == shards - 1 {
            let scale = 1 / Float(shards)
            for i in range { out[i] *= scale }
        }
        if s == shards - 1 { allreduce.ready(slot: slot) }
    }

    /// The last shard's direction pass streams: each finished parameter is completed here.
    func parameterReady(_ index: Int, accumulated: Bool) {
        complete(index, shard: layout.microShards - 1, from: accumulated ? nil : model.store.gradients)
    }

    func progress() { allreduce.progress() }

    private let microImages = Tensor(shape: [0])

    /// Micro-shard `s` of the rank's batch (a copy into one reused tensor).
    private func microShard(_ s: Int, images: Tensor, labels: [Int32]) -> Shard {
        let n = layout.microShardSize
        var shape = images.shape
        let perExample = images.count / shape[0]
        shape[0] = n
        microImages.resize(shape)
        microImages.data.update(from: images.data + s * n * perExample, count: n * perExample)
        return Shard(images: microImages, labels: Array(labels[(s * n)..<((s + 1) * n)]))
    }
}

/// What one step saw on this rank (means over its shards).
public struct StepStatistics: Sendable {
    /// Whether the step ran an ascent (false: a plain step, `--sam none` or the schedule's).
    public var ascended = true
    public var examples = 0
    public var lossAtWSum = 0.0
    public var lossAtPerturbedSum = 0.0
    public var correct = 0
    public var gradientNormSum = 0.0
    public var epsilonNormSum = 0.0
    public var shards = 0

    public init(ascended: Bool = true) { self.ascended = ascended }

    mutating func add(_ passes: ShardPasses, examples n: Int) {
        examples += n
        shards += 1
        lossAtWSum += passes.lossAtW * Double(n)
        lossAtPerturbedSum += passes.lossAtPerturbed * Double(n)
        correct += passes.correctAtW
        gradientNormSum += passes.gradientNorm
        epsilonNormSum += passes.epsilonNorm
    }
}
