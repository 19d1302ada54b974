import Foundation

/// A sweep: a grid of training runs described in a small JSON file.
///
///     { "name": "m-rho", "description": "...", "expected_time": "≈ 9 h on 2 cores",
///       "ranks": 2,
///       "fixed": { "model": "cnn", "epochs": 10 },
///       "axes":  { "m": [1, 4, 16], "rho": [0.01, 0.05] },
///       "sharpness": { "subset": 500, "rho": 0.05, "m": 128 },
///       "quick": { "expected_time": "≈ 4 min", "fixed": { "epochs": 1, "train_subset": 2048 } } }
///
/// `fixed` and `axes` take `samtrain train` flags (`label_noise` or `label-noise`); every
/// cell of the grid is a normal training run. `quick` overrides for `--quick`.
public struct SweepFile: Sendable {
    public var name: String
    public var description: String
    public var expectedTime: String
    public var ranks: Int
    public var fixed: [(key: String, value: String)]
    /// The settings given as JSON true/false (flags).
    public var flags: Set<String> = []
    /// The file, and the line of each setting's key, for error messages.
    var source = ""
    var lines: [String: Int] = [:]
    public var axes: [(key: String, values: [String])]
    public var sharpness: (subset: Int, rho: Float, m: Int)?
    /// Figures drawn from results.csv when the sweep ends: (x, series, y, logX).
    public var figures: [(x: String, series: String, y: String, logX: Bool)] = []
    /// The paper's numbers that the grid reproduces (label → figure), printed beside it.
    public var published: [(key: String, value: String)] = []

    /// The largest grid a sweep may hold, and the most ranks per cell.
    public static let maximumCells = 1_000
    public static let maximumRanks = 4096
    /// The grid's size (checked against `maximumCells` when read).
    public private(set) var cellCount = 1

    /// JSON's true/false (Foundation bridges numbers to Bool too, so test the type).
    static func isBoolean(_ v: Any) -> Bool {
        type(of: v) == Bool.self || String(describing: type(of: v)).contains("Boolean")
    }

    /// One training run of the grid.
    public struct Cell: Sendable {
        public var name: String
        public var settings: [(key: String, value: String)]
        /// The keys whose values are JSON true/false: flags, given or left out.
        public var flags: Set<String> = []
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

    public var cells: [Cell] {
        var grid: [[(String, String)]] = [[]]
        for axis in axes {
            grid = grid.flatMap { partial in axis.values.map { partial + [(axis.key, $0)] } }
        }
        return grid.map { point in
            let name = point.isEmpty ? "run" : point.map { "\($0.0)=\($0.1)" }.joined(separator: ",")
            return Cell(name: name, settings: fixed.filter { f in !point.contains { $0.0 == f.key } } + point.map { ($0.0, $0.1) },
                        flags: flags)
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
        let text = String(decoding: data, as: UTF8.self)
        var flagKeys: Set<String> = []
        func line(of key: String) -> Int {
            guard let r = text.range(of: "\"\(key)\"") else { return 1 }
            return text[..<r.lowerBound].filter { $0 == "\n" }.count + 1
        }
        func fail(_ key: String, _ why: String) -> SAMTrainError { SAMTrainError("\(path):\(line(of: key)): \(key): \(why)") }
        guard let root = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] else {
            throw SAMTrainError("\(path): not a JSON object (sweep files are JSON)")
        }
        let known: Set<String> = ["name", "description", "expected_time", "ranks", "fixed", "axes", "sharpness", "quick", "figures", "published"]
        for key in root.keys.sorted() where !known.contains(key) {
            throw fail(key, "unknown key; the keys are \(known.sorted().joined(separator: ", "))")
        }
        func string(_ v: Any?, _ key: String) throws -> String? {
            guard let v else { return nil }
            guard let s = v as? String else { throw fail(key, "must be a string") }
            return s
        }
        /// A setting's value as `samtrain train` takes it on its command line.
        func value(_ v: Any, key: String) throws -> String {
            if SweepFile.isBoolean(v), let b = v as? Bool {
                flagKeys.insert(key.replacingOccurrences(of: "_", with: "-"))
                return b ? "true" : "false"
            }
            if let s = v as? String { return s }
            // As written: 16 stays "16", 0.05 and 1.0 stay decimals (cells' names are stable).
            if let n = v as? NSNumber, ["d", "f"].contains(String(cString: n.objCType)) {
                if n.doubleValue.isFinite { return "\(n.doubleValue)" }
            } else if v is NSNumber {
                guard let i = CheckedSize.integer(v, in: Int.min...Int.max) else { throw fail(key, "\(v) is not an integer within ±2⁶³") }
                return String(i)
            }
            throw fail(key, "must be a string, a finite number, or true/false for a flag; got \(v)")
        }
        func settings(_ v: Any?, _ where_: String) throws -> [(key: String, value: String)] {
            guard let v else { return [] }
            guard let map = v as? [String: Any] else { throw fail(where_, "must be an object of settings") }
            return try map.keys.sorted().map { k in (k.replacingOccurrences(of: "_", with: "-"), try value(map[k]!, key: k)) }
        }
        func axesOf(_ v: Any?) throws -> [(key: String, values: [String])] {
            guard let v else { return [] }
            guard let map = v as? [String: Any] else { throw fail("axes", "must be an object of lists") }
            // Axis order: as written in the file (the grid's nesting and the cells' names).
            let ordered = map.keys.sorted { line(of: $0) < line(of: $1) || (line(of: $0) == line(of: $1) && $0 < $1) }
            return try ordered.map { k in
                guard let list = map[k] as? [Any], !list.isEmpty else { throw fail(k, "an axis must be a non-empty list") }
                return (k.replacingOccurrences(of: "_", with: "-"), try list.map { try value($0, key: k) })
            }
        }

        name = try string(root["name"], "name") ?? (path as NSString).lastPathComponent
        description = try string(root["description"], "description") ?? ""
        expectedTime = try string(root["expected_time"], "expected_time") ?? "unknown"
        if let r = root["ranks"] {
            guard let i = CheckedSize.integer(r, in: 1...SweepFile.maximumRanks) else { throw fail("ranks", "must be an integer in 1…\(SweepFile.maximumRanks), got \(r)") }
            ranks = i
        } else {
            ranks = 2
        }
        fixed = try settings(root["fixed"], "fixed")
        axes = try axesOf(root["axes"])
        func probe(_ s: Any?) throws -> (subset: Int, rho: Float, m: Int)? {
            guard let s else { return nil }
            guard let map = s as? [String: Any] else { throw fail("sharpness", "must be an object with subset, rho, m") }
            for key in map.keys where !["subset", "rho", "m"].contains(key) { throw fail(key, "unknown sharpness setting; use subset, rho, m") }
            guard let subset = CheckedSize.integer(map["subset"], in: 1...Int(Int32.max)), let rho = map["rho"] as? Double, rho.isFinite,
                  let m = CheckedSize.integer(map["m"], in: 1...Int(Int32.max)), rho > 0 else {
                throw fail("sharpness", "needs positive subset (integer), rho (number) and m (integer)")
            }
            return (subset, Float(rho), m)
        }
        sharpness = try probe(root["sharpness"])
        if let p = root["published"] {
            guard let map = p as? [String: Any] else { throw fail("published", "must be an object of label: figure") }
            published = try map.keys.sorted().map { k in
                if let s = map[k] as? String { return (k, s) }
                if !SweepFile.isBoolean(map[k]!), let d = map[k] as? Double { return (k, "\(d)") }
                throw fail(k, "a published figure is a number or a string")
            }
        }
        if let f = root["figures"] {
            guard let list = f as? [[String: Any]] else { throw fail("figures", "must be a list of {x, series, y, log_x}") }
            figures = try list.map { item in
                for key in item.keys where !["x", "series", "y", "log_x"].contains(key) { throw fail(key, "unknown figure key; use x, series, y, log_x") }
                guard let x = item["x"] as? String, let series = item["series"] as? String else { throw fail("figures", "each figure needs x and series") }
                let y = item["y"] as? String ?? "error"
                guard SweepFigure.yColumns[y] != nil else { throw fail("y", "one of \(SweepFigure.yColumns.keys.sorted().joined(separator: ", "))") }
                return (x.replacingOccurrences(of: "_", with: "-"), series.replacingOccurrences(of: "_", with: "-"), y, item["log_x"] as? Bool ?? false)
            }
        }
        if let q = root["quick"] {
            guard let map = q as? [String: Any] else { throw fail("quick", "must be an object") }
            for key in map.keys where !["fixed", "axes", "expected_time", "sharpness"].contains(key) {
                throw fail(key, "unknown key in quick; use fixed, axes, expected_time, sharpness")
            }
            if quick {
                for (k, v) in try settings(map["fixed"], "fixed") {
                    fixed.removeAll { $0.key == k }
                    fixed.append((k, v))
                }
                for axis in try axesOf(map["axes"]) {
                    if let i = axes.firstIndex(where: { $0.key == axis.key }) { axes[i] = axis } else { axes.append(axis) }
                }
                expectedTime = try string(map["expected_time"], "expected_time") ?? expectedTime
                sharpness = try probe(map["sharpness"]) ?? sharpness
            }
        }
        if axes.isEmpty && root["axes"] == nil { throw fail("axes", "a sweep needs axes") }
        // Bounded before any cell is listed: the product of the axes' lengths.
        let sizes = axes.map(\.values.count)
        guard let count = CheckedSize.product(sizes, limit: SweepFile.maximumCells) else {
            throw fail("axes", "the grid has \(sizes.map(String.init).joined(separator: " × ")) cells, more than the \(SweepFile.maximumCells) a sweep may have")
        }
        cellCount = count
        flags = flagKeys
        source = path
        for key in fixed.map(\.key) + axes.map(\.key) {
            // The file may spell the key label_noise or label-noise.
            let underscored = line(of: key.replacingOccurrences(of: "-", with: "_"))
            lines[key] = underscored > 1 ? underscored : line(of: key)
        }
    }

    /// Points every cell at the user's copy of the dataset (`samtrain sweep --data DIR`).
    public mutating func overrideData(_ directory: String) {
        fixed.removeAll { $0.key == "data" }
        axes.removeAll { $0.key == "data" }
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
                let named = cell.settings.map(\.key).first { e.message.contains("--" + $0) }
                let place = named.flatMap { lines[$0] }.map { "\(source):\($0): " } ?? ""
                throw SAMTrainError("\(place)cell \(cell.name): \(e.message)")
            }
            // Each dataset directory is looked at once, however many cells use it.
            if checkedData.insert(c.data.dataset.rawValue + "\u{0}" + c.data.data).inserted {
                try c.data.dataset.checkFiles(directory: c.data.data)
            }
        }
    }
}
