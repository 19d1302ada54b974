import Foundation

/// What a sweep's cells give: each finished cell's `Result` (its result.json), summarized from
/// the cell's metrics.csv and config.json, and `results.csv`, a row per cell.
extension SweepRunner {
    /// One row of `results.csv`.
    public struct Result: Codable {
        public var cell: String
        public var settings: [String: String]
        public var finalTestAccuracy: Double
        public var bestTestAccuracy: Double
        /// The epoch (from 1) of the best test accuracy, the first when tied.
        public var bestTestEpoch: Int?
        /// The last epoch's accuracy of the training passes, on the labels trained on (the
        /// noisy ones under --label-noise: how much of the noise the network fits).
        public var finalTrainAccuracy: Double?
        public var finalTrainLoss: Double
        public var sharpness: Double?
        public var lambdaMax: Double?
        /// The SAM steps the run's schedule took (`--sam-from`, `--sam-every`; 0 for `--sam none`):
        /// with the steps, the cost in gradient passes.
        public var samSteps: Int?
        /// The training time: each epoch's examples at its measured rate (metrics.csv's
        /// images/s), summed, so that an epoch resumed mid-way counts whole even where its row's
        /// seconds are only the last process's part (checkpoints written before they kept the
        /// epoch so far). A pause of the processes counts too.
        public var trainSeconds: Double?
        /// The wall time of the cell's last run: training (or its resumed part) and the probe.
        public var seconds: Double
        /// When the cell's last run started and ended (Unix seconds; absent in older results).
        public var started: Double?
        public var ended: Double?
    }

    public func resultPath(_ cell: SweepFile.Cell) -> String { directory + "/" + cell.name + "/result.json" }

    /// The cell's result, when it has finished; a result.json written before samtrain recorded
    /// the train accuracy and the best epoch gets them from the cell's metrics.csv.
    public func finishedResult(_ cell: SweepFile.Cell) -> Result? {
        guard let data = FileManager.default.contents(atPath: resultPath(cell)),
              var result = try? JSONDecoder().decode(Result.self, from: data) else { return nil }
        if result.finalTrainAccuracy == nil || result.bestTestEpoch == nil || result.samSteps == nil || result.trainSeconds == nil,
           let epochs = try? summarize(cell: cell, directory: directory + "/" + cell.name, seconds: result.seconds) {
            result.finalTrainAccuracy = result.finalTrainAccuracy ?? epochs.finalTrainAccuracy
            result.bestTestEpoch = result.bestTestEpoch ?? epochs.bestTestEpoch
            result.samSteps = result.samSteps ?? epochs.samSteps
            result.trainSeconds = result.trainSeconds ?? epochs.trainSeconds
        }
        return result
    }

    /// `samtrain sweep --collect`: results.csv (in `resultsDirectory`) from every cell's
    /// result.json, once all are finished; otherwise an error naming the unfinished cells.
    public func collect() throws -> [Result] {
        let cells = sweep.cells
        let missing = cells.filter { finishedResult($0) == nil }
        if !missing.isEmpty {
            let names = missing.prefix(10).map { cell in
                let dir = directory + "/" + cell.name
                if let newest = CheckpointDirectory.list(dir).first { return "\(cell.name) (at \((newest as NSString).lastPathComponent))" }
                return cell.name + (FileManager.default.fileExists(atPath: dir) ? " (no checkpoint yet)" : " (not started)")
            }
            throw SAMTrainError("--collect: \(missing.count) of \(cells.count) cells in \(directory) are not finished: \(names.joined(separator: ", "))\(missing.count > 10 ? ", …" : ""); finish them by rerunning the sweep (or its --slurm array), then collect")
        }
        let results = cells.compactMap(finishedResult)
        try writeCSV(cells: cells, results: results)
        return results
    }

    /// Final and best test accuracy (and its epoch), the final train loss and accuracy and the
    /// training seconds, from the cell's metrics.csv (rank 0 writes a row per epoch); the SAM
    /// steps from its config.json's schedule and the last row's step.
    func summarize(cell: SweepFile.Cell, directory dir: String, seconds: Double) throws -> Result {
        let path = dir + "/metrics.csv"
        guard FileManager.default.fileExists(atPath: path) else { throw SAMTrainError("\(path): missing after a successful run") }
        let table = try CSVTable(path: path)
        let (epoch, step, trainLoss, trainAccuracy, testAccuracy, rate) = try (
            table.column("epoch", source: path), table.column("step", source: path), table.column("train_loss", source: path),
            table.column("train_acc", source: path), table.column("test_acc", source: path), table.column("images_per_s", source: path))
        guard let last = table.rows.last else { throw SAMTrainError("\(path): no epoch rows") }
        let best = table.rows.compactMap { row in Double(row[testAccuracy]).map { (row, $0) } }.max { $0.1 < $1.1 }
        let settings = Self.runSettings(config: dir + "/config.json")
        let steps = table.rows.map { Int($0[step]) }
        var trainSeconds: Double? = 0
        if let batch = settings?["batch_size"] as? Int {
            for (i, row) in table.rows.enumerated() {
                guard let end = steps[i], let begin = i == 0 ? 0 : steps[i - 1], let perSecond = Double(row[rate]), perSecond > 0 else {
                    trainSeconds = nil
                    break
                }
                trainSeconds? += Double((end - begin) * batch) / perSecond
            }
        } else {
            trainSeconds = nil
        }
        return Result(cell: cell.name, settings: Dictionary(cell.settings.map { ($0.key, $0.value) }) { _, b in b },
                      finalTestAccuracy: Double(last[testAccuracy]) ?? .nan, bestTestAccuracy: best?.1 ?? .nan,
                      bestTestEpoch: best.flatMap { Int($0.0[epoch]) }, finalTrainAccuracy: Double(last[trainAccuracy]),
                      finalTrainLoss: Double(last[trainLoss]) ?? .nan, sharpness: nil, lambdaMax: nil,
                      samSteps: steps.last.flatMap { $0 }.flatMap { total in settings.flatMap { Self.samSteps(settings: $0, totalSteps: total) } },
                      trainSeconds: trainSeconds, seconds: seconds)
    }

    /// The `settings` of a run's config.json (nil when it is missing or unreadable).
    static func runSettings(config path: String) -> [String: Any]? {
        guard let data = FileManager.default.contents(atPath: path),
              let json = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else { return nil }
        return json["settings"] as? [String: Any]
    }

    /// How many of the run's `totalSteps` steps were SAM steps, by the schedule its settings
    /// record (nil when a setting is missing).
    static func samSteps(settings: [String: Any], totalSteps: Int) -> Int? {
        guard let sam = settings["sam"] as? String else { return nil }
        if sam == "none" { return 0 }
        guard let every = settings["sam_every"] as? Int, let from = settings["sam_from"] as? Double else { return nil }
        let schedule = AscentSchedule(every: every, from: from)
        guard (try? schedule.validate()) != nil else { return nil }
        return schedule.ascentSteps(in: 0..<max(totalSteps, 0), totalSteps: totalSteps)
    }

    /// results.csv's columns after the settings, in order (the seconds last).
    public static let resultColumns = ["final_test_acc", "best_test_acc", "best_test_epoch", "final_train_acc", "final_train_loss",
                                       "m_sharpness", "lambda_max", "sam_steps", "train_seconds", "seconds"]

    /// `results.csv` in `resultsDirectory`: one row per finished cell (of `cells`, by name):
    /// a column per axis (its value or label), one per other setting any cell has, then results.
    func writeCSV(cells: [SweepFile.Cell], results: [Result]) throws {
        let axes = sweep.axes.map(\.key)
        var keys: [String] = []
        for cell in cells { for (key, _) in cell.settings where !axes.contains(key) && !keys.contains(key) { keys.append(key) } }
        let byName = Dictionary(cells.map { ($0.name, $0) }) { a, _ in a }
        var lines = [(["cell"] + axes + keys + Self.resultColumns).joined(separator: ",")]
        for r in results {
            let cell = byName[r.cell]
            let labels = axes.map { axis in cell?.labels.first { $0.axis == axis }?.label ?? r.settings[axis] ?? "" }
            let settings = keys.map { key in cell?.value(key) ?? r.settings[key] ?? "" }
            let numbers = [r.finalTestAccuracy, r.bestTestAccuracy].map { String(format: "%.4f", $0) } + [r.bestTestEpoch.map(String.init) ?? ""]
                + [r.finalTrainAccuracy.map { String(format: "%.4f", $0) } ?? "", String(format: "%.4f", r.finalTrainLoss)]
            let probes = [r.sharpness, r.lambdaMax].map { $0.map { String(format: "%.5g", $0) } ?? "" }
            let cost = [r.samSteps.map(String.init) ?? "", r.trainSeconds.map { String(format: "%.1f", $0) } ?? "", String(format: "%.1f", r.seconds)]
            let fields = ["\"\(r.cell)\""] + (labels + settings).map(CSVTable.field) + numbers + probes + cost
            lines.append(fields.joined(separator: ","))
        }
        let path = resultsDirectory + "/results.csv"
        do {
            try FileManager.default.createDirectory(atPath: resultsDirectory, withIntermediateDirectories: true)
            try (lines.joined(separator: "\n") + "\n").write(toFile: path, atomically: true, encoding: .utf8)
        } catch {
            throw SAMTrainError("\(path): cannot write the results: \(error.localizedDescription)")
        }
    }
}
