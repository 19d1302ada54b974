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

    /// Runs every unfinished cell; returns the results of all cells (finished earlier or now)
    /// and the names of the cells that failed.
    public func run() throws -> (results: [Result], failed: [String]) {
        try MetricsLog.makeDirectory(directory)
        var results: [Result] = [], failed: [String] = []
        let cells = sweep.cells
        for (i, cell) in cells.enumerated() {
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
            var args = ["train"] + cell.arguments + ["--out", dir, "--log-every", "100000"]
            if cell.value("checkpoint-every") == nil { args += ["--checkpoint-every", "1epoch"] }
            if resuming { args += ["--resume", dir] }
            let status = try launch(args, output: dir + "/train.log")
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
        FileManager.default.createFile(atPath: output, contents: nil)
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: output))
        defer { try? handle.close() }
        process.standardOutput = handle
        process.standardError = handle
        process.standardInput = FileHandle.nullDevice
        try process.run()
        process.waitUntilExit()
        return process.terminationStatus
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
