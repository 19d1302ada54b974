import ArgumentParser
import Foundation

/// A group of flags (an ArgumentParser `ParsableArguments`) whose declarations are the one
/// source of truth of its settings: a flag's property gives its name (`--weight-decay`), type,
/// default, help and, by the same name in snake case, its key in `config.json` and in a
/// checkpoint's settings (`weight_decay`). The group says which of its settings a resumed run
/// must match; its `validate()` checks them.
public protocol SettingsGroup: ParsableArguments {
    /// The settings of the group that change what a run computes (property names): a
    /// resumed run must agree on every one. Default: all of them.
    static var resultDefining: ResultDefining { get }
}

extension SettingsGroup {
    public static var resultDefining: ResultDefining { .all }
}

/// Which settings of a group a resumed run must match.
public enum ResultDefining: Sendable {
    case all
    case none
    /// All but these properties.
    case allBut(Set<String>)

    func contains(_ property: String) -> Bool {
        switch self {
        case .all: true
        case .none: false
        case .allBut(let except): !except.contains(property)
        }
    }
}

/// One setting as declared and parsed: its `config.json` key, its value, and whether a
/// resumed run must match it.
public struct DeclaredSetting: Sendable, Equatable {
    public var key: String
    public var value: SettingValue
    public var definesResult: Bool
    /// The flag that sets it (`--weight-decay`).
    public var flag: String
}

/// A setting's value, typed for `config.json` and as text for a checkpoint's settings.
public enum SettingValue: Sendable, Equatable {
    case unset
    case bool(Bool)
    case integer(Int)
    /// A Float or Double, with its text as Swift prints it (`0.05`, the text resume compares).
    case number(Double, text: String)
    case text(String)

    init(_ value: Any) {
        switch value {
        case let o as AnyOptional where o.isNil: self = .unset
        case let o as AnyOptional: self = SettingValue(o.wrapped!)
        case let b as Bool: self = .bool(b)
        case let i as Int: self = .integer(i)
        case let u as UInt64: self = u <= UInt64(Int.max) ? .integer(Int(u)) : .text("\(u)")
        case let f as Float: self = .number(Double(f), text: "\(f)")
        case let d as Double: self = .number(d, text: "\(d)")
        case let r as any RawRepresentable<String>: self = .text(r.rawValue)
        default: self = .text("\(value)")
        }
    }

    /// The text a checkpoint stores and a resume compares (`none` when unset).
    public var text: String {
        switch self {
        case .unset: "none"
        case .bool(let b): "\(b)"
        case .integer(let i): "\(i)"
        case .number(_, let text): text
        case .text(let s): s
        }
    }

    /// The value as `JSONSerialization` writes it (NSNull when unset).
    public var json: Any {
        switch self {
        case .unset: NSNull()
        case .bool(let b): b
        case .integer(let i): i
        case .number(let d, _): d
        case .text(let s): s
        }
    }
}

/// Reads the declared settings of parsed option groups.
public enum DeclaredSettings {
    /// Every setting of `group`, in declaration order, nested groups included (a nested
    /// group's own `resultDefining` applies to its settings).
    public static func of(_ group: any ParsableArguments) -> [DeclaredSetting] {
        let rule = (group as? any SettingsGroup).map { type(of: $0).resultDefining } ?? .all
        var out: [DeclaredSetting] = []
        for child in Mirror(reflecting: group).children {
            guard let label = child.label, label.hasPrefix("_") else { continue }
            let property = String(label.dropFirst())
            if let nested = child.value as? NestedGroup {
                guard let inner = nested.parsedGroup else { continue }
                out += of(inner)
            } else if let declared = child.value as? ParsedFlag {
                out.append(DeclaredSetting(key: snakeCase(property), value: SettingValue(declared.parsedValue),
                                           definesResult: rule.contains(property), flag: "--" + kebabCase(property)))
            }
        }
        return out
    }

    /// The flags a group declares (`--looksam-k`), nested groups excluded.
    public static func flags(of type: any ParsableArguments.Type) -> [String] {
        guard let defaults = try? type.parse([]) else { return [] }
        return Mirror(reflecting: defaults).children.compactMap { child in
            guard let label = child.label, label.hasPrefix("_"), child.value is ParsedFlag else { return nil }
            return "--" + kebabCase(String(label.dropFirst()))
        }
    }

    /// `weightDecay` → `weight_decay`.
    static func snakeCase(_ name: String) -> String { separated(name, by: "_") }
    /// `weightDecay` → `weight-decay` (ArgumentParser's default long name).
    static func kebabCase(_ name: String) -> String { separated(name, by: "-") }

    private static func separated(_ name: String, by separator: Character) -> String {
        var out = ""
        for c in name {
            if c.isUppercase, !out.isEmpty { out.append(separator) }
            out.append(contentsOf: c.lowercased())
        }
        return out
    }
}

/// A parsed `@Option` or `@Flag`: its value.
protocol ParsedFlag { var parsedValue: Any { get } }
extension Option: ParsedFlag { var parsedValue: Any { wrappedValue } }
extension Flag: ParsedFlag { var parsedValue: Any { wrappedValue } }

/// A parsed `@OptionGroup`: the group (nil for a group that declares no settings).
protocol NestedGroup { var parsedGroup: (any ParsableArguments)? { get } }
extension OptionGroup: NestedGroup {
    var parsedGroup: (any ParsableArguments)? { wrappedValue as? any SettingsGroup }
}

/// An Optional seen through `Any`.
protocol AnyOptional {
    var isNil: Bool { get }
    var wrapped: Any? { get }
}
extension Optional: AnyOptional {
    var isNil: Bool { self == nil }
    var wrapped: Any? { self.map { $0 as Any } }
}
