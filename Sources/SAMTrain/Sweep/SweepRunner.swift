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

    /// SIGINT or SIGTERM while a sweep runs: the running cells are stopped (their checkpoints
    /// stay) and `run` throws this, so that rerunning the command resumes where it was.
    public struct Interrupted: Error {
        public var signal: Int32
        /// The cells that were running (comma-separated).
        public var cell: String
        public var finished: Int
        public var total: Int
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
}
