import Foundation

/// A sweep: a grid of training runs described in a small JSON file.
///
///     { "name": "m-rho", "description": "...", "expected_time": "≈ 9 h on 2 cores",
///       "ranks": 2,
///       "fixed": { "model": "cnn", "epochs": 10 },
///       "axes":  { "m": [1, 4, 16], "rho": [0.01, 0.05],
///                  "method": [{"sam": "none"}, {"label": "asam", "sam": "asam", "rho": 0.5}] },
///       "sharpness": { "subset": 500, "rho": 0.05, "m": 128 },
///       "quick": { "expected_time": "≈ 4 min", "fixed": { "epochs": 1, "train_subset": 2048 } } }
///
/// `fixed` and `axes` take `samtrain train` flags (`label_noise` or `label-noise`); every
/// cell of the grid is a normal training run. An axis's value is one setting or a bundle of
/// them (`SweepAxis`); a value's settings override `fixed`. `quick` overrides for `--quick`.
public struct SweepFile: Sendable {
    public var name: String
    public var description: String
    public var expectedTime: String
    public var ranks: Int
    public var fixed: [(key: String, value: String)]
    /// The fixed settings given as JSON true/false (flags).
    public var flags: Set<String> = []
    /// The file, and the line of each fixed setting's key, for error messages.
    var source = ""
    var lines: [String: Int] = [:]
    public var axes: [SweepAxis]
    public var sharpness: (subset: Int, rho: Float, m: Int)?
    /// Figures drawn when the sweep is collected.
    public var figures: [Figure] = []
    /// The paper's numbers that the grid reproduces (label → figure), printed beside it.
    public var published: [(key: String, value: String)] = []

    /// The largest grid a sweep may hold, the most ranks per cell, and the most settings a
    /// cell may have (samtrain train has fewer than 100 flags).
    public static let maximumCells = 1_000
    public static let maximumRanks = 4096
    public static let maximumSettings = 1_000
    /// The grid's size (checked against `maximumCells` when read).
    public private(set) var cellCount = 1

    /// A figure of the sweep: y (one measure or several) against x, a line per value of
    /// series. x is a column of results.csv (an axis or a setting), or `epoch`: then each
    /// cell's metrics.csv gives lines over the epochs (how a run got to its final numbers:
    /// the fall from the best test accuracy as the noisy labels are fitted), and `per`, an
    /// axis or a setting, draws a chart per value of it.
    public struct Figure: Sendable, Equatable {
        public var x: String
        public var series: String
        public var y: [String]
        public var logX = false
        public var per: String?
        public var byEpoch: Bool { x == "epoch" }
        /// Its file name: `accuracy-vs-rho-per-m`, several measures joined by `+`
        /// (`SweepFigure.epochCharts` adds `per`'s axis and label).
        public var name: String { "\(y.joined(separator: "+"))-vs-\(x)-per-\(series)" }
    }

    /// One training run of the grid.
    public struct Cell: Sendable {
        /// Its directory's name: each axis's name and value (`method=sgd,label-noise=0.4`).
        public var name: String
        public var settings: [(key: String, value: String)]
        /// The keys whose values are JSON true/false: flags, given or left out.
        public var flags: Set<String> = []
        /// Each axis's value as results.csv and figures show it.
        public var labels: [(axis: String, label: String)] = []
        /// The file's line of each setting, for messages.
        var lines: [String: Int] = [:]
        public func value(_ key: String) -> String? { settings.last { $0.key == key }?.value }
        /// `samtrain train` arguments: `--key value`, or `--key` alone for a setting that is
        /// JSON `true` (a flag; `false` leaves it out). Whether a key is a flag of
        /// `samtrain train` at all, and of what type, its own parser decides (`validate`).
        public var arguments: [String] {
            settings.flatMap { s -> [String] in
                flags.contains(s.key) ? (s.value == "true" ? ["--" + s.key] : []) : ["--" + s.key, s.value]
            }
        }
    }

    /// The grid's points: one value of each axis, the first axis outermost.
    private var points: [[(axis: String, value: SweepAxis.Value)]] {
        var grid: [[(axis: String, value: SweepAxis.Value)]] = [[]]
        for axis in axes {
            grid = grid.flatMap { partial in axis.values.map { partial + [(axis.key, $0)] } }
        }
        return grid
    }

    private static func cellName(_ point: [(axis: String, value: SweepAxis.Value)]) -> String {
        point.isEmpty ? "run" : point.map { "\(SweepAxis.directoryName($0.axis))=\($0.value.directoryName)" }.joined(separator: ",")
    }

    /// Every cell: the fixed settings, then each axis value's settings in place of the fixed ones.
    public var cells: [Cell] {
        points.map { point in
            var cell = Cell(name: Self.cellName(point), settings: fixed, flags: flags, labels: point.map { ($0.axis, $0.value.label) }, lines: lines)
            for (_, value) in point {
                let keys = Set(value.settings.map(\.key))
                cell.settings.removeAll { keys.contains($0.key) }
                cell.settings += value.settings
                cell.flags = cell.flags.subtracting(keys).union(value.flags)
                for key in keys { cell.lines[key] = value.lines[key] ?? value.line }
            }
            return cell
        }
    }

    /// Reads and validates `path`; `quick` applies the file's `quick` overrides. Errors name
    /// the line and the key.
    public init(path: String, quick: Bool) throws {
        guard let data = FileManager.default.contents(atPath: path) else { throw SAMTrainError("\(path): cannot read the sweep file") }
        try self.init(data: data, source: path, quick: quick)
    }

    /// Parses a sweep file's contents; `path` names it in errors.
    public init(data: Data, source path: String, quick: Bool) throws {
        let text = SweepText(data)
        func fail(_ key: String, _ why: String, line: Int? = nil) -> SAMTrainError {
            SAMTrainError("\(path):\(line ?? text.line(of: key)): \(key): \(why)")
        }
        // Settings are at most 5 deep: quick.axes.method[0].rho.
        let written = JSONAsWritten(data, numbersToDepth: 5)
        let file: SweepDocument
        do {
            let decoder = JSONDecoder()
            decoder.userInfo[SweepDocument.context] = SweepDocument.Context(text: text, written: written, quick: quick)
            file = try decoder.decode(SweepDocument.self, from: data)
        } catch let problem as SweepDocument.Problem {
            throw fail(problem.key, problem.why, line: problem.line)
        } catch let e as DecodingError {
            // Not JSON, or not an object; or a value JSONDecoder cannot hold (1e400), named by its key.
            guard let key = e.key else { throw SAMTrainError("\(path): not a JSON object (sweep files are JSON)") }
            throw fail(key, e.problem)
        }
        if let repeated = written.repeatedKey {
            throw SAMTrainError("\(path):\(repeated.line): \(repeated.key): given twice in one object; give each key once")
        }

        name = file.name ?? (path as NSString).lastPathComponent
        description = file.description ?? ""
        expectedTime = file.expectedTime ?? "unknown"
        ranks = file.ranks ?? 2
        var settings = file.fixed?.settings ?? []
        axes = file.axes?.axes ?? []
        sharpness = file.sharpness?.probe
        published = file.published?.figures ?? []
        figures = file.figures?.figures ?? []
        // The quick overrides, decoded only for --quick: quick.fixed changes fixed (an axis's
        // values still set their keys), quick.axes replaces or adds axes.
        if let q = file.quick {
            for setting in q.fixed?.settings ?? [] {
                settings.removeAll { $0.key == setting.key }
                settings.append(setting)
            }
            for axis in q.axes?.axes ?? [] {
                if let i = axes.firstIndex(where: { $0.key == axis.key }) { axes[i] = axis } else { axes.append(axis) }
            }
            expectedTime = q.expectedTime ?? expectedTime
            sharpness = q.sharpness?.probe ?? sharpness
        }
        // Each rank probes subset/ranks examples in shards of m: fewer than m would measure nothing.
        if let probe = sharpness, probe.m > probe.subset / ranks {
            let place: [CodingKey] = quick && file.quick?.sharpness != nil ? [JSONKey("quick"), JSONKey("sharpness")] : [JSONKey("sharpness")]
            throw fail("sharpness", "m \(probe.m) is more than the \(probe.subset / ranks) examples each of the \(ranks) ranks probes (subset \(probe.subset)): the m-sharpness would be 0; give m ≤ subset ÷ ranks", line: written.line(at: place))
        }
        fixed = settings.map { ($0.key, $0.value.text) }
        // A chart per value of an axis or a setting (a fixed one gives one chart).
        let keys = Set(axes.map(\.key) + fixed.map(\.key) + axes.flatMap { $0.values.flatMap { $0.settings.map(\.key) } })
        for figure in figures {
            if let per = figure.per, !keys.contains(per) {
                throw fail("per", "\(per) is neither an axis (\(axes.map(\.key).joined(separator: ", "))) nor a setting of the sweep; a per-epoch figure draws a chart per value of one")
            }
        }
        flags = Set(settings.filter(\.value.isFlag).map(\.key))
        if axes.isEmpty && file.axes == nil { throw fail("axes", "a sweep needs axes") }
        // Bounded before any cell is listed: the product of the axes' lengths, and each cell's settings.
        let sizes = axes.map(\.values.count)
        guard let count = CheckedSize.product(sizes, limit: SweepFile.maximumCells) else {
            throw fail("axes", "the grid has \(sizes.map(String.init).joined(separator: " × ")) cells, more than the \(SweepFile.maximumCells) a sweep may have")
        }
        cellCount = count
        let most = axes.reduce(fixed.count) { $0 + ($1.values.map(\.settings.count).max() ?? 0) }
        guard most <= SweepFile.maximumSettings else {
            throw fail("axes", "a cell would have up to \(most) settings, more than the \(SweepFile.maximumSettings) a cell may have")
        }
        do {
            try SweepAxisRules.check(axes)
        } catch let problem as SweepAxisRules.Problem {
            throw fail(problem.key, problem.why, line: problem.line)
        }
        // Each cell's name is a directory of its own.
        var named: [String: [(axis: String, value: SweepAxis.Value)]] = [:]
        for point in points {
            let name = Self.cellName(point)
            if name.utf8.count > SweepAxis.maximumCellName {
                let longest = point.max { $0.value.directoryName.utf8.count < $1.value.directoryName.utf8.count }!
                throw fail(longest.axis, "the cell name \(name.prefix(60))… has \(name.utf8.count) bytes, more than the \(SweepAxis.maximumCellName) of a directory name; give the values of the axis \(longest.axis) shorter labels", line: longest.value.line)
            }
            if let other = named[name] {
                let differing = zip(other, point).first { $0.value.label != $1.value.label }?.1 ?? point.last!
                throw fail(differing.axis, "two cells would share the directory \(name); make the labels differ in letters, digits or . _ + = , -", line: differing.value.line)
            }
            named[name] = point
        }
        source = path
        for (key, _) in settings {
            // The file may spell the key label_noise or label-noise.
            let underscored = text.line(of: key.replacingOccurrences(of: "-", with: "_"))
            lines[key] = underscored > 1 ? underscored : text.line(of: key)
        }
    }

    /// Points every cell at the user's copy of the dataset (`samtrain sweep --data DIR`).
    public mutating func overrideData(_ directory: String) {
        fixed.removeAll { $0.key == "data" }
        axes.removeAll { $0.key == "data" }
        for a in axes.indices {
            for v in axes[a].values.indices { axes[a].values[v].settings.removeAll { $0.key == "data" } }
        }
        fixed.append((key: "data", value: directory))
    }

    /// How `samtrain train` turns its arguments into a configuration: the sweep validates each
    /// cell with the very parser that will run it (the CLI passes its `TrainCommand`).
    public typealias TrainParser = (_ arguments: [String]) throws -> TrainingConfiguration

    /// Refuses, before any cell starts, what would fail inside one: each cell's arguments
    /// (exactly those `SweepRunner` launches) parsed by `parse`, then what depends on the
    /// rank count (the batch split, m) and the dataset's files. Errors name the cell.
    public func validate(parse: TrainParser) throws {
        var checkedData = Set<String>()
        for cell in cells {
            let c: TrainingConfiguration
            do {
                c = try parse(SweepRunner.trainArguments(cell, directory: "/nonexistent/out", resuming: false))
                guard c.batches.batchSize % ranks == 0 else {
                    throw SAMTrainError("--batch-size \(c.batches.batchSize) is not divisible by the sweep's \(ranks) ranks")
                }
                _ = try ShardLayout(scope: c.samConfiguration.scope, globalBatch: c.batches.batchSize, worldSize: ranks)
            } catch let e as SAMTrainError {
                // The line of the setting the message names, when it names one.
                // The one named first ("Unknown option '--rhoo'. Did you mean '--rho'?" is about rhoo).
                let named = cell.settings.compactMap { s in Self.position(of: s.key, in: e.message).map { (s.key, $0) } }.min { $0.1 < $1.1 }?.0
                let place = named.flatMap { cell.lines[$0] }.map { "\(source):\($0): " } ?? ""
                throw SAMTrainError("\(place)cell \(cell.name): \(e.message)")
            }
            // Each dataset directory is looked at once, however many cells use it.
            if checkedData.insert(c.data.dataset.rawValue + "\u{0}" + c.data.data).inserted {
                try c.data.dataset.checkFiles(directory: c.data.data)
            }
        }
    }
}

extension SweepFile {
    /// Where `message` first names `--flag` itself (not `--flag-more`: `--m` is not `--momentum`).
    static func position(of flag: String, in message: String) -> Int? {
        var rest = message[...]
        while let range = rest.range(of: "--" + flag) {
            let next = rest[range.upperBound...].unicodeScalars.first
            if next.map({ !CharacterSet.alphanumerics.contains($0) && $0 != "-" && $0 != "_" }) ?? true {
                return message.distance(from: message.startIndex, to: range.lowerBound)
            }
            rest = rest[range.upperBound...]
        }
        return nil
    }
}

/// A sweep file's text, for the line of a key in messages ("s.json:3: colour: unknown key").
private struct SweepText: Sendable {
    let bytes: [UInt8]
    /// Where each line ends, ascending.
    let newlines: [Int]

    init(_ data: Data) {
        let bytes = [UInt8](data)
        self.bytes = bytes
        newlines = bytes.indices.filter { bytes[$0] == UInt8(ascii: "\n") }
        // Every quoted string's first offset, in one pass: a file of thousands of keys is
        // indexed in linear time, not searched once per key.
        var first: [String: Int] = [:]
        var i = 0
        while i < bytes.count {
            if bytes[i] == UInt8(ascii: "\"") {
                var j = i + 1
                while j < bytes.count, bytes[j] != UInt8(ascii: "\"") { j += bytes[j] == UInt8(ascii: "\\") ? 2 : 1 }
                if j < bytes.count {
                    let content = String(decoding: bytes[(i + 1)..<j], as: UTF8.self)
                    if first[content] == nil { first[content] = i }
                }
                i = j + 1
            } else {
                i += 1
            }
        }
        firstQuoted = first
    }

    /// The offset of each quoted string's first occurrence (its opening quote).
    let firstQuoted: [String: Int]

    /// The line of the key's first occurrence, quoted (1 when it does not occur).
    func line(of key: String) -> Int {
        guard let offset = firstQuoted[key] else { return 1 }
        // The newlines before it, by bisection.
        var low = 0, high = newlines.count
        while low < high {
            let middle = (low + high) / 2
            if newlines[middle] < offset { low = middle + 1 } else { high = middle }
        }
        return low + 1
    }
}

/// `label_noise` as `samtrain train` spells it: `label-noise`.
private func dashed(_ key: String) -> String { key.replacingOccurrences(of: "_", with: "-") }

/// Refuses one object's two spellings of one key (`label_noise` and `label-noise`): one would
/// silently override the other. `dashedKeys[i]` is `keys[i]` dashed.
private func refuseSpellings(_ dashedKeys: [String], _ keys: [String], in decoder: Decoder) throws {
    var seen: [String: String] = [:]
    for (d, k) in zip(dashedKeys, keys) {
        if let other = seen[d] {
            let line = (decoder.userInfo[SweepDocument.context] as? SweepDocument.Context)?.written.line(at: decoder.codingPath + [JSONKey(k)])
            throw SweepDocument.Problem(k, "given twice in one object (as \(other) and \(k)); give each key once", line: line)
        }
        seen[d] = k
    }
}

/// A sweep file as JSON, checked as it is decoded, in the order of its keys below; a problem
/// names the key it is about (`SweepFile` adds the file and the key's line).
private struct SweepDocument: Decodable {
    struct Problem: Error {
        var key: String
        var why: String
        /// The line, when the key's first occurrence in the text is not the place.
        var line: Int?
        init(_ key: String, _ why: String, line: Int? = nil) {
            self.key = key
            self.why = why
            self.line = line
        }
    }

    /// What decoding needs beyond the JSON: the text (lines, numbers as written) and --quick.
    struct Context: Sendable {
        var text: SweepText
        var written: JSONAsWritten
        var quick: Bool
    }
    static let context = CodingUserInfoKey(rawValue: "samtrain.sweep-file")!
    static let keys = ["name", "description", "expected_time", "ranks", "fixed", "axes", "sharpness", "quick", "figures", "published"]

    var name: String?
    var description: String?
    var expectedTime: String?
    var ranks: Int?
    var fixed: Settings?
    var axes: Axes?
    var sharpness: Probe?
    var published: Published?
    var figures: Figures?
    var quick: Quick?

    init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: JSONKey.self)
        try c.refuseKeys(except: Self.keys) { "unknown key; the keys are \($0.sorted().joined(separator: ", "))" }
        name = try c.text("name")
        description = try c.text("description")
        expectedTime = try c.text("expected_time")
        if let r = try c.value("ranks") {
            guard let i = r.integer(in: 1...SweepFile.maximumRanks) else { throw Problem("ranks", "must be an integer in 1…\(SweepFile.maximumRanks), got \(r)") }
            ranks = i
        }
        fixed = try c.ifPresent(Settings.self, "fixed")
        axes = try c.ifPresent(Axes.self, "axes")
        sharpness = try c.ifPresent(Probe.self, "sharpness")
        published = try c.ifPresent(Published.self, "published")
        figures = try c.ifPresent(Figures.self, "figures")
        quick = try c.ifPresent(Quick.self, "quick")
    }

    /// A setting's value as `samtrain train` takes it on its command line: a string as it is,
    /// a number as written (16 stays "16", 0.05 and 1.0 stay decimals: cells' names are
    /// stable), or JSON true/false for a flag (`SweepFile.Cell.arguments`).
    struct Value: Decodable {
        var text: String
        var isFlag = false

        init(from decoder: Decoder) throws {
            // The setting's key (an axis's values are at key[i]), and where it is written.
            let key = decoder.codingPath.last { JSONPath.index($0) == nil }?.stringValue ?? ""
            let context = decoder.userInfo[SweepDocument.context] as? Context
            let line = context?.written.line(at: decoder.codingPath)
            let single = try decoder.singleValueContainer()
            let written = context?.written.number(at: decoder.codingPath)
            if let b = try? single.decode(Bool.self) {
                text = b ? "true" : "false"
                isFlag = true
            } else if let s = try? single.decode(String.self) {
                text = s
            } else if let d = try? single.decode(Double.self) {
                let number = written ?? (try? single.decode(Int.self)).map(String.init) ?? "\(d)"
                if JSONAsWritten.isInteger(number) {
                    guard let i = Int(number) else { throw Problem(key, "\(number) is not an integer within ±2⁶³", line: line) }
                    text = String(i)
                } else {
                    text = "\(d)"
                }
            } else {
                let value = (try? single.decode(JSONValue.self)).map { "\($0)" } ?? written ?? "?"
                throw Problem(key, "must be a string, a finite number, or true/false for a flag; got \(value)", line: line)
            }
        }
    }

    /// `fixed`: settings by key (`label_noise` or `label-noise`), in key order.
    struct Settings: Decodable {
        var settings: [(key: String, value: Value)]

        init(from decoder: Decoder) throws {
            guard let c = try? decoder.container(keyedBy: JSONKey.self) else { throw Problem("fixed", "must be an object of settings") }
            settings = try c.allKeys.map(\.stringValue).sorted().map { k in (dashed(k), try c.decode(Value.self, forKey: JSONKey(k))) }
            try refuseSpellings(settings.map(\.key), c.allKeys.map(\.stringValue).sorted(), in: decoder)
        }
    }

    /// `axes`: lists of values by key, in the order the file writes them (the grid's nesting
    /// and the cells' names). A value is a setting or a bundle (`Bundle`).
    struct Axes: Decodable {
        var axes: [SweepAxis]

        init(from decoder: Decoder) throws {
            guard let c = try? decoder.container(keyedBy: JSONKey.self) else { throw Problem("axes", "must be an object of lists") }
            let context = decoder.userInfo[SweepDocument.context] as? Context
            // By the line of the key's first occurrence in the text, then by name: the order
            // cells have been named by since the first sweep files (a sweep resumes by name).
            let lines = Dictionary(c.allKeys.map { ($0.stringValue, context?.text.line(of: $0.stringValue) ?? 1) }) { a, _ in a }
            let ordered = lines.keys.sorted { (lines[$0]!, $0) < (lines[$1]!, $1) }
            try refuseSpellings(ordered.map(dashed), ordered, in: decoder)
            axes = try ordered.map { k in
                guard var list = try? c.nestedUnkeyedContainer(forKey: JSONKey(k)), !list.isAtEnd else {
                    throw Problem(k, "an axis must be a non-empty list of values (settings, or bundles of settings: objects)")
                }
                var values: [SweepAxis.Value] = []
                while !list.isAtEnd {
                    let entry = try list.decode(AxisEntry.self)
                    if let bundle = entry.bundle {
                        values.append(bundle)
                    } else if let v = entry.setting {
                        let line = entry.line ?? lines[k] ?? 1
                        values.append(SweepAxis.Value(label: v.text, settings: [(dashed(k), v.text)], flags: v.isFlag ? [dashed(k)] : [],
                                                      line: line, lines: [dashed(k): line]))
                    }
                }
                return SweepAxis(key: dashed(k), values: values)
            }
        }
    }

    /// One item of an axis's list: a setting of the axis's own key, or an object (a bundle).
    struct AxisEntry: Decodable {
        var setting: Value?
        var bundle: SweepAxis.Value?
        var line: Int?

        init(from decoder: Decoder) throws {
            line = (decoder.userInfo[SweepDocument.context] as? Context)?.written.line(at: decoder.codingPath)
            if let c = try? decoder.container(keyedBy: JSONKey.self) {
                bundle = try Bundle.decode(c, decoder: decoder, line: line)
            } else if try (try? decoder.unkeyedContainer()) != nil || decoder.singleValueContainer().decodeNil() {
                let key = decoder.codingPath.last { JSONPath.index($0) == nil }?.stringValue ?? "axes"
                let value = (try? decoder.singleValueContainer().decode(JSONValue.self)).map { "\($0)" } ?? "?"
                throw Problem(key, "an axis's value is a setting (a string, a finite number, or true/false) or a bundle of settings (an object); got \(value)", line: line)
            } else {
                setting = try Value(from: decoder)
            }
        }
    }

    /// A bundle: `samtrain train` settings that one value of an axis sets together, and an
    /// optional "label" naming it.
    enum Bundle {
        static func decode(_ c: KeyedDecodingContainer<JSONKey>, decoder: Decoder, line: Int?) throws -> SweepAxis.Value {
            let context = decoder.userInfo[SweepDocument.context] as? Context
            let axis = decoder.codingPath.last { JSONPath.index($0) == nil }?.stringValue ?? "axes"
            let item = decoder.codingPath.last.flatMap(JSONPath.index).map { $0 + 1 } ?? 1
            // The keys in the order written: a default label reads as the file does.
            let present = Set(c.allKeys.map(\.stringValue))
            let written = (context?.written.keys(at: decoder.codingPath) ?? []).filter(present.contains)
            let keys = written + present.subtracting(written).sorted()
            func lineOf(_ key: String) -> Int? { context?.written.line(at: decoder.codingPath + [JSONKey(key)]) ?? line }
            var value = SweepAxis.Value(label: "", settings: [], isBundle: true, line: line ?? 1)
            var label: String?
            for k in keys {
                if k == "label" {
                    let text = try c.decode(JSONValue.self, forKey: JSONKey(k))
                    guard let s = text.string, !s.trimmingCharacters(in: .whitespaces).isEmpty else {
                        throw Problem(k, "a bundle's label is a non-empty string; got \(text)", line: lineOf(k))
                    }
                    guard !s.unicodeScalars.contains(where: { $0.properties.generalCategory == .control }) else {
                        throw Problem(k, "a label is one line of printable characters (it names results.csv rows and legends)", line: lineOf(k))
                    }
                    guard s.count <= SweepAxis.maximumLabel else {
                        throw Problem(k, "a label has at most \(SweepAxis.maximumLabel) characters; this one has \(s.count)", line: lineOf(k))
                    }
                    label = s
                    continue
                }
                let setting = try c.decode(Value.self, forKey: JSONKey(k))
                value.settings.append((dashed(k), setting.text))
                if setting.isFlag { value.flags.insert(dashed(k)) }
                value.lines[dashed(k)] = lineOf(k)
            }
            try refuseSpellings(value.settings.map(\.key), keys.filter { $0 != "label" }, in: decoder)
            guard !value.settings.isEmpty || label != nil else {
                throw Problem(axis, "value \(item) is an empty bundle {}: give it the settings it changes, or a \"label\" alone for the fixed settings as they are", line: line)
            }
            guard value.settings.count <= SweepFile.maximumSettings else {
                throw Problem(axis, "value \(item) sets \(value.settings.count) settings, more than the \(SweepFile.maximumSettings) a cell may have", line: line)
            }
            value.label = label ?? SweepAxis.defaultLabel(value.settings)
            return value
        }
    }

    /// `sharpness`: the m-sharpness measured after each cell.
    struct Probe: Decodable {
        var probe: (subset: Int, rho: Float, m: Int)

        init(from decoder: Decoder) throws {
            guard let c = try? decoder.container(keyedBy: JSONKey.self) else { throw Problem("sharpness", "must be an object with subset, rho, m") }
            try c.refuseKeys(except: ["subset", "rho", "m"]) { _ in "unknown sharpness setting; use subset, rho, m" }
            let range = 1...Int(Int32.max)
            guard let subset = try c.value("subset")?.integer(in: range), let rho = try c.value("rho")?.number, rho.isFinite, rho > 0,
                  let m = try c.value("m")?.integer(in: range) else {
                throw Problem("sharpness", "needs positive subset (integer), rho (number) and m (integer)")
            }
            probe = (subset, Float(rho), m)
        }
    }

    /// `published`: the paper's figures by label, numbers or strings.
    struct Published: Decodable {
        var figures: [(key: String, value: String)]

        init(from decoder: Decoder) throws {
            guard let c = try? decoder.container(keyedBy: JSONKey.self) else { throw Problem("published", "must be an object of label: figure") }
            figures = try c.allKeys.map(\.stringValue).sorted().map { k in
                let v = try c.decode(JSONValue.self, forKey: JSONKey(k))
                if let s = v.string { return (k, s) }
                if let d = v.number { return (k, "\(d)") }
                throw Problem(k, "a published figure is a number or a string")
            }
        }
    }

    /// `figures`: `{x, series, y, log_x, per}` each; y one measure or a list; `per` only
    /// with x `epoch`.
    struct Figures: Decodable {
        var figures: [SweepFile.Figure] = []

        init(from decoder: Decoder) throws {
            let notAList = Problem("figures", "must be a list of {x, series, y, log_x, per}")
            // Every item an object before any is read.
            guard var check = try? decoder.unkeyedContainer() else { throw notAList }
            while !check.isAtEnd { guard (try? check.nestedContainer(keyedBy: JSONKey.self)) != nil else { throw notAList } }
            var list = try decoder.unkeyedContainer()
            while !list.isAtEnd {
                let item = try list.nestedContainer(keyedBy: JSONKey.self)
                try item.refuseKeys(except: ["x", "series", "y", "log_x", "per"]) { _ in "unknown figure key; use x, series, y, log_x, per" }
                guard let x = try? item.decode(String.self, forKey: JSONKey("x")), let series = try? item.decode(String.self, forKey: JSONKey("series")) else {
                    throw Problem("figures", "each figure needs x and series")
                }
                // One measure, or a list of them drawn together (final and best test accuracy);
                // over the epochs, what metrics.csv has by epoch.
                let byEpoch = x == "epoch"
                let known = byEpoch ? SweepFigure.epochColumns : SweepFigure.yColumns
                let measures = (try? item.decode(String.self, forKey: JSONKey("y"))).map { [$0] }
                    ?? (try? item.decode([String].self, forKey: JSONKey("y"))) ?? (item.contains(JSONKey("y")) ? [] : ["error"])
                guard !measures.isEmpty, measures.allSatisfy({ known[$0] != nil }), Set(measures).count == measures.count else {
                    throw Problem("y", "one of \(known.keys.sorted().joined(separator: ", "))\(byEpoch ? " over the epochs" : ""), or a list of them without repeats")
                }
                var per: String?
                if item.contains(JSONKey("per")) {
                    guard byEpoch else { throw Problem("per", "a chart per value of an axis is for x epoch only") }
                    guard let axis = try? item.decode(String.self, forKey: JSONKey("per")) else { throw Problem("per", "must be an axis's name") }
                    per = dashed(axis)
                }
                figures.append(SweepFile.Figure(x: dashed(x), series: dashed(series), y: measures,
                                                logX: (try? item.decode(Bool.self, forKey: JSONKey("log_x"))) ?? false, per: per))
            }
        }
    }

    /// `quick`: the overrides of `--quick`. Its keys are always checked; the values only
    /// decoded for --quick.
    struct Quick: Decodable {
        var fixed: Settings?
        var axes: Axes?
        var expectedTime: String?
        var sharpness: Probe?

        init(from decoder: Decoder) throws {
            guard let c = try? decoder.container(keyedBy: JSONKey.self) else { throw Problem("quick", "must be an object") }
            try c.refuseKeys(except: ["fixed", "axes", "expected_time", "sharpness"]) { _ in "unknown key in quick; use fixed, axes, expected_time, sharpness" }
            guard (decoder.userInfo[SweepDocument.context] as? Context)?.quick == true else { return }
            fixed = try c.ifPresent(Settings.self, "fixed")
            axes = try c.ifPresent(Axes.self, "axes")
            expectedTime = try c.text("expected_time")
            sharpness = try c.ifPresent(Probe.self, "sharpness")
        }
    }
}

extension KeyedDecodingContainer where Key == JSONKey {
    /// The value of `key` when the object has it (`null` included).
    fileprivate func value(_ key: String) throws -> JSONValue? {
        contains(JSONKey(key)) ? try decode(JSONValue.self, forKey: JSONKey(key)) : nil
    }

    /// A string, when the object has `key`.
    fileprivate func text(_ key: String) throws -> String? {
        guard contains(JSONKey(key)) else { return nil }
        guard let s = try? decode(String.self, forKey: JSONKey(key)) else { throw SweepDocument.Problem(key, "must be a string") }
        return s
    }

    /// `type` decoded from `key` when the object has it (`null` too: the type refuses it).
    fileprivate func ifPresent<T: Decodable>(_ type: T.Type, _ key: String) throws -> T? {
        contains(JSONKey(key)) ? try decode(type, forKey: JSONKey(key)) : nil
    }

    /// Refuses the first key (in sorted order) that is not one of `known`.
    fileprivate func refuseKeys(except known: [String], _ why: ([String]) -> String) throws {
        for key in allKeys.map(\.stringValue).sorted() where !known.contains(key) { throw SweepDocument.Problem(key, why(known)) }
    }
}

extension DecodingError {
    /// The innermost object key the error is about (nil: the document itself).
    fileprivate var key: String? {
        let path: [CodingKey]
        switch self {
        case .typeMismatch(_, let c), .valueNotFound(_, let c), .dataCorrupted(let c): path = c.codingPath
        case .keyNotFound(let key, let c): path = c.codingPath + [key]
        @unknown default: path = []
        }
        return path.last { JSONPath.index($0) == nil }?.stringValue
    }
}
