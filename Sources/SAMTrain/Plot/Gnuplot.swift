import Foundation

/// Line charts through gnuplot (installed by launch/setup): each chart is written as an SVG
/// and a PNG, from named series of (x, y) points.
public struct LineChart {
    public var title: String
    public var xLabel: String
    public var yLabel: String
    public var logX = false
    public var series: [(name: String, points: [(x: Double, y: Double)])] = []

    public init(title: String, xLabel: String, yLabel: String, logX: Bool = false) {
        self.title = title
        self.xLabel = xLabel
        self.yLabel = yLabel
        self.logX = logX
    }

    /// Writes `<base>.svg` and `<base>.png`; returns their paths.
    @discardableResult
    public func render(to base: String) throws -> [String] {
        guard !series.isEmpty else { throw SAMTrainError("\(base): nothing to plot") }
        let data = base + ".dat"
        var text = ""
        for s in series {
            text += "# \(s.name)\n"
            for p in s.points.sorted(by: { $0.x < $1.x }) { text += "\(p.x) \(p.y)\n" }
            text += "\n\n"
        }
        try text.write(toFile: data, atomically: true, encoding: .utf8)
        func quoted(_ s: String) -> String { "\"" + s.replacingOccurrences(of: "\"", with: "'") + "\"" }
        let plots = series.enumerated().map { i, s in "\(quoted(data)) index \(i) using 1:2 with linespoints title \(quoted(s.name))" }
        var outputs: [String] = []
        for (terminal, ext) in [("svg size 720,480 dynamic", "svg"), ("pngcairo size 960,640", "png")] {
            let path = base + "." + ext
            let script = """
            set terminal \(terminal)
            set termoption noenhanced
            set output \(quoted(path))
            set title \(quoted(title))
            set xlabel \(quoted(xLabel))
            set ylabel \(quoted(yLabel))
            set key outside right
            set grid
            \(logX ? "set logscale x" : "")
            plot \(plots.joined(separator: ", \\\n     "))
            """
            try run(script: script, for: path)
            outputs.append(path)
        }
        try? FileManager.default.removeItem(atPath: data)
        return outputs
    }

    private func run(script: String, for path: String) throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["gnuplot"]
        let input = Pipe(), errors = Pipe()
        process.standardInput = input
        process.standardError = errors
        do { try process.run() } catch { throw SAMTrainError("gnuplot is not installed (launch/setup installs gnuplot-nox)") }
        input.fileHandleForWriting.write(Data(script.utf8))
        try input.fileHandleForWriting.close()
        let message = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        guard process.terminationStatus == 0, FileManager.default.fileExists(atPath: path) else {
            throw SAMTrainError("gnuplot could not draw \(path): \(message)")
        }
    }
}

/// Reads CSV files as written by samtrain (results.csv, metrics.csv).
public struct CSVTable {
    public var columns: [String]
    public var rows: [[String]]

    public init(path: String) throws {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { throw SAMTrainError("\(path): cannot read") }
        let lines = text.split(separator: "\n").map { CSVTable.split(String($0)) }
        guard let header = lines.first else { throw SAMTrainError("\(path): empty") }
        columns = header
        rows = Array(lines.dropFirst())
    }

    /// Splits one line on commas outside double quotes.
    static func split(_ line: String) -> [String] {
        var fields: [String] = [], field = "", quoted = false
        for c in line {
            if c == "\"" { quoted.toggle() } else if c == "," && !quoted { fields.append(field); field = "" } else { field.append(c) }
        }
        return fields + [field]
    }

    public func column(_ name: String, source: String) throws -> Int {
        guard let i = columns.firstIndex(of: name) else {
            throw SAMTrainError("\(source): no column \(name); the columns are \(columns.joined(separator: ", "))")
        }
        return i
    }
}
