import ArgumentParser
import Foundation

/// Every setting of a training run: `samtrain train`'s flags, in typed groups. The groups'
/// declarations are the one source of the flags, their defaults and help, their checks, the
/// settings a resumed run must match and the keys of `config.json` (`DeclaredSettings`).
public struct TrainingConfiguration: ParsableArguments {
    @OptionGroup(title: "Data") public var data: DataOptions
    @OptionGroup(title: "Model") public var model: ModelOptions
    @OptionGroup(title: "Epochs and batches") public var batches: BatchOptions
    @OptionGroup(title: "Optimization") public var optimization: OptimizationOptions
    @OptionGroup(title: "Sharpness-aware minimization") public var sam: SAMOptions
    @OptionGroup public var variants: VariantRegistry
    @OptionGroup(title: "Run and checkpoints") public var run: RunOptions
    @OptionGroup(title: "Communication") public var communication: CommunicationOptions

    public init() {}

    /// The defaults of every flag (`samtrain train` with no arguments).
    public static var defaults: TrainingConfiguration {
        get throws { try parse([]) }
    }

    /// Parses `samtrain train ARGUMENTS`: the flags, their checks, and a variant's flag given
    /// with another `--sam`; an error is the one line the command line would print.
    public static func parse(commandLine arguments: [String]) throws -> TrainingConfiguration {
        do {
            let c = try parse(arguments)
            try c.samConfiguration.checkVariantFlags(given: arguments)
            return c
        } catch let e as SAMTrainError {
            throw e
        } catch {
            throw SAMTrainError(message(for: error))
        }
    }

    /// Every group's checks (ArgumentParser runs them while parsing; a configuration built in
    /// code is checked here).
    public func validate() throws {
        try data.validate()
        try model.validate()
        try batches.validate()
        try optimization.validate()
        try samConfiguration.validate()
        try run.validate()
        try communication.validate()
    }

    /// The SAM settings of the run (the chosen variant's, with the shared flags).
    public var samConfiguration: SAMConfiguration { sam.configuration(variants: variants) }

    /// Cross-entropy label smoothing: the variant's default unless given (docs/algorithms.md §9).
    public var effectiveLabelSmoothing: Float { samConfiguration.effectiveLabelSmoothing }

    /// The training-set augmentation of the run (nil when there is none).
    public var augmentation: Augmentation? { data.augmentation(seed: batches.seed) }

    /// The settings with the values a default stands for filled in (the dataset's
    /// augmentation, the variant's ρ, δ, label smoothing), as a run uses them.
    public var resolved: TrainingConfiguration {
        var c = self
        c.data.augment = data.effectiveAugment
        c.sam = sam.resolved(variants: variants)
        return c
    }

    /// Every setting, declared and resolved: the groups' flags, then the chosen model family's
    /// (a ViT's shape, its preset filled in) and the chosen variant's.
    public var declaredSettings: [DeclaredSetting] {
        let r = resolved
        return DeclaredSettings.of(r) + r.model.configuration.settings + r.samConfiguration.variantSettings
    }

    /// Settings that change what a run computes: a resumed run must agree on all of them.
    public var resultDefiningSettings: [String: String] {
        Dictionary(declaredSettings.filter(\.definesResult).map { ($0.key, $0.value.text) }) { first, _ in first }
    }

    /// Every setting for `config.json`, typed.
    public var settingsForConfigFile: [String: Any] {
        Dictionary(declaredSettings.map { ($0.key, $0.value.json) }) { first, _ in first }
    }
}
