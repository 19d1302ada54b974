import CBLAS
import Foundation

/// Data-parallel training (SPEC §6): every rank holds a full replica, takes its slice of
/// each global batch and runs the same `SAMStep`; rank 0 reports, records metrics and
/// writes checkpoints.
public final class Trainer {
    public let configuration: TrainingConfiguration
    public let world: Communicator
    public let model: Sequential
    public let step: SAMStep
    public let schedule: LearningRateSchedule
    public let train: Dataset
    public let test: Dataset
    /// The training-set augmentation (nil: none); the test set is never augmented.
    public let augmentation: Augmentation?
    public let log: Reporter
    public let metrics: MetricsLog
    public let stepsPerEpoch: Int
    public let totalSteps: Int
    /// Steps completed (restored from a checkpoint when resuming).
    public private(set) var globalStep = 0
    let checkpoints: CheckpointDirectory?
    /// Rank 0's lock on `--out` (nil elsewhere and without `--out`).
    let outLock: DirectoryLock?
    /// The newest checkpoint known to be good (this run's, or the one it resumed from).
    var lastGoodCheckpoint: (path: String, step: Int)?
    /// Time spent on progress lines, metrics records and checkpoints (the coordinator's
    /// overhead: what a run without them would not spend), per epoch.
    var coordinatorSeconds = 0.0

    /// Builds everything a run needs. Every stage that can fail on one rank alone goes
    /// through `world.agree`, so that all ranks fail together with one message.
    public init(configuration c: TrainingConfiguration, world: Communicator, log: Reporter) throws {
        configuration = c
        self.world = world
        self.log = log
        // A stop signal from now on ends the run at a step boundary (see `run`).
        StopRequest.install()
        try world.agree { try c.validate() }
        // From here on, a rank that stops responding ends the job within the timeout.
        if world.size > 1 { _ = Watchdog(world: world, timeout: c.collectiveTimeout) }
        openblas_set_num_threads(Int32(c.threads))

        let R = world.size
        try world.agree {
            guard c.batchSize % R == 0 else {
                let lower = c.batchSize / R * R, upper = lower + R
                throw SAMTrainError("--batch-size \(c.batchSize) (global) is not divisible by \(R) ranks; use a multiple of \(R), e.g. \(lower > 0 ? "\(lower) or " : "")\(upper)")
            }
        }
        let layout = try world.agree { try ShardLayout(scope: c.sam.scope, globalBatch: c.batchSize, worldSize: R) }
        let variant = try world.agree { try c.sam.makeVariant() }

        // Data: every rank reads the files itself (a shared filesystem, or a copy per host).
        let (train, allTest) = try world.agree {
            try DatasetKind.named(c.dataset).load(directory: c.dataDirectory, trainSubset: c.trainSubset,
                                                  labelNoise: c.labelNoise, seed: c.seed)
        }
        let test = c.testSubset.map { allTest.prefix($0) } ?? allTest
        self.train = train
        self.test = test
        augmentation = c.augmentation
        try world.agree {
            guard train.count >= c.batchSize else {
                throw SAMTrainError("--batch-size \(c.batchSize) exceeds the \(train.count) training examples")
            }
        }

        let architecture = try Architecture.named(c.model)
        try world.agree { try architecture.check(imageShape: train.imageShape, classes: train.classes, source: c.dataDirectory) }
        model = architecture.build(inputShape: [train.channels, train.height, train.width], classes: train.classes)
        stepsPerEpoch = train.count / c.batchSize
        totalSteps = min(stepsPerEpoch * c.epochs, c.maxSteps ?? Int.max)
        schedule = LearningRateSchedule(base: c.learningRate, shape: try LearningRateSchedule.parseShape(c.schedule),
                                        totalSteps: stepsPerEpoch * c.epochs, warmupSteps: c.warmupSteps)
        let built: Sequential = model
        try world.agree { try variant.check(model: built) }
        let group = SAMStep.makeGroup(layout: layout, world: world)
        step = SAMStep(model: model, variant: variant, layout: layout, world: world, group: group,
                       optimizer: c.optimizerKind.make(parameterCount: model.store.count),
                       descentLoss: SoftmaxCrossEntropy(labelSmoothing: c.effectiveLabelSmoothing),
                       weightDecayInLoss: c.sam.weightDecayInAscent ? c.weightDecay : 0,
                       clipGradNorm: c.sam.clipGradNorm, allreduce: c.allreduce)

        // Output directory: rank 0 writes; every rank learns whether it could.
        let out = c.outDirectory
        outLock = try world.agree { () -> DirectoryLock? in
            guard world.isCoordinator, let out else { return nil }
            try MetricsLog.makeDirectory(out)
            return try DirectoryLock(directory: out)
        }
        metrics = try world.agree {
            try MetricsLog(directory: world.isCoordinator ? out : nil, resuming: c.resume != nil,
                           tensorboard: world.isCoordinator ? c.tensorboardDirectory : nil)
        }
        checkpoints = out.map { CheckpointDirectory(path: $0, keep: c.keep) }

        // Parameters: from a checkpoint, or initialized from the seed on rank 0; then
        // broadcast, so that every replica starts bit-identical.
        if let resume = c.resume {
            globalStep = try restore(from: resume)
        } else if world.isCoordinator {
            model.initialize(seed: c.seed)
        }
        world.broadcast(model.store.values)
        // A resumed rank keeps the BatchNorm statistics it restored (its own, see saveCheckpoint).
        if c.resume == nil { world.broadcast(model.store.buffers) }

        let hosts = world.allgather(Communicator.processorName)
        var seen: [String] = []
        for h in hosts where !seen.contains(h) { seen.append(h) }
        try world.agree { try metrics.writeConfig(environment(hosts: hosts)) }
        log.info("samtrain: \(c.model) (\(model.store.count) parameters) on \(c.dataset): \(train.count) train / \(test.count) test examples, \(stepsPerEpoch) steps per epoch")
        log.info("ranks: \(R), hosts: \(seen.joined(separator: ",")); global batch \(c.batchSize) = \(R) × \(c.batchSize / R); \(c.threads) BLAS thread(s) per rank")
        log.info("optimizer: \(c.optimizer) lr \(c.learningRate) \(c.schedule), momentum \(c.momentum)\(c.nesterov ? " nesterov" : ""), weight decay \(c.weightDecay)\(c.sam.weightDecayInAscent ? " (in the loss)" : "")")
        if !c.sam.perturbs {
            log.info("sam: none (plain \(c.optimizer))")
        } else {
            log.info("sam: \(variant.name) ρ \(c.sam.effectiveRho), \(c.sam.globalScope ? "global scope (m = \(c.batchSize))" : "shard scope, m = \(layout.examplesPerPerturbation)")\(layout.microShards > 1 ? " (\(layout.microShards) micro-shards per rank)" : "")\(layout.groupSize > 1 ? " (\(layout.groupSize) ranks per shard)" : "")")
        }
        log.info("augmentation: \(c.effectiveAugment.rawValue)\(c.effectiveAugment == .cropFlip ? " (zero-pad \(Augmentation.padding), random \(train.height)×\(train.width) crop, horizontal flip ½)" : ""), cutout \(c.cutout > 0 ? "\(c.cutout)×\(c.cutout)" : "off")\(augmentation == nil ? "" : " (training set only)")")
        if c.labelNoise > 0 {
            log.info(String(format: "label noise: %d of %d training labels replaced by another class (%.4f)",
                            train.corruptedLabels, train.count, Double(train.corruptedLabels) / Double(train.count)))
        }
        if globalStep > 0 { log.info("resumed at step \(globalStep) of \(totalSteps)") }
    }

    /// Trains until the configured epochs (or `--max-steps`) are done, evaluating after
    /// each epoch and checkpointing as configured.
    @discardableResult
    public func run() throws -> [EpochRecord] {
        let c = configuration
        let b = c.batchSize / world.size
        let images = Tensor(shape: [b, train.channels, train.height, train.width])
        var labels = [Int32](repeating: 0, count: b)
        var records: [EpochRecord] = []
        let epochs = (totalSteps + stepsPerEpoch - 1) / stepsPerEpoch

        while globalStep < totalSteps {
            let epoch = globalStep / stepsPerEpoch
            let plan = EpochPlan(datasetCount: train.count, globalBatch: c.batchSize, rank: world.rank,
                                 worldSize: world.size, seed: c.seed, epoch: epoch)
            let start = PhaseTimer.now()
            var sums = [0.0, 0.0, 0.0]       // loss·n, correct, n over the epoch
            var interval = [0.0, 0.0, 0.0, 0.0, 0.0, 0.0]   // + loss at w+ε·n, ‖g‖, ‖ε‖
            var intervalStart = start
            step.timer.reset()
            let lastStep = min(stepsPerEpoch, totalSteps - epoch * stepsPerEpoch)
            var k = globalStep - epoch * stepsPerEpoch
            while k < lastStep {
                // The whole step's batch is augmented once: every pass and micro-shard sees it.
                step.timer.measure(.data) {
                    train.gather(plan.indices(forStep: k), into: images, labels: &labels, augmentation: augmentation, epoch: epoch)
                }
                Watchdog.current?.step = globalStep + 1
                let lr = schedule.rate(at: globalStep)
                let context = StepContext(step: globalStep, learningRate: lr,
                                          maximumLearningRate: schedule.maximum, minimumLearningRate: schedule.minimum, seed: c.seed)
                let logging = (k + 1) % c.logEvery == 0 && k + 1 < lastStep
                step.passes.measuresNorms = logging
                let stats = step.run(images: images, labels: labels, context: context)
                guard step.direction.isFinite, stats.lossAtWSum.isFinite else {
                    throw AgreedFailure.everywhere("step \(globalStep + 1) (epoch \(epoch + 1)): the loss is not finite (NaN or infinite gradient); \(lastGoodText); try a lower --lr", world: world)
                }
                globalStep += 1
                k += 1
                let local = [stats.lossAtWSum, Double(stats.correct), Double(stats.examples)]
                for i in 0..<3 { sums[i] += local[i]; interval[i] += local[i] }
                interval[3] += stats.lossAtPerturbedSum
                interval[4] += stats.gradientNormSum / Double(stats.shards)
                interval[5] += stats.epsilonNormSum / Double(stats.shards)
                if logging {
                    let loggingStart = PhaseTimer.now()
                    defer { coordinatorSeconds += PhaseTimer.now() - loggingStart }
                    let g = world.allreduceSum(interval)
                    let now = PhaseTimer.now()
                    let rate = g[2] / (now - intervalStart)
                    log.progress(epoch: epoch + 1, epochs: epochs, step: k, steps: lastStep, loss: g[0] / g[2],
                                 accuracy: g[1] / g[2], imagesPerSecond: rate, elapsed: now - start)
                    var record: [String: Any] = [
                        "kind": "step", "step": globalStep, "epoch": epoch + 1, "lr": Double(lr), "rho": Double(c.sam.effectiveRho),
                        "loss": g[0] / g[2], "accuracy": g[1] / g[2], "images_per_s": rate,
                        // The last step's norms (of rank 0's shards), the interval's losses.
                        "grad_norm": stats.gradientNormSum / Double(stats.shards),
                    ]
                    if c.sam.perturbs {
                        record["loss_perturbed"] = g[3] / g[2]
                        record["sharpness"] = (g[3] - g[0]) / g[2]
                        record["epsilon_norm"] = stats.epsilonNormSum / Double(stats.shards)
                    }
                    let phases = step.timer.seconds
                    record["seconds_per_step"] = Dictionary(uniqueKeysWithValues: Phase.allCases.map { ($0.rawValue, phases[$0, default: 0] / Double(k)) })
                    metrics.record(record)
                    interval = [0, 0, 0, 0, 0, 0]
                    intervalStart = now
                }
                if let every = c.checkpointEverySteps, globalStep % every == 0, globalStep < totalSteps {
                    try saveCheckpoint(batch: images, labels: labels)
                }
                // Mid-epoch stop requests; the epoch's last step is followed by its evaluation first.
                if k < lastStep { try stopIfRequested(batch: images, labels: labels) }
            }
            let seconds = PhaseTimer.now() - start
            let g = world.allreduceSum(sums)
            try checkReplicasAgree(epoch: epoch)
            let (testLoss, testAccuracy) = evaluate()
            let record = EpochRecord(epoch: epoch + 1, step: globalStep, trainLoss: g[0] / g[2], trainAccuracy: g[1] / g[2],
                                     testLoss: testLoss, testAccuracy: testAccuracy,
                                     imagesPerSecond: g[2] / seconds, seconds: seconds)
            records.append(record)
            log.epoch(record, epochs: epochs)
            let epochDone = globalStep % stepsPerEpoch == 0
            let everyEpochs = c.checkpointEveryEpochs ?? (c.checkpointEverySteps == nil ? 1 : nil)
            if globalStep == totalSteps || (epochDone && everyEpochs.map { (epoch + 1) % $0 == 0 } == true) {
                try saveCheckpoint(batch: images, labels: labels)
            }
            let loggingStart = PhaseTimer.now()
            metrics.epoch(record, coordinatorSeconds: coordinatorSeconds)
            if checkpoints != nil {
                let overhead = coordinatorSeconds + PhaseTimer.now() - loggingStart
                log.info(String(format: "  progress, metrics and checkpoints: %.3f s this epoch (%.2f%% of the epoch's %.1f s)",
                                overhead, 100 * overhead / seconds, seconds))
            }
            coordinatorSeconds = 0
            if globalStep < totalSteps { try stopIfRequested(batch: images, labels: labels) }
        }
        let digest = model.store.values.digest()
        if configuration.reportDigests {
            // Every rank speaks for itself (tests compare the lines).
            print("rank \(world.rank) parameter digest \(String(digest, radix: 16))")
            fflush(stdout)
            world.barrier()
        }
        let peakMB = world.allreduceMaxDoubles([Benchmark.peakResidentMB()])[0]
        log.info("done: \(globalStep) steps; parameter digest \(String(digest, radix: 16)); "
                 + String(format: "peak memory %.0f MB per rank (resident, largest rank)", peakMB))
        return records
    }

    /// Test loss and accuracy over the whole test set, split across ranks (SPEC §6), with
    /// BatchNorm's running statistics averaged across ranks first.
    public func evaluate() -> (loss: Double, accuracy: Double) {
        world.allreduceMean(model.store.buffers)
        return Evaluation.run(model: model, dataset: test, world: world)
    }

    // MARK: Checkpoints

    /// Ends the run here when any rank has received a stop signal: the ranks agree with one
    /// allreduce (so all stop after this same step), rank 0 writes this step's checkpoint
    /// unless it just did, and every rank throws `TrainingStopped`.
    func stopIfRequested(batch: Tensor, labels: [Int32]) throws {
        let signal = Int32(world.allreduceMax(Int64(StopRequest.received)))
        guard signal != 0 else { return }
        if checkpoints != nil, lastGoodCheckpoint?.step != globalStep { try saveCheckpoint(batch: batch, labels: labels) }
        throw TrainingStopped(signal: signal, step: globalStep, checkpoint: checkpoints == nil ? nil : lastGoodCheckpoint?.path)
    }

    /// What the user is told of the checkpoint kept when a run diverges.
    var lastGoodText: String {
        guard checkpoints != nil else { return "no checkpoint is written without --out" }
        guard let good = lastGoodCheckpoint else { return "no good checkpoint was written before" }
        return "the last good checkpoint, step \(good.step), is kept: \(good.path)"
    }

    /// Whether the state is good enough to checkpoint: every parameter, BatchNorm statistic
    /// and optimizer value finite, and the loss at these parameters, in eval mode on each
    /// rank's part of `batch`, finite. (Weights of 1e16 are finite yet evaluate to NaN.)
    /// Collective; every rank returns the same answer.
    func stateIsGood(batch: Tensor, labels: [Int32]) -> Bool {
        var good = model.store.values.isFinite && model.store.buffers.isFinite && step.optimizer.state.allSatisfy { $0.buffer.isFinite }
        if good, batch.shape[0] > 0 {
            let logits = model.forward(batch, mode: .eval)
            let gradient = Tensor(shape: [batch.shape[0], model.classes])
            good = SoftmaxCrossEntropy().evaluate(logits: logits, labels: labels, gradient: gradient).loss.isFinite
        }
        return world.allreduceMin(good ? 1 : 0) == 1
    }

    /// Writes a checkpoint (rank 0), with BatchNorm statistics averaged across ranks first,
    /// when the state is good (`stateIsGood` on `batch`, the step's batch); otherwise the run
    /// has diverged and stops, keeping the last good checkpoint. Collective: every rank calls
    /// it at the same step.
    func saveCheckpoint(batch: Tensor, labels: [Int32]) throws {
        guard let checkpoints else { return }
        let start = PhaseTimer.now()
        defer { coordinatorSeconds += PhaseTimer.now() - start }
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
        // Every rank's variant state (one buffer per shard slot), gathered on rank 0.
        let variantState = step.variant.state
        var rankVariantState: [[(name: String, values: [Float])]] = []
        if !variantState.isEmpty {
            let all = world.gather(variantState.flatMap { $0.buffer.array })
            let length = variantState.reduce(0) { $0 + $1.buffer.count }
            if world.isCoordinator {
                rankVariantState = (0..<R).map { r in
                    var offset = r * length
                    return variantState.map { entry in
                        defer { offset += entry.buffer.count }
                        return (entry.name, Array(all[offset..<(offset + entry.buffer.count)]))
                    }
                }
            }
        }
        guard stateIsGood(batch: batch, labels: labels) else {
            throw AgreedFailure.everywhere("step \(globalStep): the parameters are not finite or evaluate to a non-finite loss (the run diverged); no checkpoint is written for this step; \(lastGoodText); try a lower --lr", world: world)
        }
        try world.agree {
            guard world.isCoordinator else { return }
            let epoch = globalStep / stepsPerEpoch
            let settings = configuration.resultDefiningSettings
            var metadata: [String: String] = [
                "step": "\(globalStep)", "epoch": "\(epoch)", "step_in_epoch": "\(globalStep - epoch * stepsPerEpoch)",
                "steps_per_epoch": "\(stepsPerEpoch)", "world_size": "\(world.size)",
                "learning_rate_next": "\(schedule.rate(at: globalStep))",
                // Every random draw is keyed by (seed, stream, index): no generator state to store.
                "rng": "splitmix64 streams keyed by seed \(configuration.seed)",
                // Where eval and sharpness find the data by default.
                // Absolute: eval may run from another directory.
                "data": URL(fileURLWithPath: configuration.dataDirectory).standardizedFileURL.path,
            ]
            let json = try JSONSerialization.data(withJSONObject: settings, options: [.sortedKeys])
            metadata["settings"] = String(decoding: json, as: UTF8.self)
            try checkpoints.save(Checkpoint(model: model, optimizer: step.optimizer, metadata: metadata, buffers: mean.array, rankBuffers: rankBuffers,
                                            rankVariantState: rankVariantState),
                                 step: globalStep)
        }
        lastGoodCheckpoint = (checkpoints.fileName(step: globalStep), globalStep)
        Watchdog.current?.newestCheckpoint = lastGoodCheckpoint?.path
    }

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
            let meta = checkpoint.metadata
            var differences: [String] = []
            if meta["world_size"] != "\(world.size)" {
                differences.append("ranks: checkpoint \(meta["world_size"] ?? "?"), now \(world.size)")
            }
            let saved = (meta["settings"].flatMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) } as? [String: String]) ?? [:]
            // Checkpoints from before augmentation was a setting trained without it.
            let before: [String: String] = ["augment": "none", "cutout": "0"]
            for (key, now) in configuration.resultDefiningSettings.sorted(by: { $0.key < $1.key }) where (saved[key] ?? before[key]) != now {
                differences.append("\(key): checkpoint \(saved[key] ?? "?"), now \(now)")
            }
            guard differences.isEmpty else {
                throw SAMTrainError("--resume \(location): the checkpoint was made with other settings; \(differences.joined(separator: "; "))")
            }
            guard let step = try checkpoint.count("step", source: location, required: false), step <= totalSteps else {
                throw SAMTrainError("--resume \(location): the checkpoint's step is missing or beyond the run's \(totalSteps) steps")
            }
            try checkpoint.restore(into: model, optimizer: step == 0 ? nil : self.step.optimizer, source: location, rank: world.rank)
            try checkpoint.restoreVariantState(self.step.variant.state, rank: world.rank, source: location)
            lastGoodCheckpoint = (resumedPath, step)
            Watchdog.current?.newestCheckpoint = resumedPath
            return step
        }
    }

    /// SPEC §6: every rank must hold bit-identical parameters.
    func checkReplicasAgree(epoch: Int) throws {
        let digests = world.allgather(model.store.values.digest())
        if let bad = digests.firstIndex(where: { $0 != digests[0] }) {
            throw AgreedFailure.everywhere("after epoch \(epoch + 1), rank \(bad)'s parameters differ from rank 0's (digest \(String(digests[bad], radix: 16)) vs \(String(digests[0], radix: 16))): the replicas diverged", world: world)
        }
    }

    /// `config.json`: every setting, the ranks and hosts, versions.
    func environment(hosts: [String]) -> [String: Any] {
        let c = configuration
        var settings: [String: Any] = c.resultDefiningSettings
        settings["data"] = c.dataDirectory
        settings["max_steps"] = c.maxSteps.map { $0 as Any } ?? NSNull()
        settings["test_subset"] = c.testSubset.map { $0 as Any } ?? NSNull()
        settings["threads"] = c.threads
        settings["out"] = c.outDirectory ?? NSNull()
        settings["tensorboard"] = c.tensorboardDirectory ?? NSNull()
        settings["resume"] = c.resume ?? NSNull()
        settings["keep"] = c.keep
        settings["log_every"] = c.logEvery
        return [
            "settings": settings,
            "world_size": world.size,
            "hosts": hosts,
            "parameters": model.store.count,
            "steps_per_epoch": stepsPerEpoch,
            "total_steps": totalSteps,
            "corrupted_labels": train.corruptedLabels,
            "versions": Versions.all,
        ]
    }
}

/// One epoch's results, as logged.
public struct EpochRecord: Codable, Sendable, Equatable {
    public var epoch: Int
    public var step: Int
    public var trainLoss: Double
    public var trainAccuracy: Double
    public var testLoss: Double
    public var testAccuracy: Double
    public var imagesPerSecond: Double
    public var seconds: Double
}
