import ArgumentParser

/// Every model family samtrain builds, each listed once. `--model`'s values and help, the
/// families' flags, their checks, the bench, `eval`, resume checks and sweep validation all
/// derive from this list. Adding a family = its file (a `ModelFamily`) + one line here.
public struct ModelRegistry: ParsableArguments {
    @OptionGroup var smallNetworks: SmallNetworks
    @OptionGroup var cifarResNets: CIFARResNet
    @OptionGroup var wideResNets: WideResNet
    @OptionGroup var resNet18: ResNet18
    @OptionGroup var visionTransformers: VisionTransformer

    public init() {}

    /// The families' settings as parsed, in the order above.
    public var all: [any ModelFamily] {
        Mirror(reflecting: self).children.compactMap { ($0.value as? RegisteredFamily)?.family }
    }

    /// The parsed settings of the family `architecture` belongs to.
    public func family(of architecture: Architecture) -> any ModelFamily { ModelFamilies(self).family(of: architecture) }

    /// `architecture` with its family's flags as parsed.
    public func configuration(of architecture: Architecture) -> ModelConfiguration {
        ModelConfiguration(architecture, family: family(of: architecture))
    }

    /// Every family with its defaults.
    public static let defaults: ModelFamilies = {
        do { return ModelFamilies(try ModelRegistry.parse([])) } catch { fatalError("the model families' defaults do not parse: \(error)") }
    }()

    /// The `--model` names, in registry order.
    public static var names: [String] { defaults.all.flatMap { type(of: $0).names } }

    /// "mlp, cnn: Fashion-MNIST networks; resnet20, …" for `--model`'s help.
    static var familyList: String {
        defaults.all.map { "\(type(of: $0).names.joined(separator: ", ")): \(type(of: $0).summary)" }.joined(separator: "; ")
    }

    /// The first flag given of a family other than `model`'s (any family's, `model` nil), and
    /// that family. A flag counts as given when its value is not the default (the families'
    /// flags are optionals, nil unless given).
    public func flagOutside(_ model: Architecture?) -> (flag: String, family: any ModelFamily.Type)? {
        for family in all where model.map({ !type(of: family).names.contains($0.rawValue) }) ?? true {
            if let flag = family.givenFlags.first { return (flag.flag, type(of: family)) }
        }
        return nil
    }

    /// Refuses a family's flag given with a model of another family: `--model cnn --vit-depth 6`
    /// would otherwise be silently ignored.
    public func checkFlags(for model: Architecture) throws {
        if let (flag, family) = flagOutside(model) { throw SAMTrainError("\(flag) only applies to the \(family.title)") }
    }
}

/// An option group of the registry (ArgumentParser's `OptionGroup` of a family's settings).
protocol RegisteredFamily { var family: any ModelFamily { get } }
extension OptionGroup: RegisteredFamily where Value: ModelFamily {
    var family: any ModelFamily { wrappedValue }
}

/// The families' settings of one run, in registry order (Sendable, unlike the parsed groups).
public struct ModelFamilies: Sendable {
    public let all: [any ModelFamily]

    public init(_ registry: ModelRegistry) { all = registry.all }

    public func family(of architecture: Architecture) -> any ModelFamily {
        all.first { type(of: $0).names.contains(architecture.rawValue) }!
    }

    func family(ofType type: any ModelFamily.Type) -> any ModelFamily {
        all.first { Swift.type(of: $0) == type }!
    }
}

/// A value of `--model`: one of the registry's names (the model, as `VariantName` is the variant).
public struct Architecture: ExpressibleByArgument, RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    public let rawValue: String

    public init?(rawValue: String) {
        guard ModelRegistry.names.contains(rawValue) else { return nil }
        self.rawValue = rawValue
    }

    public init?(argument: String) { self.init(rawValue: argument) }

    public static var allValueStrings: [String] { ModelRegistry.names }
    public static var allCases: [Architecture] { ModelRegistry.names.map { Architecture(rawValue: $0)! } }
    public var description: String { rawValue }
    public var defaultValueDescription: String { rawValue }

    public static func named(_ name: String) throws -> Architecture {
        guard let a = Architecture(rawValue: name) else {
            throw SAMTrainError("--model \(name): unknown model; choose one of \(ModelRegistry.names.joined(separator: ", "))")
        }
        return a
    }

    public static let mlp = Architecture(rawValue: "mlp")!
    public static let cnn = Architecture(rawValue: "cnn")!
    public static let resnet20 = Architecture(rawValue: "resnet20")!
    public static let resnet32 = Architecture(rawValue: "resnet32")!
    public static let resnet56 = Architecture(rawValue: "resnet56")!
    public static let wrn16_8 = Architecture(rawValue: "wrn16-8")!
    public static let wrn28_10 = Architecture(rawValue: "wrn28-10")!
    public static let resnet18 = Architecture(rawValue: "resnet18")!
    public static let vitT4 = Architecture(rawValue: "vit-t4")!
    public static let vitS4 = Architecture(rawValue: "vit-s4")!

    // The model with its family's defaults (a ViT: its preset), for code and tests that
    // name a model alone.

    public var defaultInputShape: [Int] { ModelConfiguration(self).defaultInputShape }

    public func build(inputShape: [Int]? = nil, classes: Int = 10, convolution: ConvolutionSettings = .init()) -> Sequential {
        ModelConfiguration(self).build(inputShape: inputShape, classes: classes, convolution: convolution)
    }

    public func check(imageShape shape: [Int], classes: Int, source: String) throws {
        try ModelConfiguration(self).check(imageShape: shape, classes: classes, source: source)
    }
}
