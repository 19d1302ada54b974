import Foundation

/// A model rebuilt from a checkpoint, with the dataset it was trained on: what `samtrain
/// eval` and `samtrain sharpness` start from. Rank 0 reads the file and broadcasts it.
public struct CheckpointModel {
    public var model: Sequential
    public var train: Dataset
    public var test: Dataset
    public var step: Int
    /// Where the data was read from (`--data`, else the directory the run trained on).
    public var dataDirectory: String

    public static func load(checkpoint path: String, dataDirectory: String?, world: Communicator) throws -> CheckpointModel {
        let bytes = try world.agree { () -> [UInt8] in
            guard world.isCoordinator else { return [] }
            guard let data = FileManager.default.contents(atPath: path) else {
                throw SAMTrainError("--checkpoint \(path): cannot read the file (missing or unreadable)")
            }
            return [UInt8](data)
        }
        let shared = world.broadcast(bytes: bytes)
        let checkpoint = try world.agree { try Checkpoint(bytes: shared, source: path) }
        let settings = (checkpoint.metadata["settings"].flatMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) } as? [String: String]) ?? [:]
        return try world.agree {
            guard let name = settings["model"] else { throw SAMTrainError("\(path): the checkpoint's metadata names no model") }
            let architecture = try Architecture.named(name)
            let kind = try DatasetKind.named(settings["dataset"] ?? "fashion-mnist")
            // --data, else where the run read its data, else Fashion-MNIST's default.
            let directory = dataDirectory ?? checkpoint.metadata["data"] ?? DatasetKind.defaultDirectory
            let (train, test) = try kind.load(directory: directory)
            try architecture.check(imageShape: test.imageShape, classes: test.classes, source: directory)
            let model = architecture.build(inputShape: [test.channels, test.height, test.width], classes: test.classes)
            try checkpoint.restore(into: model, optimizer: nil, source: path)
            return CheckpointModel(model: model, train: train, test: test, step: try checkpoint.count("step", source: path, required: false) ?? 0,
                                   dataDirectory: directory)
        }
    }
}
