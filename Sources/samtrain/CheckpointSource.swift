import ArgumentParser
import SAMTrain

/// The weights a command reads and where its data is: `eval` and `sharpness`.
struct CheckpointSource: ParsableArguments {
    @Option(help: "A checkpoint written by samtrain train, or (with --model) a safetensors PyTorch state_dict.")
    var checkpoint: String

    @Option(help: "The model of a plain state_dict (default: the one a samtrain checkpoint names, with the shape its run recorded).")
    var model: Architecture?

    /// A plain state_dict's family flags (`--vit-depth 6`).
    @OptionGroup var families: ModelRegistry

    @Option(help: "Dataset (default: the checkpoint's; fashion-mnist for a plain state_dict).")
    var dataset: DatasetKind?

    @Option(help: "The dataset's directory, or the file of --dataset arrays (default: the one the checkpoint was trained on, or Debian's Fashion-MNIST).")
    var data: String?

    @Option(help: "Evaluate on the first N test examples only.")
    var testSubset: Int?

    func validate() throws {
        if let model {
            try families.checkFlags(for: model)
            try families.configuration(of: model).validate()
        } else if let (flag, family) = families.flagOutside(nil) {
            throw SAMTrainError("\(flag) shapes a plain state_dict's --model (\(family.names.joined(separator: ", "))); a samtrain checkpoint's run recorded its shape")
        }
        if let testSubset, testSubset <= 0 { throw SAMTrainError("--test-subset \(testSubset): must be positive") }
    }

    /// The model and data of the checkpoint, on every rank.
    func load(world: Communicator) throws -> CheckpointModel {
        try CheckpointModel.load(.init(checkpoint: checkpoint, model: model.map(families.configuration(of:)), dataset: dataset, data: data, testSubset: testSubset), world: world)
    }
}
