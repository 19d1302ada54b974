import Foundation

/// Runs a sweep's cells, each a normal `samtrain train` under mpirun in its own directory,
/// one after another or `parallel` at a time. A finished cell has a `result.json`; an
/// unfinished one resumes from its newest checkpoint, so rerunning the same command finishes
/// only what is missing.
public struct SweepRunner: Sendable {
    public var sweep: SweepFile
    public var directory: String
    public var samtrain: String
    public var mpirun = "mpirun"
    /// Cells run at once (`samtrain sweep --parallel K`), each its own mpirun.
    public var parallel = 1
    /// Run only these cells (a Slurm array task runs one); nil: every cell.
    public var only: Set<String>?
    /// Where results.csv (and the sweep's figures) go; nil: `directory` (`samtrain sweep --results`).
    public var results: String?
    public var resultsDirectory: String { results ?? directory }
    public var log: @Sendable (String) -> Void = { print($0); fflush(nil) }

    public init(sweep: SweepFile, directory: String, samtrain: String) {
        self.sweep = sweep
        self.directory = directory
        self.samtrain = samtrain
    }

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
        /// images/s), summed, so that an epoch resumed mid-way counts whole (its row's seconds
        /// are only the last process's part). A pause of the processes counts too.
        public var trainSeconds: Double?
        /// The wall time of the cell's last run: training (or its resumed part) and the probe.
        public var seconds: Double
        /// When the cell's last run started and ended (Unix seconds; absent in older results).
        public var started: Double?
        public var ended: Double?
    }

    /// SIGINT or SIGTERM while a sweep runs: the running cells are stopped (their checkpoints
    /// stay) and `run` throws this, so that rerunning the command resumes where it was.
    public struct Interrupted: Error {
        public var signal: Int32
        /// The cells that were running (comma-separated).
        public var cell: String
        public var finished: Int
        public var total: Int
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

    /// Runs every unfinished cell (of `only`, when set); returns the results of those cells
    /// (finished earlier or now), in the grid's order, and the names of the cells that failed.
    /// Writes results.csv when it ran the whole grid. Throws `Interrupted` on SIGINT or SIGTERM.
    public func run() throws -> (results: [Result], failed: [String]) {
        try MetricsLog.makeDirectory(directory)
        let cells = sweep.cells.filter { only?.contains($0.name) ?? true }
        guard parallel >= 1 else { throw SAMTrainError("--parallel \(parallel): run at least 1 cell at a time") }
        let signals = Self.child.catchSignals()
        defer { Self.child.releaseSignals(signals) }
        let state = Progress(count: cells.count)
        let printer = NSLock()
        let say: @Sendable (String) -> Void = { [log] line in printer.withLock { log(line) } }
        // Workers take the next cell in the grid's order until none is left or a signal came.
        let workers = min(parallel, max(cells.count, 1))
        // Threads of their own: each spends its time waiting for an mpirun.
        let group = DispatchGroup()
        for _ in 0..<workers {
            group.enter()
            Thread {
                while Self.child.signal == nil, let i = state.next() {
                    let outcome: Outcome
                    do { outcome = try runCell(cells[i], label: "[\(i + 1)/\(cells.count)]", say: say) } catch { outcome = .error(error) }
                    state.finish(i, outcome)
                }
                group.leave()
            }.start()
        }
        group.wait()
        if let signal = Self.child.signal {
            let stopped = state.unfinished.map { cells[$0].name }
            throw Interrupted(signal: signal, cell: stopped.first.map { _ in stopped.joined(separator: ", ") } ?? "-",
                              finished: state.results.count, total: cells.count)
        }
        if let error = state.errors.first { throw error }
        let results = state.results.sorted { $0.key < $1.key }.map(\.value)
        if only == nil { try writeCSV(cells: cells, results: results) }
        return (results, state.failed.sorted { $0.key < $1.key }.map(\.value))
    }

    enum Outcome { case done(Result), failed(String), interrupted, error(Error) }

    /// Which cells are taken, and what became of them (shared by the workers).
    final class Progress: @unchecked Sendable {
        private let lock = NSLock()
        private var taken = 0
        private let count: Int
        private var running = Set<Int>()
        private(set) var results: [Int: Result] = [:]
        private(set) var failed: [Int: String] = [:]
        private(set) var errors: [Error] = []
        init(count: Int) { self.count = count }

        func next() -> Int? {
            lock.withLock {
                guard taken < count, errors.isEmpty else { return nil }
                taken += 1
                running.insert(taken - 1)
                return taken - 1
            }
        }

        func finish(_ i: Int, _ outcome: Outcome) {
            lock.withLock {
                switch outcome {
                case .done(let r): results[i] = r; running.remove(i)
                case .failed(let name): failed[i] = name; running.remove(i)
                case .interrupted: break   // still unfinished
                case .error(let e): errors.append(e); running.remove(i)
                }
            }
        }

        var unfinished: [Int] { lock.withLock { running.sorted() } }
    }

    /// One cell: skipped when finished, else trained (resuming from its checkpoints), probed
    /// for sharpness when the sweep asks, and its result.json written.
    func runCell(_ cell: SweepFile.Cell, label: String, say: (String) -> Void) throws -> Outcome {
        let dir = directory + "/" + cell.name
        if let r = finishedResult(cell) {
            say("\(label) \(cell.name): done before (test acc \(String(format: "%.4f", r.finalTestAccuracy)))")
            return .done(r)
        }
        try MetricsLog.makeDirectory(dir)
        let resuming = !CheckpointDirectory.list(dir).isEmpty
        say("\(label) \(cell.name): \(resuming ? "resuming" : "starting")")
        let start = Date()
        let status = try launch(["train"] + Self.trainArguments(cell, directory: dir, resuming: resuming), output: dir + "/train.log")
        if Self.child.signal != nil { return .interrupted }
        guard status == 0 else {
            say("\(label) \(cell.name): FAILED (exit \(status)); see \(dir)/train.log")
            return .failed(cell.name)
        }
        var result = try summarize(cell: cell, directory: dir, seconds: Date().timeIntervalSince(start))
        if let s = sweep.sharpness, let checkpoint = CheckpointDirectory.list(dir).first {
            let out = dir + "/sharpness.json"
            if try launch(["sharpness", "--checkpoint", checkpoint, "--subset", "\(s.subset)", "--rho", "\(s.rho)", "--m", "\(s.m)",
                           "--line-points", "0", "--json"], output: out) == 0,
               let data = FileManager.default.contents(atPath: out),
               let json = try? JSONSerialization.jsonObject(with: data) as? [String: Any] {
                result.lambdaMax = json["lambda_max"] as? Double
                result.sharpness = (json["m_sharpness"] as? [String: Any])?["value"] as? Double
            }
        }
        if Self.child.signal != nil { return .interrupted }
        let end = Date()
        result.seconds = end.timeIntervalSince(start)
        result.started = start.timeIntervalSince1970
        result.ended = end.timeIntervalSince1970
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        try encoder.encode(result).write(to: URL(fileURLWithPath: resultPath(cell)), options: .atomic)
        say("\(label) \(cell.name): test acc \(String(format: "%.4f", result.finalTestAccuracy)) in \(Int(result.seconds)) s")
        return .done(result)
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

    /// The `samtrain train` arguments of a cell run in `directory` (what `validate` parses).
    public static func trainArguments(_ cell: SweepFile.Cell, directory: String, resuming: Bool) -> [String] {
        // Each cell's TensorBoard file in its own directory: `tensorboard --logdir SWEEPDIR`
        // shows the cells as runs side by side.
        var args = cell.arguments + ["--out", directory, "--tensorboard", directory, "--log-every", "100000"]
        if cell.value("checkpoint-every") == nil { args += ["--checkpoint-every", "1epoch"] }
        if resuming { args += ["--resume", directory] }
        return args
    }

    /// `mpirun -np R samtrain ARGS`, output to a file; returns the exit status.
    func launch(_ arguments: [String], output: String) throws -> Int32 {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        var mpi = [mpirun, "-q", "-np", "\(sweep.ranks)", "--bind-to", "none"]
        if sweep.ranks > ProcessInfo.processInfo.activeProcessorCount { mpi.append("--oversubscribe") }
        process.arguments = mpi + [samtrain] + arguments
        var env = ProcessInfo.processInfo.environment
        if geteuid() == 0 { env["OMPI_ALLOW_RUN_AS_ROOT"] = "1"; env["OMPI_ALLOW_RUN_AS_ROOT_CONFIRM"] = "1" }
        env["OPENBLAS_NUM_THREADS"] = env["OPENBLAS_NUM_THREADS"] ?? "1"
        process.environment = env
        guard FileManager.default.createFile(atPath: output, contents: nil) else {
            throw SAMTrainError("\(output): cannot create the file")
        }
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: output))
        defer { try? handle.close() }
        process.standardOutput = handle
        process.standardError = handle
        process.standardInput = FileHandle.nullDevice
        try Self.child.run(process)
        return process.terminationStatus
    }

    /// The child processes (mpirun, one per running cell) a sweep waits for, and the signal
    /// that interrupted it.
    static let child = ChildProcess()

    final class ChildProcess: @unchecked Sendable {
        private let lock = NSLock()
        private var processes: [ObjectIdentifier: Process] = [:]
        private var received: Int32?

        var signal: Int32? { lock.withLock { received } }

        /// Runs `process` to its end; a signal caught meanwhile stops it: mpirun gets SIGUSR2,
        /// which it passes on to the ranks at once, and a training cell stops after its next
        /// step with a checkpoint of it (`StopRequest`).
        func run(_ process: Process) throws {
            let started = try lock.withLock { () -> Bool in
                guard received == nil else { return false }   // interrupted before the start
                try process.run()
                processes[ObjectIdentifier(process)] = process
                return true
            }
            guard started else { return }
            process.waitUntilExit()
            _ = lock.withLock { processes.removeValue(forKey: ObjectIdentifier(process)) }
        }

        /// SIGINT and SIGTERM are handled (not fatal) until the returned sources are cancelled.
        func catchSignals() -> [DispatchSourceSignal] {
            lock.withLock { received = nil }
            return [SIGINT, SIGTERM].map { number in
                Foundation.signal(number, SIG_IGN)
                let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
                source.setEventHandler { [self] in
                    lock.withLock {
                        if received == nil { received = number }
                        for process in processes.values where process.isRunning { kill(process.processIdentifier, SIGUSR2) }
                    }
                }
                source.resume()
                return source
            }
        }

        func releaseSignals(_ sources: [DispatchSourceSignal]) {
            sources.forEach { $0.cancel() }
            for number in [SIGINT, SIGTERM] { Foundation.signal(number, SIG_DFL) }
        }
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
        return (0..<max(totalSteps, 0)).reduce(0) { $0 + (schedule.runsAscent(step: $1, totalSteps: totalSteps) ? 1 : 0) }
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
