import Foundation

/// Line charts through gnuplot (installed by launch/setup): each chart is written as an SVG
/// and a PNG, from named series of (x, y) points.
public struct LineChart {
    public var title: String
    public var xLabel: String
    public var yLabel: String
    public var logX = false
    public var series: [(name: String, points: [(x: Double, y: Double)])] = []
    /// Named x positions: point x = i is drawn at `xCategories[i]` (a sweep's labels).
    public var xCategories: [String]?
    /// A line's colour and dash by series name (gnuplot's own cycle otherwise): the series of
    /// a sweep in one colour, its measures in different dashes.
    public var styles: [String: Style] = [:]

    public struct Style: Sendable {
        public var color: Int
        public var dash: Int
        public init(color: Int, dash: Int) {
            self.color = color
            self.dash = dash
        }
    }

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
        // Every user string is checked before anything is written.
        let quotedData = try LineChart.quoted(data, what: "--out")
        let names = try series.map { try LineChart.quoted($0.name, what: "the series name") }
        let (quotedTitle, quotedX, quotedY) = (try LineChart.quoted(title, what: "--title"),
                                               try LineChart.quoted(xLabel, what: "the x label"), try LineChart.quoted(yLabel, what: "the y label"))
        let tics = try xCategories.map { labels in
            try labels.enumerated().map { "\(try LineChart.quoted($0.element, what: "the x label")) \($0.offset)" }.joined(separator: ", ")
        }
        try text.write(toFile: data, atomically: true, encoding: .utf8)
        let plots = series.indices.map { i in
            let style = styles[series[i].name].map { " linecolor \($0.color + 1) dashtype \($0.dash + 1) pointtype \($0.dash + 1)" } ?? ""
            return "\(quotedData) index \(i) using 1:2 with linespoints\(style) title \(names[i])"
        }
        // Many or long legend entries go below the plot, which would otherwise shrink to a strip.
        let keyPlacement = series.count > 8 || series.contains { $0.name.count > 30 } ? "set key below" : "set key outside right"
        // Categories: one tic each, half a step of margin either side.
        let categoryAxis = xCategories.map { labels in
            "set xtics (\(tics ?? ""))\(labels.contains { $0.count > 10 } ? " rotate by -20" : "")\nset xrange [-0.5:\(Double(labels.count) - 0.5)]"
        } ?? ""
        var outputs: [String] = []
        for (terminal, ext) in [("svg size 720,480 dynamic", "svg"), ("pngcairo size 960,640", "png")] {
            let path = base + "." + ext
            let script = """
            set terminal \(terminal)
            set termoption noenhanced
            set output \(try LineChart.quoted(path, what: "--out"))
            set title \(quotedTitle)
            set xlabel \(quotedX)
            set ylabel \(quotedY)
            \(keyPlacement)
            set grid
            \(logX ? "set logscale x" : "")
            \(categoryAxis)
            plot \(plots.joined(separator: ", \\\n     "))
            """
            try run(script: script, for: path)
            outputs.append(path)
        }
        try? FileManager.default.removeItem(atPath: data)
        return outputs
    }

    /// `text` as a gnuplot single-quoted string, the one kind in which gnuplot expands
    /// nothing (no backslash escapes, no `command` substitution, no @macros); a quote is
    /// doubled. A control character (a newline would end the command and start another)
    /// is refused, naming `what`.
    public static func quoted(_ text: String, what: String) throws -> String {
        if let bad = text.unicodeScalars.first(where: { $0.properties.generalCategory == .control }) {
            throw SAMTrainError("\(what) \"\(text.unicodeScalars.prefix(60).map { $0.properties.generalCategory == .control ? "?" : String($0) }.joined())\": contains the control character U+\(String(format: "%04X", bad.value)); plot text must be one line of printable characters")
        }
        return "'" + text.replacingOccurrences(of: "'", with: "''") + "'"
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
        guard let data = FileManager.default.contents(atPath: path) else { throw SAMTrainError("\(path): cannot read") }
        try self.init(data: data, source: path)
    }

    /// Parses CSV text; every row must have the header's number of fields (a short row
    /// would otherwise be read past its end). `source` names the file in errors.
    public init(data: Data, source: String) throws {
        guard let text = String(data: data, encoding: .utf8) else { throw SAMTrainError("\(source): not UTF-8 text") }
        let lines = text.split(omittingEmptySubsequences: false, whereSeparator: \.isNewline)
        guard let header = lines.first.map({ CSVTable.split(String($0)) }), !(header.count == 1 && header[0].isEmpty) else {
            throw SAMTrainError("\(source): empty")
        }
        columns = header
        rows = []
        for (i, line) in lines.enumerated().dropFirst() where !line.isEmpty {
            let fields = CSVTable.split(String(line))
            guard fields.count == header.count else {
                throw SAMTrainError("\(source):\(i + 1): \(fields.count) field(s), the header has \(header.count)")
            }
            rows.append(fields)
        }
    }

    /// Splits one line on commas outside double quotes; `""` inside quotes is one quote (RFC 4180).
    static func split(_ line: String) -> [String] {
        var fields: [String] = [], field = "", quoted = false, previousWasClosingQuote = false
        for c in line {
            if c == "\"" {
                if !quoted && previousWasClosingQuote { field.append("\"") }
                quoted.toggle()
                previousWasClosingQuote = !quoted
                continue
            }
            previousWasClosingQuote = false
            if c == "," && !quoted { fields.append(field); field = "" } else { field.append(c) }
        }
        return fields + [field]
    }

    /// A field as `split` reads it back: quoted when it holds a comma, a quote or a line end.
    public static func field(_ text: String) -> String {
        guard text.contains(where: { $0 == "," || $0 == "\"" || $0.isNewline }) else { return text }
        return "\"" + text.replacingOccurrences(of: "\"", with: "\"\"") + "\""
    }

    public func column(_ name: String, source: String) throws -> Int {
        guard let i = columns.firstIndex(of: name) else {
            throw SAMTrainError("\(source): no column \(name); the columns are \(columns.joined(separator: ", "))")
        }
        return i
    }
}
