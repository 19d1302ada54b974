import ArgumentParser
import SAMTrain

/// The checkpoint a command reads and where its data is: `eval` and `sharpness`.
struct CheckpointSource: ParsableArguments {
    @Option(help: "A checkpoint written by samtrain train.")
    var checkpoint: String

    @Option(help: "Directory of the dataset's files (default: the one the checkpoint was trained on, or Debian's Fashion-MNIST).")
    var data: String?

    /// The model and data of the checkpoint, on every rank.
    func load(world: Communicator) throws -> CheckpointModel {
        try CheckpointModel.load(checkpoint: checkpoint, dataDirectory: data, world: world)
    }
}
