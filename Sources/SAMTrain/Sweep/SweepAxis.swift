import Foundation

/// One axis of a sweep's grid: a name and its values. A value is one setting, the axis's own
/// (`"rho": [0.02, 0.05]`), or a bundle of settings that change together, as Hydra's and
/// W&B's sweeps group parameters (`"method": [{"sam": "none"}, {"sam": "sam", "rho": 0.1}]`),
/// named by an optional `"label"`.
public struct SweepAxis: Sendable {
    /// The name (dashed, as settings are): results.csv's column, a figure's x or series, and
    /// each cell's directory name (`method=sgd,rho=0.05`).
    public var key: String
    public var values: [Value]

    public struct Value: Sendable {
        /// How results.csv, figures and cell names show it: the setting's value, or a bundle's
        /// `label` (default: its settings, `sam=sam,rho=0.1`).
        public var label: String
        /// The `samtrain train` settings it sets (dashed keys), in the file's order.
        public var settings: [(key: String, value: String)]
        /// Its settings given as JSON true/false (flags).
        public var flags: Set<String> = []
        public var isBundle = false
        /// The file's line of the value, and of each of its settings, for messages.
        var line = 1
        var lines: [String: Int] = [:]

        /// The label as a directory name (`SweepAxis.directoryName`).
        public var directoryName: String { SweepAxis.directoryName(label) }
    }

    /// Every key any of its values sets.
    public var keys: Set<String> { Set(values.flatMap { $0.settings.map(\.key) }) }

    /// A bundle's label when the file gives none: its settings as written, `sam=sam,rho=0.1`.
    static func defaultLabel(_ settings: [(key: String, value: String)]) -> String {
        settings.map { "\($0.key)=\($0.value)" }.joined(separator: ",")
    }

    /// `text` safe as (part of) a directory name on any file system and in a shell: letters,
    /// digits and `. _ + = , -` stay, each run of anything else becomes one `_` (labels may
    /// hold spaces, `/` or `ρ`; a value such as 0.05 or cifar10 is its own name).
    public static func directoryName(_ text: String) -> String {
        var name = ""
        for scalar in text.unicodeScalars {
            if scalar.isASCII, CharacterSet.alphanumerics.contains(scalar) || "._+=,-".unicodeScalars.contains(scalar) {
                name.unicodeScalars.append(scalar)
            } else if !name.hasSuffix("_") {
                name += "_"
            }
        }
        return name
    }

    /// The longest label a bundle may have (legends and directory names stay readable).
    public static let maximumLabel = 100
    /// The longest cell name: it is a directory name (NAME_MAX).
    public static let maximumCellName = 255
}

/// What a sweep file's axes may not do together, found before any cell is listed: each
/// problem's line and key, for `SweepFile`'s messages.
struct SweepAxisRules {
    struct Problem: Error {
        var line: Int
        var key: String
        var why: String
    }

    /// Labels that name one value twice, or two values one directory; two axes that set one
    /// key; an axis named like a key another axis sets.
    static func check(_ axes: [SweepAxis]) throws {
        for axis in axes {
            var labels: [String: SweepAxis.Value] = [:], directories: [String: SweepAxis.Value] = [:]
            for value in axis.values {
                if let earlier = labels[value.label] {
                    let why = value.isBundle || earlier.isBundle
                        ? "the values at lines \(earlier.line) and \(value.line) are both labelled \(value.label); each names its own cells: give each bundle its own \"label\""
                        : "the value \(value.label) is given twice (lines \(earlier.line) and \(value.line)); each value names its own cells"
                    throw Problem(line: value.line, key: axis.key, why: why)
                }
                labels[value.label] = value
                if let earlier = directories[value.directoryName] {
                    throw Problem(line: value.line, key: axis.key, why: "the labels \"\(earlier.label)\" (line \(earlier.line)) and \"\(value.label)\" (line \(value.line)) make the same directory name \(value.directoryName); make them differ in letters, digits or . _ + = , -")
                }
                directories[value.directoryName] = value
            }
        }
        // Each key varied by one axis only; an axis's name is the column of its labels.
        var setBy: [String: SweepAxis] = [:]
        for axis in axes {
            for value in axis.values {
                for (key, _) in value.settings {
                    if let other = setBy[key], other.key != axis.key {
                        throw Problem(line: value.lines[key] ?? value.line, key: key,
                                      why: "set by the axes \(other.key) and \(axis.key); a key may vary along one axis only (put the settings that go together in one axis's bundles)")
                    }
                }
            }
            for key in axis.keys { setBy[key] = axis }
        }
        for axis in axes {
            if let other = setBy[axis.key], other.key != axis.key {
                throw Problem(line: axis.values.first?.line ?? 1, key: axis.key,
                              why: "an axis named like the setting \(axis.key), which the axis \(other.key) varies: results.csv would need two \(axis.key) columns; name the axis otherwise")
            }
        }
    }
}
