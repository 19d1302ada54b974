import ArgumentParser

/// Which network a run trains, its family's flags, and the weights it starts from.
public struct ModelOptions: SettingsGroup {
    @Option(help: "Model (\(ModelRegistry.familyList)); built for the dataset's image shape and class count (docs/algorithms.md §7).")
    public var model: Architecture = .cnn

    // Named `init` so that the flag is `--init`; read it as `initialWeights`.
    @Option(help: ArgumentHelp("Start from these weights: a safetensors file of the model's PyTorch state_dict (safetensors.torch.save_file(module.state_dict(), FILE)) or a samtrain checkpoint. Strict: every tensor of the model must be there with its shape; a classifier head of another class count starts fresh (docs/algorithms.md §7.9).", valueName: "file"))
    public var `init`: String?

    @Option(help: ArgumentHelp("With --init: tensors whose names match this regular expression (anywhere in the name) start fresh, and the file's own such tensors are ignored (e.g. '^fc\\.' or 'head').", valueName: "regex"))
    public var initExclude: String?

    /// Every family's flags (`--vit-depth`); the chosen model's family's are its settings.
    @OptionGroup public var families: ModelRegistry

    public init() {}

    /// The model with its family's flags.
    public var configuration: ModelConfiguration { families.configuration(of: model) }

    /// The `--init` file.
    public var initialWeights: String? { `init` }

    /// Where the weights file lies does not change the run (config.json records its SHA-256);
    /// which tensors start fresh does.
    public static var resultDefining: ResultDefining { .allBut(["init"]) }

    public func validate() throws {
        try families.checkFlags(for: model)
        try configuration.validate()
        if let initExclude {
            guard initialWeights != nil else { throw SAMTrainError("--init-exclude \(initExclude): only means something with --init FILE") }
            _ = try StateDict.pattern(initExclude)
        }
    }
}
