import Foundation

/// `samtrain eval`: rebuilds the model a checkpoint names and evaluates it on the test set.
public enum CheckpointEvaluation {
    public struct Result: Sendable {
        public var step: Int
        public var loss: Double
        public var accuracy: Double
        public var examples: Int
    }

    public static func run(checkpoint path: String, dataDirectory: String?, world: Communicator) throws -> Result {
        let bytes = try world.agree { () -> [UInt8] in
            guard world.isCoordinator else { return [] }
            guard let data = FileManager.default.contents(atPath: path) else {
                throw SAMTrainError("--checkpoint \(path): cannot read the file (missing or unreadable)")
            }
            return [UInt8](data)
        }
        let shared = world.broadcast(bytes: bytes)
        let checkpoint = try world.agree { Checkpoint(file: try SafeTensors.decode(shared, source: path)) }
        let settings = (checkpoint.metadata["settings"].flatMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) } as? [String: String]) ?? [:]
        let (test, model) = try world.agree { () -> (Dataset, Sequential) in
            guard let name = settings["model"] else { throw SAMTrainError("\(path): the checkpoint's metadata names no model") }
            let architecture = try Architecture.named(name)
            let kind = try MNISTFamily.Kind.named(settings["dataset"] ?? "fashion-mnist")
            let (_, test) = try MNISTFamily.load(directory: dataDirectory ?? "/usr/share/datasets/fashion-mnist", kind: kind,
                                                 trainSubset: nil, labelNoise: 0, seed: 0)
            let model = architecture.build(inputShape: [test.channels, test.height, test.width], classes: test.classes)
            try checkpoint.restore(into: model, optimizer: nil, source: path)
            return (test, model)
        }
        let (loss, accuracy) = Evaluation.run(model: model, dataset: test, world: world)
        return Result(step: Int(checkpoint.metadata["step"] ?? "") ?? 0, loss: loss, accuracy: accuracy, examples: test.count)
    }
}
