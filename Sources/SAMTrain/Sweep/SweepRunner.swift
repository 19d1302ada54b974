import Foundation

/// Runs a sweep's cells one after another, each a normal `samtrain train` under mpirun in
/// its own directory. A finished cell has a `result.json`; an unfinished one resumes from
/// its newest checkpoint, so rerunning the same command finishes only what is missing.
public struct SweepRunner {
    public var sweep: SweepFile
    public var directory: String
    public var samtrain: String
    public var mpirun = "mpirun"
    public var log: (String) -> Void = { print($0); fflush(stdout) }

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
        public var finalTrainLoss: Double
        public var sharpness: Double?
        public var lambdaMax: Double?
        public var seconds: Double
    }

    /// SIGINT or SIGTERM while a sweep runs: the running cell is stopped (its checkpoints
    /// stay) and `run` throws this, so that rerunning the command resumes where it was.
    public struct Interrupted: Error {
        public var signal: Int32
        public var cell: String
        public var finished: Int
        public var total: Int
    }

    /// Runs every unfinished cell; returns the results of all cells (finished earlier or now)
    /// and the names of the cells that failed. Throws `Interrupted` on SIGINT or SIGTERM.
    public func run() throws -> (results: [Result], failed: [String]) {
        try MetricsLog.makeDirectory(directory)
        var results: [Result] = [], failed: [String] = []
        let cells = sweep.cells
        let signals = Self.child.catchSignals()
        defer { Self.child.releaseSignals(signals) }
        for (i, cell) in cells.enumerated() {
            try stopIfInterrupted(at: cell.name, finished: results.count, total: cells.count)
            let dir = directory + "/" + cell.name
            let resultPath = dir + "/result.json"
            if let data = FileManager.default.contents(atPath: resultPath), let r = try? JSONDecoder().decode(Result.self, from: data) {
                log("[\(i + 1)/\(cells.count)] \(cell.name): done before (test acc \(String(format: "%.4f", r.finalTestAccuracy)))")
                results.append(r)
                continue
            }
            try MetricsLog.makeDirectory(dir)
            let resuming = !CheckpointDirectory.list(dir).isEmpty
            log("[\(i + 1)/\(cells.count)] \(cell.name): \(resuming ? "resuming" : "starting")")
            let start = Date()
            let status = try launch(["train"] + Self.trainArguments(cell, directory: dir, resuming: resuming), output: dir + "/train.log")
            try stopIfInterrupted(at: cell.name, finished: results.count, total: cells.count)
            guard status == 0 else {
                log("[\(i + 1)/\(cells.count)] \(cell.name): FAILED (exit \(status)); see \(dir)/train.log")
                failed.append(cell.name)
                continue
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
            try stopIfInterrupted(at: cell.name, finished: results.count, total: cells.count)
            result.seconds = Date().timeIntervalSince(start)
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            try encoder.encode(result).write(to: URL(fileURLWithPath: resultPath), options: .atomic)
            log("[\(i + 1)/\(cells.count)] \(cell.name): test acc \(String(format: "%.4f", result.finalTestAccuracy)) in \(Int(result.seconds)) s")
            results.append(result)
        }
        try writeCSV(results)
        return (results, failed)
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

    func stopIfInterrupted(at cell: String, finished: Int, total: Int) throws {
        if let signal = Self.child.signal { throw Interrupted(signal: signal, cell: cell, finished: finished, total: total) }
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

    /// The one child process (mpirun) a sweep waits for, and the signal that interrupted it.
    static let child = ChildProcess()

    final class ChildProcess: @unchecked Sendable {
        private let lock = NSLock()
        private var process: Process?
        private var received: Int32?

        var signal: Int32? { lock.withLock { received } }

        /// Runs `process` to its end; a signal caught meanwhile stops it: mpirun gets SIGUSR2,
        /// which it passes on to the ranks at once, and a training cell stops after its next
        /// step with a checkpoint of it (`StopRequest`).
        func run(_ process: Process) throws {
            let started = try lock.withLock { () -> Bool in
                guard received == nil else { return false }   // interrupted before the start
                try process.run()
                self.process = process
                return true
            }
            guard started else { return }
            process.waitUntilExit()
            lock.withLock { self.process = nil }
        }

        /// SIGINT and SIGTERM are handled (not fatal) until the returned sources are cancelled.
        func catchSignals() -> [DispatchSourceSignal] {
            [SIGINT, SIGTERM].map { number in
                Foundation.signal(number, SIG_IGN)
                let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
                source.setEventHandler { [self] in
                    lock.withLock {
                        if received == nil { received = number }
                        if let process, process.isRunning { kill(process.processIdentifier, SIGUSR2) }
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

    /// Final and best test accuracy and the final train loss, from the cell's metrics.csv.
    func summarize(cell: SweepFile.Cell, directory dir: String, seconds: Double) throws -> Result {
        guard let text = try? String(contentsOfFile: dir + "/metrics.csv", encoding: .utf8) else {
            throw SAMTrainError("\(dir)/metrics.csv: missing after a successful run")
        }
        let rows = text.split(separator: "\n").dropFirst().map { $0.split(separator: ",").map(String.init) }
        guard let last = rows.last, last.count >= 6 else { throw SAMTrainError("\(dir)/metrics.csv: no epoch rows") }
        let accuracies = rows.compactMap { Double($0[5]) }
        return Result(cell: cell.name, settings: Dictionary(cell.settings.map { ($0.key, $0.value) }) { _, b in b },
                      finalTestAccuracy: Double(last[5]) ?? .nan, bestTestAccuracy: accuracies.max() ?? .nan,
                      finalTrainLoss: Double(last[2]) ?? .nan, sharpness: nil, lambdaMax: nil, seconds: seconds)
    }

    /// `results.csv`: one row per finished cell, its settings (the axes first), then results.
    func writeCSV(_ results: [Result]) throws {
        let keys = sweep.axes.map(\.key) + sweep.fixed.map(\.key).filter { k in !sweep.axes.contains { $0.key == k } }
        var lines = [(["cell"] + keys + ["final_test_acc", "best_test_acc", "final_train_loss", "m_sharpness", "lambda_max", "seconds"]).joined(separator: ",")]
        for r in results {
            let settings = keys.map { r.settings[$0] ?? "" }
            let numbers = [r.finalTestAccuracy, r.bestTestAccuracy, r.finalTrainLoss].map { String(format: "%.4f", $0) }
            let probes = [r.sharpness, r.lambdaMax].map { $0.map { String(format: "%.5g", $0) } ?? "" }
            lines.append((["\"\(r.cell)\""] + settings + numbers + probes + [String(format: "%.1f", r.seconds)]).joined(separator: ","))
        }
        try (lines.joined(separator: "\n") + "\n").write(toFile: directory + "/results.csv", atomically: true, encoding: .utf8)
    }
}
