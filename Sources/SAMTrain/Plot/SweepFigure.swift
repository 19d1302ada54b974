/// A sweep's results as a chart: y (test error, accuracy, sharpness, λ_max) against one
/// axis, one line per value of another (test error vs ρ per m; accuracy vs noise per variant).
public enum SweepFigure {
    public static let yColumns = ["error": "final_test_acc", "accuracy": "final_test_acc", "best": "best_test_acc",
                                  "sharpness": "m_sharpness", "lambda": "lambda_max"]

    public static func chart(results paths: [String], x: String, series: String, y: String, logX: Bool) throws -> LineChart {
        guard let yColumn = yColumns[y] else {
            throw SAMTrainError("--y \(y): choose one of \(yColumns.keys.sorted().joined(separator: ", "))")
        }
        let yLabels = ["error": "test error", "accuracy": "test accuracy", "best": "best test accuracy",
                       "sharpness": "m-sharpness", "lambda": "Hessian λ_max"]
        var chart = LineChart(title: "", xLabel: x, yLabel: yLabels[y] ?? y, logX: logX)
        var groups: [String: [(x: Double, y: Double)]] = [:], order: [(key: Double, name: String)] = []
        for path in paths {
            let table = try CSVTable(path: path)
            let (xi, si, yi) = (try table.column(x, source: path), try table.column(series, source: path), try table.column(yColumn, source: path))
            for row in table.rows where row.count > max(xi, si, yi) {
                guard let xv = Double(row[xi]), let yv = Double(row[yi]) else { continue }
                let name = "\(series) = \(row[si])"
                if groups[name] == nil { order.append((Double(row[si]) ?? Double(order.count), name)) }
                groups[name, default: []].append((xv, y == "error" ? 1 - yv : yv))
            }
            chart.title = path.split(separator: "/").dropLast().last.map(String.init) ?? path
        }
        // Numeric series in numeric order, others in order of appearance.
        chart.series = order.sorted { $0.key < $1.key }.map { ($0.name, groups[$0.name]!) }
        return chart
    }
}
