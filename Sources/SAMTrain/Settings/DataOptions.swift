import ArgumentParser

/// What a run trains on: `train`'s data flags.
public struct DataOptions: SettingsGroup {
    @Option(help: "Dataset: fashion-mnist or mnist (IDX files, raw or .gz), cifar10 or cifar100 (the binary versions' .bin files).")
    public var dataset: DatasetKind = .fashionMNIST

    @Option(help: "Directory of the dataset's files (CIFAR: the unpacked cifar-10-batches-bin or cifar-100-binary folder, or the folder holding it).")
    public var data: String = DatasetKind.defaultDirectory

    @Option(help: "Training augmentation: none or crop-flip (zero-pad 4, random crop, horizontal flip ½); default crop-flip for cifar10/cifar100, none for fashion-mnist/mnist.")
    public var augment: Augmentation.Kind?

    @Option(help: "Cutout: zero one N×N square (centre uniform, clipped at the borders) of every training image; 0: off.")
    public var cutout: Int = 0

    @Option(help: "Train on the first N training examples only.")
    public var trainSubset: Int?

    @Option(help: "Evaluate on the first N test examples only (training is unaffected).")
    public var testSubset: Int?

    @Option(help: "Fraction of training labels replaced by a random other class (seeded).")
    public var labelNoise: Float = 0

    public init() {}

    /// Where the files are and how much of the test set is evaluated do not change training.
    public static var resultDefining: ResultDefining { .allBut(["data", "testSubset"]) }

    public func validate() throws {
        guard cutout >= 0 else { throw SAMTrainError("--cutout \(cutout): must be ≥ 0 (0: off)") }
        if let trainSubset, trainSubset <= 0 { throw SAMTrainError("--train-subset \(trainSubset): must be positive") }
        if let testSubset, testSubset <= 0 { throw SAMTrainError("--test-subset \(testSubset): must be positive") }
        guard labelNoise >= 0, labelNoise < 1 else { throw SAMTrainError("--label-noise \(labelNoise): must be in [0, 1)") }
    }

    /// crop-flip for CIFAR, none for the IDX sets (docs/algorithms.md §7), unless `--augment` says.
    public var effectiveAugment: Augmentation.Kind { augment ?? dataset.defaultAugment }

    /// The training-set augmentation of a run with `seed` (nil when there is none).
    public func augmentation(seed: UInt64) -> Augmentation? {
        let a = Augmentation(kind: effectiveAugment, cutout: cutout, seed: seed)
        return a.isIdentity ? nil : a
    }
}

extension DatasetKind: ExpressibleByArgument {}
extension Augmentation.Kind: ExpressibleByArgument {}
