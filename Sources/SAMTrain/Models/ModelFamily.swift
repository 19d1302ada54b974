import ArgumentParser

/// Everything samtrain knows about one family of models, declared in the family's own file:
/// its `--model` names, its flags (a settings group: typed, with defaults and help, recorded in
/// `config.json` and compared on resume), the input shape a model is built for by default, the
/// images it can take, and its builder. `ModelRegistry` lists the families; `--model`'s values
/// and help, the bench, `eval`, resume checks and sweeps derive from that list.
///
/// A family's flags are its own and refused with another family's `--model`; the ones that
/// default to a preset of the name are optionals, `nil` until `resolved(name:)` fills them in.
public protocol ModelFamily: SettingsGroup, Sendable {
    /// The `--model` names of the family (`resnet20`, `resnet32`, `resnet56`).
    static var names: [String] { get }
    /// What the family is, a plural without article (`CIFAR ResNets`), for `--model`'s help
    /// and the messages that name the family.
    static var summary: String { get }
    /// The input shape `name` is built for when no data says otherwise (the bench's).
    func defaultInputShape(name: String) -> [Int]
    /// The smallest image height and width `name` takes.
    func minimumImageSide(name: String) -> Int
    /// Checks the settings as `name` uses them (after `resolved(name:)`), beyond each flag's
    /// own range that `validate()` checks.
    func validate(name: String) throws
    /// Why `name` cannot take C×H×W images of a size it otherwise accepts (nil: it can).
    func mismatch(name: String, imageShape: [Int]) -> String?
    /// The model for C×H×W inputs and `classes` outputs (the shape already checked).
    func build(name: String, inputShape: [Int], classes: Int, convolution: ConvolutionSettings) -> Sequential
    /// These settings as `name` uses them (a preset filled in): what a run records.
    func resolved(name: String) -> Self
    /// What `config.json` says of the model's shape besides the flags ([:]: nothing more).
    func description(name: String, inputShape: [Int]) -> [String: Any]
    /// The parameters `name` will have, known before it is built, for a family whose flags set
    /// its size (nil: the name fixes it). A checkpoint's recorded shape is checked against the
    /// tensors it holds with this before anything is allocated (Int.max: beyond any memory).
    func parameterCount(name: String, inputShape: [Int], classes: Int) -> Int?
}

extension ModelFamily {
    /// "CIFAR ResNets (--model resnet20, resnet32, resnet56)".
    public static var title: String { "\(summary) (--model \(names.joined(separator: ", ")))" }
    public func defaultInputShape(name: String) -> [Int] { [3, 32, 32] }
    public func validate(name: String) throws {}
    public func mismatch(name: String, imageShape: [Int]) -> String? { nil }
    public func resolved(name: String) -> Self { self }
    public func description(name: String, inputShape: [Int]) -> [String: Any] { [:] }
    public func parameterCount(name: String, inputShape: [Int], classes: Int) -> Int? { nil }

    /// The flags given: the settings whose values are not the defaults.
    public var givenFlags: [DeclaredSetting] {
        zip(DeclaredSettings.of(self), DeclaredSettings.of(ModelRegistry.defaults.family(ofType: Self.self)))
            .filter { $0.value != $1.value }.map(\.0)
    }

    /// `vit-t4 --vit-depth 6`: the name with the flags given, for messages.
    public func commandLine(_ name: String) -> String {
        ([name] + givenFlags.map { "\($0.flag) \($0.value.text)" }).joined(separator: " ")
    }
}

/// A model as a run builds it: its name and its family's flags (`--model vit-t4 --vit-depth 6`).
public struct ModelConfiguration: Sendable {
    public let architecture: Architecture
    /// The family's settings as given (a preset's are nil).
    public let family: any ModelFamily

    /// `architecture` with its family's `settings` (nil: the family's defaults).
    public init(_ architecture: Architecture, family settings: (any ModelFamily)? = nil) {
        self.architecture = architecture
        family = settings ?? ModelRegistry.defaults.family(of: architecture)
        precondition(type(of: family).names.contains(architecture.rawValue), "\(architecture) is not one of the \(type(of: family).summary)")
    }

    /// The model a run recorded in its settings (a checkpoint's: `"model": "vit-t4"`,
    /// `"vit_depth": "6"`); a family setting the run did not record keeps its default.
    public init(recorded settings: [String: String], source: String) throws {
        guard let name = settings["model"] else { throw SAMTrainError("\(source): the checkpoint's metadata names no model") }
        let architecture = try Architecture.named(name)
        // The recorded values, read back by the flags that set them.
        var arguments: [String] = []
        for setting in ModelConfiguration(architecture).settings {
            guard let value = settings[setting.key], value != SettingValue.unset.text else { continue }
            if case .bool = setting.value { arguments += value == "true" ? [setting.flag] : [] } else { arguments += [setting.flag, value] }
        }
        do {
            self.init(architecture, family: try ModelRegistry.parse(arguments).family(of: architecture))
        } catch {
            throw SAMTrainError("\(source): the checkpoint's model settings do not parse (\(ModelRegistry.message(for: error)))")
        }
    }

    var name: String { architecture.rawValue }

    /// The family's settings as the run uses them (config.json's keys, compared on resume).
    public var settings: [DeclaredSetting] { DeclaredSettings.of(family.resolved(name: name)) }

    /// `vit-t4 --vit-depth 6`: the name with the flags given.
    public var commandLine: String { family.commandLine(name) }

    /// The input shape the bench times (docs/algorithms.md §12) and a model is built for by
    /// default: the Fashion-MNIST models take 1×28×28, the others CIFAR's 3×32×32.
    public var defaultInputShape: [Int] { family.defaultInputShape(name: name) }

    /// The smallest image side the model can take (each 2×2 pooling or stride-2 stage halves
    /// it, and the last one must still leave one pixel; a ViT: one patch).
    public var minimumImageSide: Int { family.minimumImageSide(name: name) }

    /// The flags' checks (ArgumentParser runs them on a command line; a configuration built
    /// in code is checked here), then the ones that need the name (a ViT's heads against the
    /// preset's width).
    public func validate() throws {
        var flags = family
        try flags.validate()
        try family.validate(name: name)
    }

    /// Refuses images the model cannot take, naming `source` (the data directory).
    public func check(imageShape shape: [Int], classes: Int, source: String) throws {
        let text = shape.map(String.init).joined(separator: "×")
        guard shape.count == 3, shape.allSatisfy({ $0 >= 1 }) else { throw SAMTrainError("\(source): images of shape \(text) are not C×H×W") }
        guard shape[1] >= minimumImageSide, shape[2] >= minimumImageSide else {
            throw SAMTrainError("\(source): images of \(text) are too small for --model \(name), which needs height and width ≥ \(minimumImageSide)")
        }
        // mlp's first layer holds inputs × 256 weights: bound it so the model fits in memory.
        guard CheckedSize.product(shape, limit: 1 << 24) != nil else {
            throw SAMTrainError("\(source): images of \(text) are larger than samtrain trains on (at most \(1 << 24) values per image)")
        }
        try validate()
        if let why = family.mismatch(name: name, imageShape: shape) { throw SAMTrainError("\(source): \(why)") }
        guard classes >= 2 else { throw SAMTrainError("\(source): \(classes) class(es); a classifier needs at least 2") }
    }

    /// Builds the model for inputs of shape `inputShape` (C, H, W; nil: the default) and
    /// `classes` outputs; every convolution runs as `convolution` says.
    public func build(inputShape: [Int]? = nil, classes: Int = 10, convolution: ConvolutionSettings = .init()) -> Sequential {
        family.build(name: name, inputShape: inputShape ?? defaultInputShape, classes: classes, convolution: convolution)
    }

    /// The parameters the model will have for these inputs, when its flags set its size (nil:
    /// its name fixes it).
    public func parameterCount(inputShape: [Int], classes: Int) -> Int? {
        family.parameterCount(name: name, inputShape: inputShape, classes: classes)
    }

    /// `config.json`'s `model`: the name, the shape it was built for, and what the family
    /// adds (a ViT's width, depth, heads, patch and MLP ratio as used).
    public func description(of model: Sequential) -> [String: Any] {
        ["name": name, "input_shape": model.inputShape, "classes": model.classes, "parameters": model.store.count]
            .merging(family.description(name: name, inputShape: model.inputShape)) { ours, _ in ours }
    }
}
