import CBLAS
import Foundation

/// Data-parallel training (docs/algorithms.md §6): every rank holds a full replica, takes its
/// slice of each global batch and runs the same `SAMStep`, epoch after epoch; rank 0
/// reports and records metrics, and `RunCheckpoints` writes and restores checkpoints.
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
    public let checkpoints: RunCheckpoints
    public let stepsPerEpoch: Int
    public let totalSteps: Int
    /// Steps completed (restored from a checkpoint when resuming).
    public private(set) var globalStep = 0
    /// Ends the job when a rank stops responding (nil with one rank).
    let watchdog: Watchdog?
    /// Rank 0's lock on `--out` (nil elsewhere and without `--out`).
    let outLock: DirectoryLock?
    /// What config.json records of the data (classes, normalization, class names).
    let dataDescription: [String: Any]
    /// What config.json records of the `--init` file (path, SHA-256, what was loaded).
    var initialWeightsDescription: [String: Any]?
    /// Time spent on progress lines, metrics records and checkpoints (the coordinator's
    /// overhead: what a run without them would not spend), per epoch.
    var coordinatorSeconds = 0.0
    /// The epoch being trained, so far (a checkpoint mid-epoch keeps it).
    var epochSoFar = EpochProgress(start: 0)

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
        watchdog = world.size > 1 ? Watchdog(world: world, timeout: c.run.collectiveTimeout) : nil
        if let watchdog { world.watch(with: watchdog) }
        // samtrain cuts its GEMMs among its own threads (`Parallelism`): OpenBLAS runs one.
        openblas_set_num_threads(1)

        let R = world.size, batchSize = c.batches.batchSize, sam = c.samConfiguration
        try world.agree {
            guard batchSize % R == 0 else {
                let lower = batchSize / R * R, upper = lower + R
                throw SAMTrainError("--batch-size \(batchSize) (global) is not divisible by \(R) ranks; use a multiple of \(R), e.g. \(lower > 0 ? "\(lower) or " : "")\(upper)")
            }
        }

        // Data: every rank reads the files itself (a shared filesystem, or a copy per host).
        let loaded = try world.agree {
            try c.data.dataset.load(data: c.data.data, trainSubset: c.data.trainSubset,
                                    labelNoise: c.data.labelNoise, seed: c.batches.seed)
        }
        let (train, allTest) = loaded.splits
        dataDescription = loaded.description
        let test = c.data.testSubset.map { allTest.prefix($0) } ?? allTest
        self.train = train
        self.test = test
        augmentation = c.augmentation
        try world.agree {
            guard train.count >= batchSize else {
                throw SAMTrainError("--batch-size \(batchSize) exceeds the \(train.count) training examples")
            }
        }

        let architecture = c.model.configuration
        try world.agree { try architecture.check(imageShape: train.imageShape, classes: train.classes, source: c.data.data) }
        model = architecture.build(inputShape: [train.channels, train.height, train.width], classes: train.classes)
        model.parallelism = Parallelism(threads: c.run.threads)
        // A fresh run starts from the seed, and from --init's weights where they fit (before
        // anything is written: a file that does not fit ends the run with nothing in --out).
        if c.run.resume == nil {
            if world.isCoordinator { model.initialize(seed: c.batches.seed) }
            if let file = c.model.initialWeights {
                let model = model, log = log
                initialWeightsDescription = try world.agree {
                    try world.isCoordinator ? Self.loadInitialWeights(file, into: model, named: architecture.commandLine,
                                                                       exclude: c.model.initExclude, log: log) : nil
                }
            }
        }
        let epochs = c.batches.epochs
        stepsPerEpoch = train.count / batchSize
        totalSteps = min(stepsPerEpoch * epochs, c.run.maxSteps ?? Int.max)
        schedule = LearningRateSchedule(base: c.optimization.lr, shape: c.optimization.schedule,
                                        totalSteps: stepsPerEpoch * epochs, warmupSteps: c.optimization.warmupSteps)
        step = try SAMStep.make(model: model, settings: StepSettings(c), world: world)

        // Output directory: rank 0 writes; every rank learns whether it could.
        let out = c.run.out
        outLock = try world.agree { () -> DirectoryLock? in
            guard world.isCoordinator, let out else { return nil }
            try MetricsLog.makeDirectory(out)
            return try DirectoryLock(directory: out)
        }
        metrics = try world.agree {
            try MetricsLog(directory: world.isCoordinator ? out : nil, resuming: c.run.resume != nil,
                           tensorboard: world.isCoordinator ? c.run.tensorboard : nil)
        }
        checkpoints = RunCheckpoints(world: world, model: model, step: step, configuration: c, schedule: schedule,
                                     stepsPerEpoch: stepsPerEpoch, totalSteps: totalSteps,
                                     directory: out.map { CheckpointDirectory(path: $0, keep: c.run.keep) },
                                     log: log, watchdog: watchdog)

        // Parameters: restored from a checkpoint, or as initialized above on rank 0; then
        // broadcast, so that every replica starts bit-identical.
        if let resume = c.run.resume { globalStep = try checkpoints.restore(from: resume) }
        world.broadcast(model.store.values)
        // A resumed rank keeps the BatchNorm statistics it restored (its own, see saveCheckpoint).
        if c.run.resume == nil { world.broadcast(model.store.buffers) }

        let hosts = world.allgather(Communicator.processorName)
        var seen: [String] = []
        for h in hosts where !seen.contains(h) { seen.append(h) }
        try world.agree { try metrics.writeConfig(environment(hosts: hosts)) }
        let o = c.optimization, d = c.data, layout = step.layout
        log.info("samtrain: \(architecture.commandLine) (\(model.store.count) parameters) on \(d.dataset.rawValue): \(train.count) train / \(test.count) test examples, \(stepsPerEpoch) steps per epoch")
        log.info("ranks: \(R), hosts: \(seen.joined(separator: ",")); global batch \(batchSize) = \(R) × \(batchSize / R); \(c.run.threads) thread(s) per rank")
        log.info("optimizer: \(o.optimizer) lr \(o.lr) \(o.schedule), momentum \(o.momentum)\(o.nesterov ? " nesterov" : ""), weight decay \(o.weightDecay)\(sam.weightDecayInAscent ? " (in the loss)" : "")")
        if !sam.perturbs {
            log.info("sam: none (plain \(o.optimizer))")
        } else {
            log.info("sam: \(step.variant.name) ρ \(sam.effectiveRho), \(sam.globalScope ? "global scope (m = \(batchSize))" : "shard scope, m = \(layout.examplesPerPerturbation)")\(layout.microShards > 1 ? " (\(layout.microShards) micro-shards per rank)" : "")\(layout.groupSize > 1 ? " (\(layout.groupSize) ranks per shard)" : "")")
            if !sam.schedule.isEveryStep {
                let first = Int((sam.schedule.from * Double(schedule.totalSteps)).rounded(.up))
                log.info("sam steps: every \(sam.schedule.every) from step \(first) of \(schedule.totalSteps); plain \(o.optimizer) steps between")
            }
        }
        log.info("augmentation: \(d.effectiveAugment.rawValue)\(d.effectiveAugment == .cropFlip ? " (zero-pad \(Augmentation.padding), random \(train.height)×\(train.width) crop, horizontal flip ½)" : ""), cutout \(d.cutout > 0 ? "\(d.cutout)×\(d.cutout)" : "off")\(augmentation == nil ? "" : " (training set only)")")
        if let source = loaded.normalizationSource, let n = train.normalization {
            let values = { (v: [Float]) in v.map { String(format: "%.4f", $0) }.joined(separator: ", ") }
            log.info("normalization: mean (\(values(n.mean))), std (\(values(n.std))), \(source.rawValue)\(loaded.classNames.map { "; classes \($0.joined(separator: ", "))" } ?? "")")
        }
        if d.labelNoise > 0 {
            log.info(String(format: "label noise: %d of %d training labels replaced by another class (%.4f)",
                            train.corruptedLabels, train.count, Double(train.corruptedLabels) / Double(train.count)))
        }
        if globalStep > 0 { log.info("resumed at step \(globalStep) of \(totalSteps)") }
    }

    /// Trains until the configured epochs (or `--max-steps`) are done, evaluating after
    /// each epoch and checkpointing as configured.
    @discardableResult
    public func run() throws -> [EpochRecord] {
        let c = configuration, sam = c.samConfiguration
        let batchSize = c.batches.batchSize, seed = c.batches.seed, b = batchSize / world.size
        let images = Tensor(shape: [b, train.channels, train.height, train.width])
        var labels = [Int32](repeating: 0, count: b)
        var records: [EpochRecord] = []
        let epochs = (totalSteps + stepsPerEpoch - 1) / stepsPerEpoch

        while globalStep < totalSteps {
            let epoch = globalStep / stepsPerEpoch
            let plan = EpochPlan(datasetCount: train.count, globalBatch: batchSize, rank: world.rank,
                                 worldSize: world.size, seed: seed, epoch: epoch)
            let start = PhaseTimer.now()
            var interval = StepTotals()
            var intervalStart = start
            step.timer.reset()
            let lastStep = min(stepsPerEpoch, totalSteps - epoch * stepsPerEpoch)
            var k = globalStep - epoch * stepsPerEpoch
            // The timers and the clock start here, not at the epoch's first step after a resume.
            let firstStep = k
            // A run resumed mid-epoch takes up the epoch's totals and seconds from its checkpoint.
            epochSoFar = EpochProgress(start: start)
            if k > 0, let resumed = checkpoints.resumedEpoch {
                epochSoFar.totals = resumed.totals
                epochSoFar.earlierSeconds = resumed.earlierSeconds
            }
            while k < lastStep {
                // The whole step's batch is augmented once: every pass and micro-shard sees it.
                step.timer.measure(.data) {
                    train.gather(plan.indices(forStep: k), into: images, labels: &labels, augmentation: augmentation, epoch: epoch)
                }
                watchdog?.step = globalStep + 1
                let lr = schedule.rate(at: globalStep)
                let context = StepContext(step: globalStep, learningRate: lr, maximumLearningRate: schedule.maximum,
                                          minimumLearningRate: schedule.minimum, seed: seed, totalSteps: schedule.totalSteps)
                let logging = (k + 1) % c.run.logEvery == 0 && k + 1 < lastStep
                step.passes.measuresNorms = logging
                let stats = step.run(images: images, labels: labels, context: context)
                guard step.direction.isFinite, stats.lossAtWSum.isFinite else {
                    throw AgreedFailure.everywhere("step \(globalStep + 1) (epoch \(epoch + 1)): the loss is not finite (NaN or infinite gradient); \(checkpoints.lastGoodText); try a lower --lr", world: world)
                }
                globalStep += 1
                k += 1
                epochSoFar.totals.add(stats)
                interval.add(stats)
                if logging {
                    let loggingStart = PhaseTimer.now()
                    defer { coordinatorSeconds += PhaseTimer.now() - loggingStart }
                    let g = interval.summed(over: world)
                    let now = PhaseTimer.now()
                    let rate = g.examples / (now - intervalStart)
                    log.progress(epoch: epoch + 1, epochs: epochs, step: k, steps: lastStep, loss: g.loss,
                                 accuracy: g.accuracy, imagesPerSecond: rate, secondsPerStep: (now - start) / Double(k - firstStep))
                    let phases = step.timer.seconds
                    metrics.record(StepRecord(
                        step: globalStep, epoch: epoch + 1, learningRate: lr, rho: sam.effectiveRho, loss: g.loss, accuracy: g.accuracy,
                        imagesPerSecond: rate, gradientNorm: stats.gradientNormSum / Double(stats.shards),
                        ascended: stats.ascended, ascentSteps: Int(g.ascentSteps),
                        perturbed: g.ascentExamples == 0 ? nil : .init(loss: g.perturbedLoss, sharpness: g.sharpness,
                                                                       epsilonNorm: stats.epsilonNormSum / Double(stats.shards)),
                        secondsPerStep: phases.mapValues { $0 / Double(k - firstStep) }))
                    interval = StepTotals()
                    intervalStart = now
                }
                if case .steps(let every) = c.run.checkpointEvery, globalStep % every == 0, globalStep < totalSteps {
                    try saveCheckpoint(batch: images, labels: labels)
                }
                // Mid-epoch stop requests; the epoch's last step is followed by its evaluation first.
                if k < lastStep { try stopIfRequested(batch: images, labels: labels) }
            }
            let seconds = epochSoFar.seconds(at: PhaseTimer.now())
            let g = epochSoFar.totals.summed(over: world)
            try checkReplicasAgree(epoch: epoch)
            let (testLoss, testAccuracy) = evaluate()
            let record = EpochRecord(epoch: epoch + 1, step: globalStep, trainLoss: g.loss, trainAccuracy: g.accuracy,
                                     testLoss: testLoss, testAccuracy: testAccuracy,
                                     imagesPerSecond: g.examples / seconds, seconds: seconds)
            records.append(record)
            log.epoch(record, epochs: epochs)
            let epochDone = globalStep % stepsPerEpoch == 0
            let everyEpochs: Int? = switch c.run.checkpointEvery {
            case .epochs(let n): n
            case .steps: nil
            case nil: 1
            }
            if globalStep == totalSteps || (epochDone && everyEpochs.map { (epoch + 1) % $0 == 0 } == true) {
                try saveCheckpoint(batch: images, labels: labels)
            }
            let loggingStart = PhaseTimer.now()
            metrics.epoch(record, coordinatorSeconds: coordinatorSeconds)
            if checkpoints.areWritten {
                let overhead = coordinatorSeconds + PhaseTimer.now() - loggingStart
                log.info(String(format: "  progress, metrics and checkpoints: %.3f s this epoch (%.2f%% of the epoch's %.1f s)",
                                overhead, 100 * overhead / seconds, seconds))
            }
            coordinatorSeconds = 0
            if globalStep < totalSteps { try stopIfRequested(batch: images, labels: labels) }
        }
        let digest = model.store.values.digest()
        if configuration.run.reportDigests {
            // Every rank speaks for itself (tests compare the lines).
            print("rank \(world.rank) parameter digest \(String(digest, radix: 16))")
            fflush(nil)
            world.barrier()
        }
        let peakMB = world.allreduceMaxDoubles([Benchmark.peakResidentMB()])[0]
        log.info("done: \(globalStep) steps; parameter digest \(String(digest, radix: 16)); "
                 + String(format: "peak memory %.0f MB per rank (resident, largest rank)", peakMB))
        return records
    }

    /// Test loss and accuracy over the whole test set, split across ranks (docs/algorithms.md §6.5), with
    /// BatchNorm's running statistics averaged across ranks first.
    public func evaluate() -> (loss: Double, accuracy: Double) {
        world.allreduceMean(model.store.buffers)
        // Under --micro-batch the test set goes through the layers K examples at a time too,
        // so that evaluation does not set the peak memory.
        return Evaluation.run(model: model, dataset: test, world: world,
                              chunk: configuration.batches.microBatch ?? Evaluation.defaultChunk)
    }

    // MARK: Checkpoints and stop requests

    /// This step's checkpoint (collective), its time counted as the coordinator's.
    func saveCheckpoint(batch: Tensor, labels: [Int32]) throws {
        let start = PhaseTimer.now()
        defer { coordinatorSeconds += PhaseTimer.now() - start }
        try checkpoints.save(globalStep: globalStep, batch: batch, labels: labels, epoch: epochSoFar)
    }

    /// Ends the run here when any rank has received a stop signal: the ranks agree with one
    /// allreduce (so all stop after this same step), rank 0 writes this step's checkpoint
    /// unless it just did, and every rank throws `TrainingStopped`.
    func stopIfRequested(batch: Tensor, labels: [Int32]) throws {
        let signal = Int32(world.allreduceMax(Int64(StopRequest.received)))
        guard signal != 0 else { return }
        if checkpoints.areWritten, checkpoints.lastGood?.step != globalStep { try saveCheckpoint(batch: batch, labels: labels) }
        throw TrainingStopped(signal: signal, step: globalStep, checkpoint: checkpoints.areWritten ? checkpoints.lastGood?.path : nil)
    }

    /// Every rank must hold bit-identical parameters (docs/algorithms.md §6).
    func checkReplicasAgree(epoch: Int) throws {
        let digests = world.allgather(model.store.values.digest())
        if let bad = digests.firstIndex(where: { $0 != digests[0] }) {
            throw AgreedFailure.everywhere("after epoch \(epoch + 1), rank \(bad)'s parameters differ from rank 0's (digest \(String(digests[bad], radix: 16)) vs \(String(digests[0], radix: 16))): the replicas diverged", world: world)
        }
    }

    /// `config.json`: every setting (from the declarations), the ranks and hosts, versions.
    func environment(hosts: [String]) -> [String: Any] {
        [
            "settings": configuration.settingsForConfigFile,
            "world_size": world.size,
            "hosts": hosts,
            "parameters": model.store.count,
            "model": configuration.model.configuration.description(of: model),
            "steps_per_epoch": stepsPerEpoch,
            "total_steps": totalSteps,
            "corrupted_labels": train.corruptedLabels,
            "data": dataDescription,
            "versions": Versions.all,
        ].merging(initialWeightsDescription.map { ["init": $0] } ?? [:]) { a, _ in a }
    }

    /// Rank 0: loads `--init`'s weights over the seeded initialization, prints what it
    /// loaded, started fresh and ignored, and returns what config.json records.
    static func loadInitialWeights(_ path: String, into model: Sequential, named name: String, exclude: String?,
                                   log: Reporter) throws -> [String: Any] {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw SAMTrainError("--init \(path): cannot read the file (missing or unreadable)")
        }
        let bytes = [UInt8](data)
        let report = try StateDict(bytes: bytes, source: "--init \(path)")
            .load(into: model, named: name, exclude: exclude, freshHead: true)
        let sha = SHA256Digest.hex(bytes)
        log.info("init: \(path) (sha256 \(sha.prefix(16))…): " + report.lines.joined(separator: "; "))
        return ["file": path, "sha256": sha, "loaded": report.loaded.count,
                "fresh": report.fresh.map(\.name), "ignored": report.ignored.map(\.name)]
    }
}

