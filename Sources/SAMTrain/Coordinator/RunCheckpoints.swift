import Foundation

/// The checkpoints of one training run, for every rank: saving (the ranks' BatchNorm
/// statistics and variant state gathered, the finite-state check, rank 0 writing), resuming
/// (rank 0 reads, every rank restores, the settings compared), and the newest good one, which
/// a diverged or stopped run names. Collective: every rank calls each method at the same step.
public final class RunCheckpoints {
    let world: Communicator
    let model: Sequential
    let step: SAMStep
    let configuration: TrainingConfiguration
    let schedule: LearningRateSchedule
    let stepsPerEpoch: Int
    let totalSteps: Int
    /// Where they are written (nil without `--out`: nothing is).
    let directory: CheckpointDirectory?
    let log: Reporter
    /// Told of the newest checkpoint, which it names if it ends the job.
    let watchdog: Watchdog?
    /// The newest checkpoint known to be good (this run's, or the one it resumed from).
    public private(set) var lastGood: (path: String, step: Int)? {
        didSet { watchdog?.newestCheckpoint = lastGood?.path }
    }
    /// The epoch so far of the checkpoint resumed from, this rank's (nil: resumed at an
    /// epoch's end, or from a checkpoint written before samtrain kept it).
    private(set) var resumedEpoch: EpochProgress?

    init(world: Communicator, model: Sequential, step: SAMStep, configuration: TrainingConfiguration,
         schedule: LearningRateSchedule, stepsPerEpoch: Int, totalSteps: Int, directory: CheckpointDirectory?,
         log: Reporter, watchdog: Watchdog?) {
        self.world = world
        self.model = model
        self.step = step
        self.configuration = configuration
        self.schedule = schedule
        self.stepsPerEpoch = stepsPerEpoch
        self.totalSteps = totalSteps
        self.directory = directory
        self.log = log
        self.watchdog = watchdog
    }

    public var areWritten: Bool { directory != nil }

    /// What the user is told of the checkpoint kept when a run diverges.
    var lastGoodText: String {
        guard directory != nil else { return "no checkpoint is written without --out" }
        guard let good = lastGood else { return "no good checkpoint was written before" }
        return "the last good checkpoint, step \(good.step), is kept: \(good.path)"
    }

    // MARK: Saving

    /// Writes the checkpoint of step `globalStep` (rank 0), with BatchNorm statistics averaged
    /// across ranks, when the state is good (`stateIsGood` on `batch`, the step's batch);
    /// otherwise the run has diverged and stops, keeping the last good checkpoint.
    /// `epoch`: the epoch so far, kept when the step is mid-epoch.
    func save(globalStep: Int, batch: Tensor, labels: [Int32], epoch: EpochProgress) throws {
        guard let directory else { return }
        let epochMetadata = globalStep % stepsPerEpoch == 0 ? [:] : epoch.metadata(world: world, now: PhaseTimer.now())
        // Every rank's own BatchNorm statistics, and their mean, without touching the live
        // ones: checkpointing at any step must not change the run (resume is bit-exact).
        let n = model.store.buffers.count, R = world.size
        var gathered = [Float](repeating: 0, count: n * R)
        for i in 0..<n { gathered[world.rank * n + i] = model.store.buffers[i] }
        gathered.withUnsafeMutableBufferPointer { world.allreduceSum($0.baseAddress!, count: $0.count) }
        let rankBuffers = R > 1 ? (0..<R).map { Array(gathered[($0 * n)..<(($0 + 1) * n)]) } : []
        let mean = FlatBuffer(count: n)   // the mean as eval takes it (allreduceMean's arithmetic)
        for i in 0..<n { mean[i] = model.store.buffers[i] }
        world.allreduceMean(mean)
        let rankVariantState = gatherVariantState()
        guard stateIsGood(batch: batch, labels: labels) else {
            throw AgreedFailure.everywhere("step \(globalStep): the parameters are not finite or evaluate to a non-finite loss (the run diverged); no checkpoint is written for this step; \(lastGoodText); try a lower --lr", world: world)
        }
        try world.agree {
            guard world.isCoordinator else { return }
            let metadata = try metadata(globalStep: globalStep).merging(epochMetadata) { a, _ in a }
            try directory.save(Checkpoint(model: model, optimizer: step.optimizer, metadata: metadata,
                                          buffers: mean.array, rankBuffers: rankBuffers, rankVariantState: rankVariantState),
                               step: globalStep)
        }
        lastGood = (directory.fileName(step: globalStep), globalStep)
    }

    /// Every rank's variant state (one buffer per shard slot), gathered on rank 0.
    private func gatherVariantState() -> [[(name: String, values: [Float])]] {
        let variantState = step.variant.state
        guard !variantState.isEmpty else { return [] }
        let all = world.gather(variantState.flatMap { $0.buffer.array })
        let length = variantState.reduce(0) { $0 + $1.buffer.count }
        guard world.isCoordinator else { return [] }
        return (0..<world.size).map { r in
            var offset = r * length
            return variantState.map { entry in
                defer { offset += entry.buffer.count }
                return (entry.name, Array(all[offset..<(offset + entry.buffer.count)]))
            }
        }
    }

    /// What a checkpoint says of the run besides its tensors.
    private func metadata(globalStep: Int) throws -> [String: String] {
        let epoch = globalStep / stepsPerEpoch
        let settings = try JSONSerialization.data(withJSONObject: configuration.resultDefiningSettings, options: [.sortedKeys])
        return [
            "step": "\(globalStep)", "epoch": "\(epoch)", "step_in_epoch": "\(globalStep - epoch * stepsPerEpoch)",
            "steps_per_epoch": "\(stepsPerEpoch)", "world_size": "\(world.size)",
            "threads": "\(model.parallelism.threads)",
            "learning_rate_next": "\(schedule.rate(at: globalStep))",
            // Every random draw is keyed by (seed, stream, index): no generator state to store,
            // only how the keys make streams (the seed is among the settings).
            "rng": SplitMix64.keying,
            // Where eval and sharpness find the data by default.
            // Absolute: eval may run from another directory.
            "data": URL(fileURLWithPath: configuration.data.data).standardizedFileURL.path,
            "settings": String(decoding: settings, as: UTF8.self),
        ]
    }

    /// Whether the state is good enough to checkpoint: every parameter, BatchNorm statistic
    /// and optimizer value finite, and the loss at these parameters, in eval mode on each
    /// rank's part of `batch`, finite. (Weights of 1e16 are finite yet evaluate to NaN.)
    /// Every rank returns the same answer.
    func stateIsGood(batch: Tensor, labels: [Int32]) -> Bool {
        var good = model.store.values.isFinite && model.store.buffers.isFinite && step.optimizer.state.allSatisfy { $0.buffer.isFinite }
        if good, batch.shape[0] > 0 {
            let logits = model.forward(batch, mode: .eval)
            let gradient = Tensor(shape: [batch.shape[0], model.classes])
            good = SoftmaxCrossEntropy().evaluate(logits: logits, labels: labels, gradient: gradient).loss.isFinite
        }
        return world.allreduceMin(good ? 1 : 0) == 1
    }

    // MARK: Resuming

    /// Loads the checkpoint at `location` on every rank (rank 0 reads the file and
    /// broadcasts it, so hosts need not share a filesystem). Returns the step to resume at.
    func restore(from location: String) throws -> Int {
        var resumedPath = location
        let bytes = try world.agree { () -> [UInt8] in
            guard world.isCoordinator else { return [] }
            let (path, _) = try CheckpointDirectory.resolve(location) { log.info("resume: \($0)") }
            log.info("resuming from \(path)")
            resumedPath = path
            return [UInt8](FileManager.default.contents(atPath: path) ?? Data())
        }
        let shared = world.broadcast(bytes: bytes)
        return try world.agree {
            let checkpoint = try Checkpoint(bytes: shared, source: location)
            let differences = self.differences(from: checkpoint.metadata)
            guard differences.isEmpty else {
                throw SAMTrainError("--resume \(location): the checkpoint was made with other settings; \(differences.joined(separator: "; "))")
            }
            guard let resumed = try checkpoint.count("step", source: location, required: false), resumed <= totalSteps else {
                throw SAMTrainError("--resume \(location): the checkpoint's step is missing or beyond the run's \(totalSteps) steps")
            }
            // Another thread count sums ∂W over other parts of the batch (docs/algorithms.md
            // §12.4): the run goes on, in other float rounding than an uninterrupted one.
            if let then = checkpoint.metadata["threads"], then != "\(model.parallelism.threads)", world.isCoordinator {
                log.info("resume: the checkpoint's run used --threads \(then), this one \(model.parallelism.threads): from here on its float rounding differs from an uninterrupted run's")
            }
            try checkpoint.restore(into: model, optimizer: resumed == 0 ? nil : step.optimizer, source: location, rank: world.rank)
            try checkpoint.restoreVariantState(step.variant.state, rank: world.rank, source: location)
            resumedEpoch = resumed % stepsPerEpoch == 0 ? nil
                : EpochProgress(metadata: checkpoint.metadata, rank: world.rank)
            lastGood = (resumedPath, resumed)
            return resumed
        }
    }

    /// The settings (and rank count) in which a checkpoint's run differs from this one.
    func differences(from meta: [String: String]) -> [String] {
        var differences: [String] = []
        if meta["world_size"] != "\(world.size)" {
            differences.append("ranks: checkpoint \(meta["world_size"] ?? "?"), now \(world.size)")
        }
        if let streams = Self.streamDifference(saved: meta["rng"]) { differences.append(streams) }
        let saved = (meta["settings"].flatMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) } as? [String: String]) ?? [:]
        return differences + Self.settingDifferences(saved: saved, now: configuration.resultDefiningSettings)
    }

    /// How a checkpoint's random streams (`rng`) differ from this build's, if they do.
    /// Checkpoints before 2026-12 keyed their streams so that they overlapped: the same seed
    /// now draws another order, label noise and augmentation, so such a run cannot go on.
    static func streamDifference(saved rng: String?) -> String? {
        rng == SplitMix64.keying ? nil
            : "random streams: checkpoint \"\(rng ?? "?")\", now \"\(SplitMix64.keying)\" (the same seed draws otherwise since samtrain mended how it keys them, docs/algorithms.md §6.6; start the run again)"
    }

    /// The result-defining settings in which a checkpoint's run (`saved`) differs from this one.
    static func settingDifferences(saved: [String: String], now settings: [String: String]) -> [String] {
        // A checkpoint written before its model family had flags used the family's defaults
        // (a ViT: the preset of its --model).
        let familyDefaults = saved["model"].flatMap(Architecture.init(rawValue:)).map {
            Dictionary(ModelConfiguration($0).settings.map { ($0.key, $0.value.text) }) { first, _ in first }
        } ?? [:]
        var differences: [String] = []
        for (key, now) in settings.sorted(by: { $0.key < $1.key }) {
            let then = saved[key] ?? settingBeforeItExisted[key] ?? familyDefaults[key] ?? "none"
            if then != now && !(legacyUnset[key] == then && now == "none") {
                differences.append("\(key): checkpoint \(saved[key] ?? "?"), now \(now)")
            }
        }
        return differences
    }

    /// A setting a checkpoint lacks because it was written before the setting existed had
    /// this value then (unset otherwise).
    static let settingBeforeItExisted = ["augment": "none", "cutout": "0", "sam_every": "1", "sam_from": "0.0"]
    /// How checkpoints written before the settings were declared spelled an unset value.
    static let legacyUnset = ["train_subset": "all", "m": "per-rank batch", "clip_grad_norm": "off"]
}
