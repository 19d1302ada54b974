import ArgumentParser
import Foundation
import SAMTrain

struct PlotCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "plot",
        abstract: "Draw figures (SVG and PNG, with gnuplot) from sweep results, training metrics or sharpness spectra.",
        discussion: """
        sweep:    results.csv → y against --x, one line per --series (e.g. test error vs rho per m)
        curves:   metrics.csv files → test accuracy and train loss per epoch, one line per run
        spectrum: sharpness --json files → Hessian eigenvalues by rank, one line per checkpoint
        """
    )

    enum Kind: String, ExpressibleByArgument { case sweep, curves, spectrum }

    @Argument(help: "sweep, curves or spectrum.")
    var kind: Kind

    @Argument(help: "Input files.")
    var inputs: [String]

    @Option(help: "Output file name without extension.")
    var out: String

    @Option(help: "sweep: the x column (e.g. rho, label-noise; a column of labels, such as a bundle axis's, is drawn as categories).")
    var x: String = "rho"

    @Option(help: "sweep: the column whose values make the lines (e.g. m, sam).")
    var series: String = "m"

    @Option(help: "sweep: error (1 − final test accuracy), accuracy, best, train_accuracy, train_loss, sharpness, lambda or seconds; several, comma-separated, share one chart (accuracy,best).")
    var y: String = "error"

    @Flag(help: "Logarithmic x axis.")
    var logX = false

    @Option(help: "Title (default: the input's directory name).")
    var title: String?

    func run() throws {
        do {
            let files: [String]
            switch kind {
            case .sweep:
                var chart = try SweepFigure.chart(results: inputs, x: x, series: series, y: y.split(separator: ",").map(String.init), logX: logX)
                chart.title = title ?? chart.title
                files = try chart.render(to: out)
            case .curves: files = try curves()
            case .spectrum:
                var chart = try spectrum()
                chart.title = title ?? chart.title
                files = try chart.render(to: out)
            }
            for f in files { print(f) }
        } catch let e as SAMTrainError {
            FileHandle.standardError.write(Data("samtrain: error: \(e.message)\n".utf8))
            throw ExitCode(1)
        }
    }

    func curves() throws -> [String] {
        var accuracy = LineChart(title: "test accuracy", xLabel: "epoch", yLabel: "test accuracy")
        var loss = LineChart(title: "train loss", xLabel: "epoch", yLabel: "train loss")
        for path in inputs {
            let table = try CSVTable(path: path)
            let (e, a, l) = (try table.column("epoch", source: path), try table.column("test_acc", source: path), try table.column("train_loss", source: path))
            let name = seriesName(path)
            accuracy.series.append((name, table.rows.compactMap { r in Double(r[e]).flatMap { x in Double(r[a]).map { (x: x, y: $0) } } }))
            loss.series.append((name, table.rows.compactMap { r in Double(r[e]).flatMap { x in Double(r[l]).map { (x: x, y: $0) } } }))
        }
        return try accuracy.render(to: out + "-test-accuracy") + loss.render(to: out + "-train-loss")
    }

    func spectrum() throws -> LineChart {
        var chart = LineChart(title: "Hessian spectrum", xLabel: "eigenvalue rank", yLabel: "eigenvalue")
        for path in inputs {
            guard let data = FileManager.default.contents(atPath: path),
                  let json = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
                  let values = json["top_eigenvalues"] as? [Double] else {
                throw SAMTrainError("\(path): not the JSON of samtrain sharpness --json")
            }
            chart.series.append((seriesName(path), values.enumerated().map { (x: Double($0.offset + 1), y: $0.element) }))
        }
        return chart
    }

    /// A line's name: the file's directory (runs/sgd/metrics.csv, runs/sam/metrics.csv), or
    /// the file's own name when inputs share a directory (sharpness/sgd.json, sharpness/sam.json).
    func seriesName(_ path: String) -> String {
        let directory = { (p: String) in (p as NSString).deletingLastPathComponent.split(separator: "/").last.map(String.init) ?? p }
        if Set(inputs.map(directory)).count == inputs.count { return directory(path) }
        return ((path as NSString).lastPathComponent as NSString).deletingPathExtension
    }
}
