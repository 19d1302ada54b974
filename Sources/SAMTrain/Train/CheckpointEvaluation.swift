import Foundation

/// A model rebuilt from a checkpoint, with its data: what `samtrain eval` and `samtrain
/// sharpness` start from. The file is a samtrain checkpoint (whose metadata names the model
/// and the data it trained on) or, with a model named, a plain PyTorch `state_dict`
/// (docs/algorithms.md §7.9). Rank 0 reads the file and broadcasts it.
public struct CheckpointModel {
    public var model: Sequential
    public var train: Dataset
    public var test: Dataset
    public var step: Int
    /// Where the data was read from (`--data`, else where the run trained, else the default).
    public var dataDirectory: String
    /// What a state_dict load did (nil for a samtrain checkpoint read by its metadata).
    public var report: StateDict.Report?
    /// The training split as the run recorded it: its first `subset` examples, `labelNoise`
    /// of their labels corrupted from `seed` (nil for a state_dict: no run is known).
    public var split: (subset: Int?, labelNoise: Float, seed: UInt64)?

    /// Which labels the training examples carry: the ones the run trained on (its
    /// --label-noise, rebuilt from its seed), or the dataset's own.
    public enum Labels: String, CaseIterable, Sendable { case trained, clean }

    /// The examples the run trained on (its --train-subset) with `labels`; without label
    /// noise both are the same.
    public func trainingExamples(_ labels: Labels) -> Dataset {
        guard let split else { return train }
        return train.training(subset: split.subset, labelNoise: labels == .trained ? split.labelNoise : 0, seed: split.seed)
    }

    /// Where the weights and the data come from.
    public struct Source: Sendable {
        public var checkpoint: String
        /// The model of a plain state_dict (nil: the checkpoint's settings give it).
        public var model: ModelConfiguration?
        public var dataset: DatasetKind?
        public var data: String?
        public var testSubset: Int?

        public init(checkpoint: String, model: ModelConfiguration? = nil, dataset: DatasetKind? = nil, data: String? = nil, testSubset: Int? = nil) {
            self.checkpoint = checkpoint
            self.model = model
            self.dataset = dataset
            self.data = data
            self.testSubset = testSubset
        }
    }

    public static func load(checkpoint path: String, dataDirectory: String?, world: Communicator) throws -> CheckpointModel {
        try load(Source(checkpoint: path, data: dataDirectory), world: world)
    }

    public static func load(_ source: Source, world: Communicator) throws -> CheckpointModel {
        let path = source.checkpoint
        let bytes = try world.agree { () -> [UInt8] in
            guard world.isCoordinator else { return [] }
            guard let data = FileManager.default.contents(atPath: path) else {
                throw SAMTrainError("--checkpoint \(path): cannot read the file (missing or unreadable)")
            }
            return [UInt8](data)
        }
        let shared = world.broadcast(bytes: bytes)
        var loaded = try world.agree { () -> CheckpointModel in
            if let architecture = source.model {
                // A plain state_dict: the data says the shape and class count, the file must fit.
                let state = try StateDict(bytes: shared, source: path)
                let kind = source.dataset ?? .fashionMNIST
                let directory = source.data ?? DatasetKind.defaultDirectory
                let (train, test) = try kind.load(data: directory).splits
                try architecture.check(imageShape: test.imageShape, classes: test.classes, source: directory)
                let model = architecture.build(inputShape: test.imageShape, classes: test.classes)
                let report = try state.load(into: model, named: architecture.commandLine, freshHead: false)
                return CheckpointModel(model: model, train: train, test: test, step: 0, dataDirectory: directory, report: report)
            }
            let checkpoint: Checkpoint
            do { checkpoint = try Checkpoint(bytes: shared, source: path) } catch {
                // A valid safetensors file that is no samtrain checkpoint: most likely a state_dict.
                if let plain = try? SafeTensors.decodeArrays(shared, source: path), plain.metadata["format"] != "samtrain-checkpoint" {
                    throw SAMTrainError("--checkpoint \(path): not a samtrain checkpoint (its metadata names no samtrain format); for a plain PyTorch state_dict, name its model with --model")
                }
                throw error
            }
            let settings = checkpoint.settings
            // The model as the run built it: its name and its family's recorded flags (a ViT's shape).
            let architecture = try ModelConfiguration(recorded: settings, source: path)
            let kind = try source.dataset ?? DatasetKind.named(settings["dataset"] ?? "fashion-mnist")
            // --data, else where the run read its data, else Fashion-MNIST's default.
            let directory = source.data ?? checkpoint.metadata["data"] ?? DatasetKind.defaultDirectory
            let (train, test) = try kind.load(data: directory).splits
            try architecture.check(imageShape: test.imageShape, classes: test.classes, source: directory)
            // A recorded shape is checked against the tensors before the model is allocated, so a
            // damaged file cannot ask for more memory than it holds values.
            let held = checkpoint.file.tensors.reduce(0) { $0 + $1.values.count }
            if let wanted = architecture.parameterCount(inputShape: test.imageShape, classes: test.classes), wanted > held {
                throw SAMTrainError("\(path): its run recorded --model \(architecture.commandLine), a model of \(wanted == Int.max ? "more than \(Int.max)" : "\(wanted)") parameters, but the checkpoint holds \(held) values")
            }
            let model = architecture.build(inputShape: test.imageShape, classes: test.classes)
            try checkpoint.restore(into: model, optimizer: nil, source: path)
            var loaded = CheckpointModel(model: model, train: train, test: test, step: try checkpoint.count("step", source: path, required: false) ?? 0,
                                         dataDirectory: directory)
            loaded.split = try Self.split(settings, source: path)
            return loaded
        }
        if let n = source.testSubset { loaded.test = loaded.test.prefix(n) }
        return loaded
    }

    /// The recorded training split; a checkpoint from before label noise or subsets has none.
    /// A value that is there must be valid: it decides which labels are probed.
    public static func split(_ settings: [String: String], source path: String) throws -> (subset: Int?, labelNoise: Float, seed: UInt64) {
        func bad(_ key: String) -> SAMTrainError {
            SAMTrainError("\(path): its recorded \(key) \"\(settings[key] ?? "")\" is not a valid --\(key.replacingOccurrences(of: "_", with: "-")); the file is damaged")
        }
        var subset: Int?
        if let text = settings["train_subset"], !["none", "all"].contains(text) {
            guard let n = Int(text), n > 0 else { throw bad("train_subset") }
            subset = n
        }
        var noise: Float = 0
        if let text = settings["label_noise"] {
            guard let f = Float(text), f >= 0, f < 1 else { throw bad("label_noise") }
            noise = f
        }
        var seed: UInt64 = 0
        if let text = settings["seed"] {
            guard let s = UInt64(text) else { throw bad("seed") }
            seed = s
        }
        return (subset, noise, seed)
    }
}
