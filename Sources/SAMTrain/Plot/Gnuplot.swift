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
        // Every user string is checked before anything is written.
        let quotedData = try LineChart.quoted(data, what: "--out")
        let names = try series.map { try LineChart.quoted($0.name, what: "the series name") }
        let (quotedTitle, quotedX, quotedY) = (try LineChart.quoted(title, what: "--title"),
                                               try LineChart.quoted(xLabel, what: "the x label"), try LineChart.quoted(yLabel, what: "the y label"))
        try text.write(toFile: data, atomically: true, encoding: .utf8)
        let plots = series.indices.map { i in "\(quotedData) index \(i) using 1:2 with linespoints title \(names[i])" }
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
