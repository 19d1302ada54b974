import ArgumentParser

/// Every variant samtrain has, each listed once. `--sam`'s values, the variants' flags and
/// their `--help` sections, sweep validation, resume checks and conformance all derive from
/// this list. Adding a variant = its file (a `VariantOptions`) + one line here.
public struct VariantRegistry: ParsableArguments {
    @OptionGroup(title: NoPerturbation.Options.title) var none: NoPerturbation.Options
    @OptionGroup(title: SAM.Options.title) var sam: SAM.Options
    @OptionGroup(title: ASAM.Options.title) var asam: ASAM.Options
    @OptionGroup(title: BiSAM.Options.title) var bisam: BiSAM.Options
    @OptionGroup(title: BSAM.Options.title) var bsam: BSAM.Options
    @OptionGroup(title: GSAM.Options.title) var gsam: GSAM.Options
    @OptionGroup(title: LookSAM.Options.title) var looksam: LookSAM.Options
    @OptionGroup(title: FriendlySAM.Options.title) var fsam: FriendlySAM.Options
    @OptionGroup(title: VaSSO.Options.title) var vasso: VaSSO.Options
    @OptionGroup(title: SAMON.Options.title) var samon: SAMON.Options
    @OptionGroup(title: ESAM.Options.title) var esam: ESAM.Options

    public init() {}

    /// The variants' settings as parsed, in the order above.
    public var all: [any VariantOptions] {
        Mirror(reflecting: self).children.compactMap { ($0.value as? RegisteredGroup)?.options }
    }

    /// Every variant with its defaults.
    public static let defaults: VariantSet = {
        do { return VariantSet(try VariantRegistry.parse([])) } catch { fatalError("the variants' defaults do not parse: \(error)") }
    }()

    /// The variants' names, in registry order.
    public static var names: [String] { defaults.names }
}

/// An option group of the registry (ArgumentParser's `OptionGroup` of a variant's options).
protocol RegisteredGroup { var options: any VariantOptions { get } }
extension OptionGroup: RegisteredGroup where Value: VariantOptions {
    var options: any VariantOptions { wrappedValue }
}

/// Every variant's settings of one run, by name.
public struct VariantSet: Sendable {
    public private(set) var names: [String]
    private var byName: [String: any VariantOptions]

    public init(_ registry: VariantRegistry) {
        let all = registry.all
        names = all.map { type(of: $0).name }
        byName = Dictionary(uniqueKeysWithValues: all.map { (type(of: $0).name, $0) })
    }

    public subscript(name: String) -> (any VariantOptions)? { byName[name] }

    /// One variant's settings, by type.
    public func options<O: VariantOptions>(_ type: O.Type) -> O {
        byName[O.name] as! O
    }

    /// Changes one variant's settings (tests, vector files).
    public mutating func update<O: VariantOptions>(_ type: O.Type, _ body: (inout O) throws -> Void) rethrows {
        var o = options(type)
        try body(&o)
        byName[O.name] = o
    }

    /// Replaces the settings of the variant `options` belongs to.
    public mutating func replace(_ options: any VariantOptions) {
        byName[type(of: options).name] = options
    }
}

/// A value of `--sam`: one of the registry's names.
public struct VariantName: ExpressibleByArgument, Hashable, Sendable, CustomStringConvertible {
    public let rawValue: String

    public init?(argument: String) {
        guard VariantRegistry.names.contains(argument) else { return nil }
        rawValue = argument
    }

    public static var allValueStrings: [String] { VariantRegistry.names }
    public var description: String { rawValue }
    public var defaultValueDescription: String { rawValue }

    public static let none = VariantName(argument: NoPerturbation.Options.name)!
    public static let sam = VariantName(argument: SAM.Options.name)!
}
