import ArgumentParser

/// How long a run is and how its examples are drawn: epochs, the global batch, the seed.
public struct BatchOptions: SettingsGroup {
    @Option(help: "Epochs.")
    public var epochs: Int = 3

    @Option(help: "Global batch size (all ranks together; must be divisible by the rank count).")
    public var batchSize: Int = 128

    @Option(help: "Random seed (initialization, shuffling, label noise, augmentation).")
    public var seed: UInt64 = 0

    @Option(help: ArgumentHelp("Run every pass over a shard in chunks of K examples, their gradients summed before anything uses them: peak memory follows K instead of the per-rank batch. K must divide a shard's examples on one rank. With BatchNorm, each chunk's batch statistics are used (docs/algorithms.md §6.8).", valueName: "K"))
    public var microBatch: Int?

    public init() {}

    public func validate() throws {
        guard epochs > 0 else { throw SAMTrainError("--epochs \(epochs): must be a positive number of epochs") }
        guard batchSize > 0 else { throw SAMTrainError("--batch-size \(batchSize): must be positive") }
        if let microBatch, microBatch < 1 { throw SAMTrainError("--micro-batch \(microBatch): must be at least 1") }
    }
}
