import Foundation

/// MNIST and Fashion-MNIST from their four IDX files (raw or `.gz`), kept as bytes and
/// normalized per batch with the dataset's mean and standard deviation (docs/algorithms.md §7.5).
public enum MNISTFamily {
    public enum Kind: String, CaseIterable, Sendable {
        case fashionMNIST = "fashion-mnist"
        case mnist

        public var mean: Float { self == .mnist ? 0.1307 : 0.2860 }
        public var std: Float { self == .mnist ? 0.3081 : 0.3530 }
        public var normalization: Normalization { Normalization(mean: [mean], std: [std]) }

        public static func named(_ name: String) throws -> Kind {
            guard let k = Kind(rawValue: name) else {
                throw SAMTrainError("--dataset \(name): unknown dataset; choose one of \(allCases.map(\.rawValue).joined(separator: ", "))")
            }
            return k
        }
    }

    /// Loads the training and test splits from `directory`. `trainSubset` keeps the first N
    /// training examples; `labelNoise` corrupts a seeded fraction of the training labels.
    public static func load(directory: String, kind: Kind, trainSubset: Int? = nil,
                            labelNoise: Float = 0, seed: UInt64 = 0) throws -> (train: Dataset, test: Dataset) {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: directory, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw SAMTrainError("--data \(directory): no such directory\(kind == .fashionMNIST ? " (Debian's package dataset-fashion-mnist installs Fashion-MNIST in /usr/share/datasets/fashion-mnist; launch/setup installs it)" : "")")
        }
        let train = try split(directory: directory, prefix: "train", kind: kind)
        let test = try split(directory: directory, prefix: "t10k", kind: kind)
        return (train.training(subset: trainSubset, labelNoise: labelNoise, seed: seed), test)
    }

    static func split(directory: String, prefix: String, kind: Kind) throws -> Dataset {
        let imagesPath = try find(directory, "\(prefix)-images-idx3-ubyte")
        let labelsPath = try find(directory, "\(prefix)-labels-idx1-ubyte")
        let images = try IDXReader.read(imagesPath, expectedRank: 3)
        let labels = try IDXReader.read(labelsPath, expectedRank: 1)
        guard images.dimensions[0] == labels.dimensions[0] else {
            throw SAMTrainError("\(labelsPath): \(labels.dimensions[0]) labels for \(images.dimensions[0]) images in \(imagesPath)")
        }
        if let bad = labels.bytes.firstIndex(where: { $0 >= 10 }) {
            throw SAMTrainError("\(labelsPath): label \(labels.bytes[bad]) of example \(bad) is not a class 0–9")
        }
        // Kept as bytes, normalized per batch by `gather`.
        return Dataset(pixels: images.bytes, normalization: kind.normalization, labels: labels.bytes.map { Int32($0) },
                       channels: 1, height: images.dimensions[1], width: images.dimensions[2], classes: 10)
    }

    /// `name` or `name.gz` in `directory`.
    static func find(_ directory: String, _ name: String) throws -> String {
        for candidate in [name, name + ".gz"] {
            let path = directory + "/" + candidate
            if FileManager.default.fileExists(atPath: path) { return path }
        }
        throw SAMTrainError("\(directory)/\(name)[.gz]: missing file")
    }
}
