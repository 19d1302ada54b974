import ArgumentParser
import Foundation

/// Everything samtrain knows about one variant, declared in the variant's own file: its
/// name, its flags (typed, with defaults and help, parsed by swift-argument-parser; checked
/// by `validate()`), the defaults it gives the shared flags, which settings must match on
/// resume, how a vector file gives its settings, its cost, and the object that runs it.
/// `VariantRegistry` lists the variants; the CLI, sweeps, resume checks, conformance and
/// `--help` derive from that list.
public protocol VariantOptions: ParsableArguments, Sendable {
    /// `--sam NAME`.
    static var name: String { get }
    /// One line for `--help`.
    static var summary: String { get }
    /// ρ when `--rho` is not given (nil: the variant has no radius).
    var defaultRho: Float? { get }
    /// δ when `--norm-eps` is not given.
    var defaultNormEps: Double { get }
    /// Cross-entropy label smoothing when `--label-smoothing` is not given.
    var defaultLabelSmoothing: Float { get }
    /// Forward+backward passes per shard and step, on average (LookSAM: 1 + 1/k).
    var passesPerStep: Double { get }
    /// The variant's settings, from its flags' declarations (`--gsam-alpha` is `gsam_alpha`)
    /// after `resolved`: every one defines the result when the variant is chosen.
    var declaredSettings: [DeclaredSetting] { get }
    /// Other variants whose flags this one takes (SAM-ON: its base's).
    var usesFlagsOf: [String] { get }
    /// Takes the settings a vector file's `sam` object gives (vectors/README.md's keys;
    /// missing and `null` keys keep the defaults).
    mutating func read(vector: VectorSettings) throws
    /// The object that runs the variant, with the run's shared settings.
    func makeVariant(_ shared: AscentSettings, all: VariantSet) throws -> SAMVariant
    /// These settings completed from the other variants' (SAM-ON takes its base's); the
    /// configuration uses the result. Default: unchanged.
    func resolved(all: VariantSet) -> Self
}

extension VariantOptions {
    public static var title: String { "\(name): \(summary)" }
    public var defaultRho: Float? { 0.05 }
    public var defaultNormEps: Double { 1e-12 }
    public var defaultLabelSmoothing: Float { 0 }
    public var declaredSettings: [DeclaredSetting] { DeclaredSettings.of(self) }
    public var usesFlagsOf: [String] { [] }
    /// The settings a resumed run must agree on, as checkpoints store them (`"gsam_alpha": "0.01"`).
    public var resultDefiningSettings: [String: String] {
        Dictionary(declaredSettings.map { ($0.key, $0.value.text) }) { first, _ in first }
    }
    public mutating func read(vector: VectorSettings) throws {}
    public func resolved(all: VariantSet) -> Self { self }
}

/// A property of a variant's options that ArgumentParser leaves alone: set by `resolved`,
/// never parsed from the command line.
public struct Unparsed<Value: Sendable>: Decodable, Sendable {
    public var value: Value?
    public init(_ value: Value? = nil) { self.value = value }
    public init(from decoder: Decoder) { value = nil }
}

/// The shared settings a variant object is built with (defaults already applied).
public struct AscentSettings: Sendable {
    public var rho: Float
    public var normEps: Double
    public init(rho: Float, normEps: Double) {
        self.rho = rho
        self.normEps = normEps
    }
}

/// A vector file's `sam` object, read generically: a key that is missing or `null` is nil
/// (schema 1 files lack the schema 2 keys; schema 2 files set unused ones to `null`).
public struct VectorSettings {
    let object: [String: JSONValue]
    let source: String
    /// The file's step count (a per-step list must cover it).
    public let steps: Int

    public init(_ object: [String: JSONValue], source: String, steps: Int) {
        self.object = object
        self.source = source
        self.steps = steps
    }

    func present(_ key: String) -> JSONValue? {
        guard let v = object[key], v != .null else { return nil }
        return v
    }

    func fail(_ key: String, _ what: String) -> SAMTrainError { SAMTrainError("\(source): sam.\(key) \(what)") }

    /// A finite number.
    public func number(_ key: String) throws -> Double? {
        guard let v = present(key) else { return nil }
        guard let d = v.number, d.isFinite else { throw fail(key, "is \(v); it must be a finite number") }
        return d
    }

    public func float(_ key: String) throws -> Float? { try number(key).map(Float.init) }

    /// A whole number in `range`.
    public func integer(_ key: String, in range: ClosedRange<Int>) throws -> Int? {
        guard let v = present(key) else { return nil }
        guard let i = v.integer(in: range) else { throw fail(key, "is \(v); it must be a whole number in \(CheckedSize.describe(range))") }
        return i
    }

    /// A string; a number as its decimal text (`p: 2` is "2.0").
    public func string(_ key: String) throws -> String? {
        guard let v = present(key) else { return nil }
        if let s = v.string { return s }
        if let d = v.number { return "\(d)" }
        throw fail(key, "is \(v); it must be a string")
    }

    public func bool(_ key: String) throws -> Bool? {
        guard let v = present(key) else { return nil }
        guard let b = v.bool else { throw fail(key, "is \(v); it must be true or false") }
        return b
    }

    /// A list of finite numbers.
    public func floats(_ key: String) throws -> [Float]? {
        guard let v = present(key) else { return nil }
        guard case .array(let list) = v else { throw fail(key, "must be a list of numbers") }
        return try list.map { item in
            guard let d = item.number, d.isFinite else { throw fail(key, "holds \(item); it must hold finite numbers") }
            return Float(d)
        }
    }

    /// One finite number per step of the file (`rho_min`, `rho_per_step`).
    public func perStep(_ key: String) throws -> [Float]? {
        guard let list = try floats(key) else { return nil }
        guard list.count >= steps else { throw fail(key, "has \(list.count) values for \(steps) steps") }
        return list
    }

    /// An enumerated value, by its raw value.
    public func choice<E: RawRepresentable & CaseIterable>(_ key: String, _ type: E.Type) throws -> E? where E.RawValue == String {
        guard let s = try string(key) else { return nil }
        guard let e = E(rawValue: s) else { throw fail(key, "is \(s); choose one of \(E.allCases.map(\.rawValue).joined(separator: ", "))") }
        return e
    }
}
