import ArgumentParser
import Foundation
import SAMTrain

struct SweepCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sweep",
        abstract: "Run a grid of training runs from a sweep file; rerunning finishes only the missing cells.",
        discussion: "Run it without mpirun: each cell is started under mpirun with the file's rank count."
    )

    @Argument(help: "The sweep file (JSON; see sweeps/).")
    var file: String

    @Flag(help: "Use the file's quick settings (a few minutes).")
    var quick = false

    @Option(help: "Output directory (default runs/<sweep name>[-quick]).")
    var out: String?

    @Option(help: "Directory of the dataset's files for every cell (the sweep file's data otherwise; CIFAR sweeps need it).")
    var data: String?

    @Flag(help: "List the cells and exit.")
    var dryRun = false

    func run() throws {
        do {
            var sweep = try SweepFile(path: file, quick: quick)
            if let data { sweep.overrideData(data) }
            let cells = sweep.cells
            print("sweep \(sweep.name)\(quick ? " (quick)" : ""): \(cells.count) cells × \(sweep.ranks) ranks; expected time \(sweep.expectedTime)")
            fflush(stdout)
            try sweep.validate()   // every cell parsed by TrainCommand itself, before any starts
            if !sweep.published.isEmpty {
                print("published: " + sweep.published.map { "\($0.key) \($0.value)" }.joined(separator: "; "))
            }
            if dryRun {
                for c in cells { print("  \(c.name): samtrain " + (["train"] + c.arguments).joined(separator: " ")) }
                return
            }
            let binary = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath().path
            let runner = SweepRunner(sweep: sweep, directory: out ?? "runs/\(sweep.name)\(quick ? "-quick" : "")", samtrain: binary)
            let (results, failed) = try runner.run()
            print("")
            print(SweepCommand.table(results, axes: sweep.axes.map(\.key)))
            print("results: \(runner.directory)/results.csv")
            for f in sweep.figures {
                let base = "\(runner.directory)/\(f.y)-vs-\(f.x)-per-\(f.series)"
                do {
                    let files = try SweepFigure.chart(results: [runner.directory + "/results.csv"], x: f.x, series: f.series, y: f.y, logX: f.logX).render(to: base)
                    print("figure: " + files.joined(separator: ", "))
                } catch let e as SAMTrainError {
                    print("figure not drawn: \(e.message)")
                }
            }
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

    static func table(_ results: [SweepRunner.Result], axes: [String]) -> String {
        let header = axes + ["test acc", "best", "train loss", "m-sharp", "λ_max", "s"]
        var rows = [header]
        for r in results {
            rows.append(axes.map { r.settings[$0] ?? "" } + [String(format: "%.4f", r.finalTestAccuracy), String(format: "%.4f", r.bestTestAccuracy),
                        String(format: "%.4f", r.finalTrainLoss), r.sharpness.map { String(format: "%.4f", $0) } ?? "-",
                        r.lambdaMax.map { String(format: "%.2f", $0) } ?? "-", String(format: "%.0f", r.seconds)])
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
