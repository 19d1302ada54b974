/// The datasets samtrain trains on (`--dataset`), and the one entry point that loads them:
/// what the Trainer, `samtrain eval`/`sharpness` and a sweep's file check use.
public enum DatasetKind: String, CaseIterable, Sendable {
    case fashionMNIST = "fashion-mnist"
    case mnist
    case cifar10
    case cifar100

    /// `--data`'s default: where Debian's dataset-fashion-mnist installs Fashion-MNIST.
    public static let defaultDirectory = "/usr/share/datasets/fashion-mnist"

    public static func named(_ name: String) throws -> DatasetKind {
        guard let k = DatasetKind(rawValue: name) else {
            throw SAMTrainError("--dataset \(name): unknown dataset; choose one of \(allCases.map(\.rawValue).joined(separator: ", "))")
        }
        return k
    }

    public var isCIFAR: Bool { self == .cifar10 || self == .cifar100 }

    public var classes: Int { self == .cifar100 ? 100 : 10 }

    /// The papers' default training augmentation: crop-flip for CIFAR, none for the IDX sets.
    public var defaultAugment: Augmentation.Kind { isCIFAR ? .cropFlip : .none }

    var mnistKind: MNISTFamily.Kind { self == .mnist ? .mnist : .fashionMNIST }

    /// Loads the training and test splits from `directory`, validating every file first.
    /// `trainSubset` keeps the first N training examples; `labelNoise` corrupts a seeded
    /// fraction of the training labels. `cifarLayout` is for tests (the CLI never sets it).
    public func load(directory: String, trainSubset: Int? = nil, labelNoise: Float = 0, seed: UInt64 = 0,
                     cifarLayout: CIFARLayout = .standard) throws -> (train: Dataset, test: Dataset) {
        let (train, test) = isCIFAR ? try CIFAR.load(directory: directory, kind: self, layout: cifarLayout)
                                    : try MNISTFamily.load(directory: directory, kind: mnistKind)
        // One model sees both splits: a test image of another size would not fit it.
        guard train.imageShape == test.imageShape else {
            throw SAMTrainError("\(directory): the training images are \(train.shapeText) but the test images are \(test.shapeText); both splits must have one image size")
        }
        return (train.training(subset: trainSubset, labelNoise: labelNoise, seed: seed), test)
    }

    /// Checks that the dataset's files are in `directory` (presence, and exact sizes for
    /// CIFAR) without loading them: a sweep's check before any cell starts.
    public func checkFiles(directory: String, cifarLayout: CIFARLayout = .standard) throws {
        if isCIFAR {
            try CIFAR.checkFiles(directory: directory, kind: self, layout: cifarLayout)
        } else {
            for file in ["train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"] {
                _ = try MNISTFamily.find(directory, file)
            }
        }
    }
}
