import ArgumentParser

/// Which network a run trains.
public struct ModelOptions: SettingsGroup {
    @Option(help: "Model (docs/algorithms.md §7; built for the dataset's image shape and class count).")
    public var model: Architecture = .cnn

    public init() {}

    public func validate() throws {}
}

extension Architecture: ExpressibleByArgument {}
