import CBLAS
import Foundation

/// Data-parallel training (SPEC §6): every rank holds a full replica, takes its slice of
/// each global batch, and runs the same `SAMStep`; rank 0 reports.
public final class Trainer {
    public let configuration: TrainingConfiguration
    public let world: Communicator
    public let model: Sequential
    public let step: SAMStep
    public let schedule: LearningRateSchedule
    public let train: Dataset
    public let test: Dataset
    public let log: Reporter
    public let stepsPerEpoch: Int
    public let totalSteps: Int
    public private(set) var globalStep = 0

    /// Builds everything a run needs. Every stage that can fail on one rank alone goes
    /// through `world.agree`, so that all ranks fail together with one message.
    public init(configuration c: TrainingConfiguration, world: Communicator, log: Reporter) throws {
        configuration = c
        self.world = world
        self.log = log
        try world.agree { try c.validate() }
        openblas_set_num_threads(Int32(c.threads))

        let R = world.size
        try world.agree {
            guard c.batchSize % R == 0 else {
                let lower = c.batchSize / R * R, upper = lower + R
                throw SAMTrainError("--batch-size \(c.batchSize) (global) is not divisible by \(R) ranks; use a multiple of \(R), e.g. \(lower > 0 ? "\(lower) or " : "")\(upper)")
            }
        }
        let layout = try world.agree {
            try ShardLayout(scope: c.sam.scope, globalBatch: c.batchSize, worldSize: R)
        }
        let variant = try world.agree { try c.sam.makeVariant() }

        // Data: every rank reads the files itself (shared filesystem or a copy per host).
        let (train, test) = try world.agree {
            try MNISTFamily.load(directory: c.dataDirectory, kind: MNISTFamily.Kind.named(c.dataset),
                                 trainSubset: c.trainSubset, labelNoise: c.labelNoise, seed: c.seed)
        }
        self.train = train
        self.test = test
        try world.agree {
            guard train.count >= c.batchSize else {
                throw SAMTrainError("--batch-size \(c.batchSize) exceeds the \(train.count) training examples")
            }
        }

        // Model: initialized from the seed on rank 0, broadcast so every replica starts equal.
        let architecture = try Architecture.named(c.model)
        model = architecture.build(inputShape: [train.channels, train.height, train.width], classes: train.classes)
        if world.isCoordinator { model.initialize(seed: c.seed) }
        world.broadcast(model.store.values)
        world.broadcast(model.store.buffers)

        stepsPerEpoch = train.count / c.batchSize
        totalSteps = min(stepsPerEpoch * c.epochs, c.maxSteps ?? Int.max)
        schedule = LearningRateSchedule(base: c.learningRate, shape: try LearningRateSchedule.parseShape(c.schedule),
                                        totalSteps: stepsPerEpoch * c.epochs, warmupSteps: c.warmupSteps)
        let group = SAMStep.makeGroup(layout: layout, world: world)
        let descentLoss = SoftmaxCrossEntropy(labelSmoothing: c.effectiveLabelSmoothing)
        step = SAMStep(model: model, variant: variant, layout: layout, world: world, group: group,
                       optimizer: c.optimizerKind.make(parameterCount: model.store.count),
                       descentLoss: descentLoss,
                       weightDecayInLoss: c.sam.weightDecayInAscent ? c.weightDecay : 0,
                       clipGradNorm: c.sam.clipGradNorm)

        let hosts = world.allgather(Communicator.processorName)
        var seen: [String] = []
        for h in hosts where !seen.contains(h) { seen.append(h) }
        log.info("samtrain: \(c.model) (\(model.store.count) parameters) on \(c.dataset): \(train.count) train / \(test.count) test examples")
        log.info("ranks: \(R), hosts: \(seen.joined(separator: ",")); global batch \(c.batchSize) = \(R) × \(c.batchSize / R); \(c.threads) BLAS thread(s) per rank")
        log.info("optimizer: \(c.optimizer) lr \(c.learningRate) \(c.schedule), momentum \(c.momentum)\(c.nesterov ? " nesterov" : ""), weight decay \(c.weightDecay)\(c.sam.weightDecayInAscent ? " (in the loss)" : "")")
        log.info("sam: \(variant.name)\(c.sam.variant == .none ? "" : " ρ \(c.sam.effectiveRho), \(c.sam.globalScope ? "global scope" : "shard scope m \(layout.examplesPerPerturbation)")")")
    }

    /// Trains for the configured epochs (or `--max-steps`), evaluating after each epoch.
    @discardableResult
    public func run() throws -> [EpochRecord] {
        let c = configuration
        let b = c.batchSize / world.size
        let images = Tensor(shape: [b, train.channels, train.height, train.width])
        var labels = [Int32](repeating: 0, count: b)
        var records: [EpochRecord] = []
        let epochs = (totalSteps + stepsPerEpoch - 1) / stepsPerEpoch

        for epoch in 0..<epochs {
            let plan = EpochPlan(datasetCount: train.count, globalBatch: c.batchSize, rank: world.rank,
                                 worldSize: world.size, seed: c.seed, epoch: epoch)
            let start = PhaseTimer.now()
            var sums = [0.0, 0.0, 0.0]   // loss·n, correct, n
            var interval = [0.0, 0.0, 0.0]
            var intervalStart = start
            let stepsThisEpoch = min(stepsPerEpoch, totalSteps - globalStep)
            for k in 0..<stepsThisEpoch {
                step.timer.measure(.data) { train.gather(plan.indices(forStep: k), into: images, labels: &labels) }
                let lr = schedule.rate(at: globalStep)
                let context = StepContext(step: globalStep, learningRate: lr,
                                          maximumLearningRate: schedule.maximum, minimumLearningRate: schedule.minimum)
                let stats = step.run(images: images, labels: labels, context: context)
                guard step.direction.isFinite else {
                    throw AgreedFailure.everywhere("step \(globalStep + 1) (epoch \(epoch + 1)): the loss diverged (non-finite gradient; loss at w \(stats.lossAtWSum / Double(stats.examples))); lower --lr", world: world)
                }
                globalStep += 1
                let local = [stats.lossAtWSum, Double(stats.correct), Double(stats.examples)]
                for i in 0..<3 { sums[i] += local[i]; interval[i] += local[i] }
                if (k + 1) % c.logEvery == 0 && k + 1 < stepsThisEpoch {
                    let g = world.allreduceSum(interval)
                    let now = PhaseTimer.now()
                    log.progress(epoch: epoch + 1, epochs: epochs, step: k + 1, steps: stepsThisEpoch,
                                 loss: g[0] / g[2], accuracy: g[1] / g[2],
                                 imagesPerSecond: g[2] / (now - intervalStart), elapsed: now - start)
                    interval = [0, 0, 0]
                    intervalStart = now
                }
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
        }
        return records
    }

    /// Test loss and accuracy over the whole test set, split across ranks (SPEC §6), with
    /// BatchNorm's running statistics averaged across ranks first.
    public func evaluate() -> (loss: Double, accuracy: Double) {
        world.allreduceMean(model.store.buffers)
        let range = EvaluationSplit.range(count: test.count, rank: world.rank, worldSize: world.size)
        let loss = SoftmaxCrossEntropy(labelSmoothing: 0)
        let chunk = 500
        let images = Tensor(shape: [chunk, test.channels, test.height, test.width])
        let gradient = Tensor(shape: [chunk, test.classes])
        var labels: [Int32] = []
        var sums = [0.0, 0.0, 0.0]
        var i = range.lowerBound
        while i < range.upperBound {
            let n = min(chunk, range.upperBound - i)
            test.gather(Array(i..<(i + n)), into: images, labels: &labels)
            let logits = model.forward(images, mode: .eval)
            let value = loss.evaluate(logits: logits, labels: labels, gradient: gradient)
            sums[0] += value.loss * Double(n)
            sums[1] += Double(value.correct)
            sums[2] += Double(n)
            i += n
        }
        let g = world.allreduceSum(sums)
        return (g[0] / g[2], g[1] / g[2])
    }

    /// SPEC §6: every rank must hold bit-identical parameters.
    func checkReplicasAgree(epoch: Int) throws {
        let digests = world.allgather(model.store.values.digest())
        if let bad = digests.firstIndex(where: { $0 != digests[0] }) {
            throw AgreedFailure.everywhere("after epoch \(epoch + 1), rank \(bad)'s parameters differ from rank 0's (digest \(String(digests[bad], radix: 16)) vs \(String(digests[0], radix: 16))): the replicas diverged", world: world)
        }
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
