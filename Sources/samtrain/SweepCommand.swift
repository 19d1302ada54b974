import ArgumentParser
import Foundation
import SAMTrain

struct SweepCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sweep",
        abstract: "Run a grid of training runs from a sweep file; rerunning finishes only the missing cells.",
        discussion: "Run it without mpirun: each cell is started under mpirun with the file's rank count. --slurm submits the unfinished cells as a Slurm job array instead; --collect then writes results.csv. An axis's value is one setting or a bundle of settings with an optional label (README, \"Studies\"). results.csv has a column per axis (the value or label), one per other setting, then final and best test accuracy, the best epoch, final train accuracy (on the labels trained on) and loss, m-sharpness, lambda_max and the cost: the SAM steps, the training seconds (a resumed epoch counted whole) and the wall seconds of the last run."
    )

    @Argument(help: "The sweep file (JSON; see sweeps/).")
    var file: String

    @Flag(help: "Use the file's quick settings (a few minutes).")
    var quick = false

    @Option(help: "Output directory (default runs/<sweep name>[-quick]).")
    var out: String?

    @Option(help: "Directory of the dataset's files for every cell (the sweep file's data otherwise; CIFAR sweeps need it).")
    var data: String?

    @Flag(help: "List the cells and exit (with --slurm: also print the array's batch script, submit nothing).")
    var dryRun = false

    @Option(help: ArgumentHelp("Run K cells at once, each its own mpirun (one big node, or a one-node allocation; --slurm spreads cells over nodes).", valueName: "K"))
    var parallel: Int = 1

    @Flag(help: "Write results.csv and the figures from the finished cells; an error names the unfinished ones.")
    var collect = false

    @Option(help: ArgumentHelp("Write results.csv and the figures into DIR (created when missing) instead of the --out directory, e.g. docs/studies/<name>.", valueName: "DIR"))
    var results: String?

    @Option(help: ArgumentHelp("Run only this cell (what each task of a --slurm array runs).", valueName: "NAME"))
    var cell: String?

    @Flag(help: "Submit the unfinished cells as a Slurm job array (one task per cell); options after it that samtrain does not know go to sbatch.")
    var slurm = false

    @Argument(parsing: .allUnrecognized, help: .hidden)
    var sbatchOptions: [String] = []

    func validate() throws {
        guard parallel >= 1 else { throw ValidationError("--parallel \(parallel): run at least 1 cell at a time") }
        if !sbatchOptions.isEmpty && !slurm {
            throw ValidationError("unknown argument(s) \(sbatchOptions.joined(separator: " ")) (sbatch options go with --slurm)")
        }
        let modes = [slurm ? "--slurm" : nil, collect ? "--collect" : nil, cell != nil ? "--cell" : nil].compactMap { $0 }
        if modes.count > 1 { throw ValidationError("\(modes.joined(separator: " and ")) do not go together") }
        if parallel > 1, let mode = modes.first { throw ValidationError("--parallel does not go with \(mode)") }
        if results != nil && cell != nil { throw ValidationError("--results does not go with --cell (one cell writes no results.csv; --collect does)") }
    }

    func run() throws {
        do {
            var sweep = try SweepFile(path: file, quick: quick)
            if let data { sweep.overrideData(data) }
            let cells = sweep.cells
            let directory = out ?? "runs/\(sweep.name)\(quick ? "-quick" : "")"
            if let cell, !cells.contains(where: { $0.name == cell }) {
                throw SAMTrainError("--cell \(cell): no such cell in \(file); the cells are \(cells.prefix(20).map(\.name).joined(separator: ", "))\(cells.count > 20 ? ", …" : "")")
            }
            print("sweep \(sweep.name)\(quick ? " (quick)" : ""): \(cells.count) cells × \(sweep.ranks) ranks; expected time \(sweep.expectedTime)")
            fflush(nil)
            try sweep.validate()   // every cell parsed by TrainCommand itself, before any starts
            if !sweep.published.isEmpty && cell == nil {
                print("published: " + sweep.published.map { "\($0.key) \($0.value)" }.joined(separator: "; "))
            }
            let binary = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath().path
            var runner = SweepRunner(sweep: sweep, directory: directory, samtrain: binary)
            runner.parallel = parallel
            runner.results = results
            if slurm { return try submit(sweep, runner: runner) }
            if dryRun {
                for c in cells { print("  \(c.name): samtrain " + (["train"] + c.arguments).joined(separator: " ")) }
                return
            }
            if collect {
                report(try runner.collect(), sweep: sweep, runner: runner)
                return
            }
            if let cell { runner.only = [cell] }
            let (finished, failed) = try runner.run()
            if cell == nil { report(finished, sweep: sweep, runner: runner) }
            if !failed.isEmpty { throw SAMTrainError("\(failed.count) cell(s) failed: \(failed.joined(separator: "; "))") }
        } catch let e as SweepRunner.Interrupted {
            let name = e.signal == SIGINT ? "SIGINT" : "SIGTERM"
            FileHandle.standardError.write(Data("samtrain: sweep interrupted by \(name) at cell \(e.cell) (\(e.finished) of \(e.total) cells finished); rerun the same command to finish it\n".utf8))
            throw ExitCode(128 + e.signal)
        } catch let e as SAMTrainError {
            FileHandle.standardError.write(Data("samtrain: error: \(e.message)\n".utf8))
            throw ExitCode(1)
        }
    }

    /// The table, results.csv's path and the sweep's figures (beside results.csv).
    func report(_ finished: [SweepRunner.Result], sweep: SweepFile, runner: SweepRunner) {
        let directory = runner.resultsDirectory
        print("")
        print(SweepCommand.table(finished, cells: sweep.cells, axes: sweep.axes.map(\.key)))
        print("results: \(directory)/results.csv")
        for f in sweep.figures {
            do {
                let charts = f.byEpoch
                    ? try SweepFigure.epochCharts(f, cells: sweep.cells, directory: runner.directory, title: sweep.name)
                    : [(f.name, try SweepFigure.chart(results: [directory + "/results.csv"], x: f.x, series: f.series, y: f.y, logX: f.logX))]
                for (name, chart) in charts {
                    print("figure: " + (try chart.render(to: "\(directory)/\(name)")).joined(separator: ", "))
                }
            } catch {
                print("figure not drawn: \((error as? SAMTrainError)?.message ?? "\(error)")")
            }
        }
    }

    /// --slurm: the unfinished cells as one job array; collects at once when none is left.
    func submit(_ sweep: SweepFile, runner: SweepRunner) throws {
        let unfinished = sweep.cells.filter { runner.finishedResult($0) == nil }
        if unfinished.isEmpty && !dryRun {
            print("all \(sweep.cells.count) cells are finished")
            report(try runner.collect(), sweep: sweep, runner: runner)
            return
        }
        // Absolute paths: the tasks start in sbatch's working directory on another node.
        func absolute(_ path: String) -> String { URL(fileURLWithPath: path).standardizedFileURL.path }
        let directory = absolute(runner.directory)
        var arguments = [absolute(file), "--out", directory]
        if quick { arguments.append("--quick") }
        if let data { arguments += ["--data", absolute(data)] }
        let array = SlurmArray(sweep: sweep, samtrain: runner.samtrain, sweepArguments: arguments, directory: directory, cells: unfinished)
        if dryRun {
            print("sbatch --parsable \((sbatchOptions + [directory + "/slurm/array-<time>.sbatch"]).joined(separator: " "))")
            print(array.script, terminator: "")
            return
        }
        let (job, script) = try array.submit(options: sbatchOptions)
        print("submitted \(unfinished.count) of \(sweep.cells.count) cells as Slurm array job \(job) (\(script)); logs \(directory)/slurm/\(job)_<task>.out")
        print("when it has ended: samtrain sweep \(file)\(quick ? " --quick" : "") --out \(runner.directory) --collect\(results.map { " --results \($0)" } ?? "")")
    }

    static func table(_ results: [SweepRunner.Result], cells: [SweepFile.Cell], axes: [String]) -> String {
        let header = axes + ["test acc", "best (epoch)", "train acc", "train loss", "m-sharp", "λ_max", "s"]
        let labels = Dictionary(cells.map { ($0.name, $0.labels) }) { a, _ in a }
        var rows = [header]
        for r in results {
            let cellLabels = labels[r.cell] ?? []
            let values: [String] = axes.map { axis in cellLabels.first { $0.axis == axis }?.label ?? r.settings[axis] ?? "" }
            let best: String = String(format: "%.4f", r.bestTestAccuracy) + (r.bestTestEpoch.map { " (\($0))" } ?? "")
            let train: [String] = [r.finalTrainAccuracy.map { String(format: "%.4f", $0) } ?? "-", String(format: "%.4f", r.finalTrainLoss)]
            let probes: [String] = [r.sharpness.map { String(format: "%.4f", $0) } ?? "-", r.lambdaMax.map { String(format: "%.2f", $0) } ?? "-"]
            rows.append(values + [String(format: "%.4f", r.finalTestAccuracy), best] + train + probes + [String(format: "%.0f", r.seconds)])
        }
        let widths = header.indices.map { c in rows.map { $0[c].count }.max()! }
        return rows.map { row in row.indices.map { row[$0].padding(toLength: widths[$0], withPad: " ", startingAt: 0) }.joined(separator: "  ") }
            .joined(separator: "\n")
    }
}

extension SweepFile {
    /// Validates every cell with `samtrain train`'s own parser (`SweepFile.validate(parse:)`).
    func validate() throws { try validate(parse: TrainCommand.configuration(arguments:)) }
}
