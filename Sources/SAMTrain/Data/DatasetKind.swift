import Foundation

/// The datasets samtrain trains on (`--dataset`), and the one entry point that loads them:
/// what the Trainer, `samtrain eval`/`sharpness` and a sweep's file check use.
public enum DatasetKind: String, CaseIterable, Sendable {
    case fashionMNIST = "fashion-mnist"
    case mnist
    case cifar10
    case cifar100
    /// A user's own file: `--data FILE` is one .npz or safetensors file (`ArraysFile`).
    case arrays

    /// `--data`'s default: where Debian's dataset-fashion-mnist installs Fashion-MNIST.
    public static let defaultDirectory = "/usr/share/datasets/fashion-mnist"

    public static func named(_ name: String) throws -> DatasetKind {
        guard let k = DatasetKind(rawValue: name) else {
            throw SAMTrainError("--dataset \(name): unknown dataset; choose one of \(allCases.map(\.rawValue).joined(separator: ", "))")
        }
        return k
    }

    public var isCIFAR: Bool { self == .cifar10 || self == .cifar100 }

    /// The papers' default training augmentation: crop-flip for CIFAR, none for the IDX sets
    /// and a user's own arrays (which the user knows best).
    public var defaultAugment: Augmentation.Kind { isCIFAR ? .cropFlip : .none }

    var mnistKind: MNISTFamily.Kind { self == .mnist ? .mnist : .fashionMNIST }

    /// Loads the training and test splits from `data` (the directory of the dataset's files;
    /// for `arrays`, the one file), validating every file first. `trainSubset` keeps the first
    /// N training examples; `labelNoise` corrupts a seeded fraction of the training labels.
    /// `cifarLayout` is for tests (the CLI never sets it).
    public func load(data: String, trainSubset: Int? = nil, labelNoise: Float = 0, seed: UInt64 = 0,
                     cifarLayout: CIFARLayout = .standard) throws -> LoadedDataset {
        var loaded: LoadedDataset
        switch self {
        case .cifar10, .cifar100:
            let (train, test) = try CIFAR.load(directory: data, kind: self, layout: cifarLayout)
            loaded = LoadedDataset(train: train, test: test)
        case .fashionMNIST, .mnist:
            let (train, test) = try MNISTFamily.load(directory: data, kind: mnistKind)
            loaded = LoadedDataset(train: train, test: test)
        case .arrays:
            try Self.refuseDefaultDirectory(data)
            let own = try ArraysFile.read(path: data).datasets()
            loaded = LoadedDataset(train: own.train, test: own.test, classNames: own.classNames, normalizationSource: own.normalization)
        }
        // One model sees both splits: a test image of another size would not fit it.
        guard loaded.train.imageShape == loaded.test.imageShape else {
            throw SAMTrainError("\(data): the training images are \(loaded.train.shapeText) but the test images are \(loaded.test.shapeText); both splits must have one image size")
        }
        loaded.train = loaded.train.training(subset: trainSubset, labelNoise: labelNoise, seed: seed)
        return loaded
    }

    static func refuseDefaultDirectory(_ data: String) throws {
        if (data as NSString).standardizingPath == defaultDirectory {
            throw SAMTrainError("--dataset arrays needs --data FILE: --data was left at its default, \(defaultDirectory), which holds Fashion-MNIST; give the .npz or .safetensors file (launch/make-dataset writes one)")
        }
    }

    /// Checks that the dataset's files are in `directory` (presence, and exact sizes for
    /// CIFAR) without loading them: a sweep's check before any cell starts.
    public func checkFiles(directory: String, cifarLayout: CIFARLayout = .standard) throws {
        if isCIFAR {
            try CIFAR.checkFiles(directory: directory, kind: self, layout: cifarLayout)
        } else if self == .arrays {
            try Self.refuseDefaultDirectory(directory)
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: directory, isDirectory: &isDirectory), !isDirectory.boolValue else {
                throw SAMTrainError("--data \(directory): no such file (--dataset arrays reads one .npz or .safetensors file)")
            }
        } else {
            for file in ["train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"] {
                _ = try MNISTFamily.find(directory, file)
            }
        }
    }
}

/// A dataset's two splits as a run uses them, and what a user's own file adds.
public struct LoadedDataset: Sendable {
    public var train: Dataset
    public var test: Dataset
    /// The class names an arrays file gives (nil: none given, or a built-in dataset).
    public var classNames: [String]? = nil
    /// Where an arrays file's normalization came from (nil for the built-in datasets).
    public var normalizationSource: ArraysFile.NormalizationSource? = nil

    public var splits: (train: Dataset, test: Dataset) { (train, test) }

    /// What config.json records about the data: the normalization the run applies, and
    /// the class names.
    public var description: [String: Any] {
        var d: [String: Any] = ["classes": train.classes, "image_shape": train.imageShape,
                                "train_examples": train.count, "test_examples": test.count]
        if let n = train.normalization {
            d["normalization"] = ["mean": n.mean.map(Double.init), "std": n.std.map(Double.init),
                                  "source": normalizationSource?.rawValue ?? "dataset"]
        }
        if let classNames { d["class_names"] = classNames }
        return d
    }
}
