import ArgumentParser
import SAMTrain

struct TrainCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train",
        abstract: "Train a model, data-parallel over the MPI ranks; rank 0 reports."
    )

    @Option(help: "Model (SPEC §7; built for the dataset's image shape and class count).")
    var model: Architecture = .cnn

    @Option(help: "Dataset: fashion-mnist or mnist (IDX files, raw or .gz), cifar10 or cifar100 (the binary versions' .bin files).")
    var dataset: DatasetKind = .fashionMNIST

    @Option(help: "Directory of the dataset's files (CIFAR: the unpacked cifar-10-batches-bin or cifar-100-binary folder, or the folder holding it).")
    var data: String = DatasetKind.defaultDirectory

    @Option(help: "Training augmentation: none or crop-flip (zero-pad 4, random crop, horizontal flip ½); default crop-flip for cifar10/cifar100, none for fashion-mnist/mnist.")
    var augment: Augmentation.Kind?

    @Option(help: "Cutout: zero one N×N square (centre uniform, clipped at the borders) of every training image; 0: off.")
    var cutout: Int = 0

    @Option(help: "Epochs.")
    var epochs: Int = 3

    @Option(help: "Global batch size (all ranks together; must be divisible by the rank count).")
    var batchSize: Int = 128

    @Option(help: "Base learning rate.")
    var lr: Float = 0.05

    @Option(help: "SGD momentum.")
    var momentum: Float = 0.9

    @Flag(help: "Nesterov momentum.")
    var nesterov = false

    @Option(help: "Weight decay (coupled L2 for SGD, decoupled for AdamW).")
    var weightDecay: Float = 5e-4

    @Option(help: "Base optimizer.")
    var optimizer: OptimizerName = .sgd

    @Option(help: "Learning-rate schedule: cosine, constant or multistep[:F1,F2,...[:FACTOR]].")
    var schedule: String = "cosine"

    @Option(help: "Linear warm-up steps.")
    var warmupSteps: Int = 0

    @Option(help: "Random seed (initialization, shuffling, label noise).")
    var seed: UInt64 = 0

    @Option(help: "OpenBLAS threads per rank.")
    var threads: Int = 1

    @Option(help: "Train on the first N training examples only.")
    var trainSubset: Int?

    @Option(help: "Evaluate on the first N test examples only (training is unaffected).")
    var testSubset: Int?

    @Option(help: "Stop after N steps in all.")
    var maxSteps: Int?

    @Option(help: "Fraction of training labels replaced by a random other class (seeded).")
    var labelNoise: Float = 0

    @Option(help: "Progress line every N steps.")
    var logEvery: Int = 50

    @Option(help: "Output directory (metrics, checkpoints).")
    var out: String?

    @Option(help: ArgumentHelp("Also write the metrics as TensorBoard event files into DIR (events.out.tfevents.<time>.<host>; the scalars of metrics.jsonl).", valueName: "DIR"))
    var tensorboard: String?

    @Option(help: "Checkpoint every N steps (500) or epochs (1epoch); default with --out: every epoch.")
    var checkpointEvery: String?

    @Option(help: "Checkpoints to keep (the newest).")
    var keep: Int = 3

    @Option(help: "Resume from a checkpoint file, or from the newest valid checkpoint in an --out directory.")
    var resume: String?

    @Option(help: "Seconds a collective may wait for a rank that stopped responding (SIGSTOP, a frozen node) before the job ends with a message naming the step and the ranks.")
    var collectiveTimeout: Double = 60

    @Flag(help: "Every rank prints the digest of its final parameters.")
    var reportDigests = false

    @OptionGroup var samOptions: SAMOptions

    @OptionGroup(title: "Communication") var allreduceOptions: AllreduceOptions

    func configuration() throws -> TrainingConfiguration {
        var c = TrainingConfiguration()
        c.model = model.rawValue
        c.dataset = dataset.rawValue
        c.dataDirectory = data
        c.epochs = epochs
        c.batchSize = batchSize
        c.learningRate = lr
        c.momentum = momentum
        c.nesterov = nesterov
        c.weightDecay = weightDecay
        c.optimizer = optimizer
        c.schedule = schedule
        c.warmupSteps = warmupSteps
        c.seed = seed
        c.threads = threads
        c.trainSubset = trainSubset
        c.maxSteps = maxSteps
        c.testSubset = testSubset
        c.labelNoise = labelNoise
        c.labelSmoothing = samOptions.labelSmoothing
        c.cutout = cutout
        c.augment = augment
        c.logEvery = logEvery
        c.outDirectory = out
        c.tensorboardDirectory = tensorboard
        c.keep = keep
        c.reportDigests = reportDigests
        c.resume = resume
        c.collectiveTimeout = collectiveTimeout
        do {
            if let checkpointEvery { try c.setCheckpointEvery(checkpointEvery) }
        } catch let e as SAMTrainError { throw ValidationError(e.message) }
        c.sam = try samOptions.configuration()
        c.allreduce = try allreduceOptions.settings()
        do { try c.validate() } catch let e as SAMTrainError { throw ValidationError(e.message) }
        return c
    }

    /// `samtrain train ARGUMENTS` as a configuration, or the message the command line would
    /// print: what a sweep checks each cell with before any cell starts.
    static func configuration(arguments: [String]) throws -> TrainingConfiguration {
        do {
            return try parse(SAMTrainCommand.joiningNegativeNumbers(arguments)).configuration()
        } catch {
            throw SAMTrainError(message(for: error))
        }
    }

    func run() throws {
        let c = try configuration()
        MPIJob.run { world in
            let trainer = try Trainer(configuration: c, world: world, log: Reporter(rank: world.rank))
            try trainer.run()
        }
    }
}
