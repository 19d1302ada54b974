import ArgumentParser

/// How long a run is and how its examples are drawn: epochs, the global batch, the seed.
public struct BatchOptions: SettingsGroup {
    @Option(help: "Epochs.")
    public var epochs: Int = 3

    @Option(help: "Global batch size (all ranks together; must be divisible by the rank count).")
    public var batchSize: Int = 128

    @Option(help: "Random seed (initialization, shuffling, label noise, augmentation).")
    public var seed: UInt64 = 0

    public init() {}

    public func validate() throws {
        guard epochs > 0 else { throw SAMTrainError("--epochs \(epochs): must be a positive number of epochs") }
        guard batchSize > 0 else { throw SAMTrainError("--batch-size \(batchSize): must be positive") }
    }
}
