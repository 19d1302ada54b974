import Foundation

/// A sweep's results as a chart: y (test error, accuracy, sharpness, λ_max, …) against one
/// axis, one line per value of another (test error vs ρ per m; accuracy vs noise per variant).
/// An x whose values are not all numbers (a bundle axis's labels) is drawn as categories in
/// the order results.csv first gives them, which is the sweep file's order.
public enum SweepFigure {
    public static let yColumns = ["error": "final_test_acc", "accuracy": "final_test_acc", "best": "best_test_acc",
                                  "train_accuracy": "final_train_acc", "train_loss": "final_train_loss",
                                  "sharpness": "m_sharpness", "lambda": "lambda_max",
                                  "sam_steps": "sam_steps", "train_seconds": "train_seconds", "seconds": "seconds"]
    /// What a figure over the epochs may draw (x `epoch`), by metrics.csv's column.
    public static let epochColumns = ["error": "test_acc", "accuracy": "test_acc", "train_accuracy": "train_acc",
                                      "train_loss": "train_loss", "test_loss": "test_loss"]
    /// A measure's name in a legend beside other measures (the y label says the rest).
    static let shortLabels = ["accuracy": "final test", "best": "best test", "train_accuracy": "final train", "error": "test error"]
    static let yLabels = ["error": "test error", "accuracy": "test accuracy", "best": "best test accuracy",
                          "train_accuracy": "train accuracy (labels trained on)", "train_loss": "final train loss",
                          "sharpness": "m-sharpness", "lambda": "Hessian λ_max",
                          "sam_steps": "SAM steps", "train_seconds": "training seconds (the epochs')", "seconds": "seconds of the cell's last run"]

    public static func chart(results paths: [String], x: String, series: String, y: String, logX: Bool) throws -> LineChart {
        try chart(results: paths, x: x, series: series, y: [y], logX: logX)
    }

    /// Several measures share the chart: a line per series and measure, the series' colour
    /// and the measure's dash.
    public static func chart(results paths: [String], x: String, series: String, y measures: [String], logX: Bool) throws -> LineChart {
        guard !measures.isEmpty else { throw SAMTrainError("--y: give at least one of \(yColumns.keys.sorted().joined(separator: ", "))") }
        for y in measures where yColumns[y] == nil {
            throw SAMTrainError("--y \(y): choose one of \(yColumns.keys.sorted().joined(separator: ", "))")
        }
        let yLabel = measures.count == 1 ? yLabels[measures[0]] ?? measures[0]
            : measures.allSatisfy({ ["accuracy", "best", "train_accuracy"].contains($0) })
                ? "accuracy" + (measures.contains("train_accuracy") ? " (train: on the labels trained on)" : "")
                : measures.map { yLabels[$0] ?? $0 }.joined(separator: " / ")
        var chart = LineChart(title: "", xLabel: x, yLabel: yLabel, logX: logX)
        let tables = try paths.map { path in (path, try CSVTable(path: path)) }
        // Categories when any x is not a number.
        var categories: [String] = []
        var numeric = true
        for (path, table) in tables {
            let xi = try table.column(x, source: path)
            for row in table.rows {
                if Double(row[xi]) == nil { numeric = false }
                if !categories.contains(row[xi]) { categories.append(row[xi]) }
            }
        }
        if !numeric {
            guard !logX else { throw SAMTrainError("--log-x: the x column \(x) holds labels (\(categories.prefix(3).joined(separator: ", "))…), not numbers") }
            chart.xCategories = categories
        }
        // Lines sort by (numeric series first, by value; then labels in order of appearance; measure).
        var groups: [String: [(x: Double, y: Double)]] = [:], order: [(key: (Int, Double), name: String, series: Int, measure: Int)] = []
        var seriesValues: [String] = []
        for (path, table) in tables {
            let (xi, si) = (try table.column(x, source: path), try table.column(series, source: path))
            let columns = try measures.map { try table.column(yColumns[$0]!, source: path) }
            for row in table.rows {
                let xv = numeric ? Double(row[xi]) : categories.firstIndex(of: row[xi]).map(Double.init)
                guard let xv else { continue }
                if !seriesValues.contains(row[si]) { seriesValues.append(row[si]) }
                for (m, (y, yi)) in zip(measures, columns).enumerated() {
                    guard let yv = Double(row[yi]) else { continue }
                    let name = "\(series) = \(row[si])" + (measures.count > 1 ? ", \(shortLabels[y] ?? yLabels[y] ?? y)" : "")
                    if groups[name] == nil {
                        let s = seriesValues.firstIndex(of: row[si])!
                        order.append((Double(row[si]).map { (0, $0) } ?? (1, Double(s)), name, s, m))
                    }
                    groups[name, default: []].append((xv, y == "error" ? 1 - yv : yv))
                }
            }
            chart.title = path.split(separator: "/").dropLast().last.map(String.init) ?? path
        }
        for line in order.sorted(by: { ($0.key.0, $0.key.1, $0.measure) < ($1.key.0, $1.key.1, $1.measure) }) {
            chart.series.append((line.name, groups[line.name]!))
            if measures.count > 1 { chart.styles[line.name] = LineChart.Style(color: line.series, dash: line.measure) }
        }
        return chart
    }

    /// A figure over the epochs (x `epoch`): a line per cell and measure from the cell's
    /// metrics.csv in `directory`, named by the cell's value of `series` and its labels on the
    /// other axes but `per`; a chart per value of `per` (one chart without it), named
    /// `<figure>-<per>-<value>`. Cells without a metrics.csv are left out.
    public static func epochCharts(_ figure: SweepFile.Figure, cells: [SweepFile.Cell], directory: String,
                                   title: String) throws -> [(name: String, chart: LineChart)] {
        func value(_ cell: SweepFile.Cell, _ key: String) -> String? { cell.labels.first { $0.axis == key }?.label ?? cell.value(key) }
        var groups: [String?] = []
        for cell in cells {
            let group = figure.per.flatMap { value(cell, $0) }
            if !groups.contains(group) { groups.append(group) }
        }
        let yLabel = figure.y.count == 1 ? epochYLabels[figure.y[0]] ?? figure.y[0] : figure.y.map { epochYLabels[$0] ?? $0 }.joined(separator: " / ")
        var charts: [(name: String, chart: LineChart)] = []
        for group in groups {
            var chart = LineChart(title: title + (group.map { ": \(figure.per!) = \($0)" } ?? ""), xLabel: "epoch", yLabel: yLabel, logX: figure.logX)
            var seriesValues: [String] = []
            for cell in cells where figure.per.flatMap({ value(cell, $0) }) == group {
                let path = directory + "/" + cell.name + "/metrics.csv"
                guard FileManager.default.fileExists(atPath: path) else { continue }
                let table = try CSVTable(path: path)
                let epoch = try table.column("epoch", source: path)
                let label = value(cell, figure.series) ?? "-"
                if !seriesValues.contains(label) { seriesValues.append(label) }
                let others = cell.labels.filter { $0.axis != figure.series && $0.axis != figure.per }.map { "\($0.axis) = \($0.label)" }
                for (m, y) in figure.y.enumerated() {
                    let column = try table.column(epochColumns[y]!, source: path)
                    let points = table.rows.compactMap { row in
                        Double(row[epoch]).flatMap { x in Double(row[column]).map { (x: x, y: y == "error" ? 1 - $0 : $0) } }
                    }
                    let name = (["\(figure.series) = \(label)"] + others + (figure.y.count > 1 ? [epochShortLabels[y] ?? y] : [])).joined(separator: ", ")
                    chart.series.append((name, points))
                    chart.styles[name] = LineChart.Style(color: seriesValues.firstIndex(of: label)!, dash: m)
                }
            }
            guard !chart.series.isEmpty else { continue }
            let suffix = group.map { "-\(figure.per!)-" + SweepAxis.directoryName($0) } ?? ""
            charts.append((figure.name + suffix, chart))
        }
        return charts
    }

    static let epochShortLabels = ["accuracy": "test", "train_accuracy": "train", "error": "test error", "train_loss": "train loss", "test_loss": "test loss"]
    static let epochYLabels = ["error": "test error", "accuracy": "test accuracy", "train_accuracy": "train accuracy (labels trained on)",
                               "train_loss": "train loss", "test_loss": "test loss"]
}
