import Foundation
#if canImport(FoundationXML)
import FoundationXML
#endif
import XCTest
@testable import SAMTrain

/// `samtrain plot` draws real SVG and PNG files with the expected series.
final class PlotTests: XCTestCase {
    func requireGnuplot() throws {
        if try Subprocess.run("/bin/sh", ["-c", "command -v gnuplot"]).status != 0 {
            throw XCTSkip("gnuplot is not installed (launch/setup installs gnuplot-nox)")
        }
    }

    func checkFiles(_ base: String, series: [String], file: StaticString = #filePath, line: UInt = #line) throws {
        let svg = try Data(contentsOf: URL(fileURLWithPath: base + ".svg"))
        let parser = XMLParser(data: svg)
        XCTAssertTrue(parser.parse(), "\(base).svg is not well-formed XML", file: file, line: line)
        let text = String(decoding: svg, as: UTF8.self)
        XCTAssertTrue(text.contains("<svg"), file: file, line: line)
        for s in series { XCTAssertTrue(text.contains(s), "series \(s) missing from \(base).svg", file: file, line: line) }
        let png = try Data(contentsOf: URL(fileURLWithPath: base + ".png"))
        XCTAssertEqual(Array(png.prefix(8)), [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A], "PNG signature", file: file, line: line)
        XCTAssertEqual(String(decoding: png[12..<16], as: UTF8.self), "IHDR", file: file, line: line)
        XCTAssertGreaterThan(png.count, 2000, file: file, line: line)
    }

    func testSweepCurvesAndSpectrumFigures() throws {
        try requireGnuplot()
        let dir = Subprocess.temporaryDirectory("samtrain-plot")
        defer { try? FileManager.default.removeItem(at: dir) }
        let results = dir.appendingPathComponent("results.csv").path
        try """
        cell,m,rho,final_test_acc,best_test_acc,final_train_loss,m_sharpness,lambda_max,seconds
        "m=4,rho=0.01",4,0.01,0.90,0.91,0.3,0.01,12.5,10
        "m=4,rho=0.1",4,0.1,0.91,0.91,0.3,0.02,10.5,10
        "m=64,rho=0.01",64,0.01,0.88,0.89,0.3,0.01,14.5,10
        "m=64,rho=0.1",64,0.1,0.89,0.90,0.3,0.03,13.5,10

        """.write(toFile: results, atomically: true, encoding: .utf8)
        let sweep = try Subprocess.run(Subprocess.samtrain, ["plot", "sweep", results, "--x", "rho", "--series", "m", "--log-x",
                                                             "--out", dir.appendingPathComponent("error-vs-rho").path])
        XCTAssertEqual(sweep.status, 0, sweep.output)
        try checkFiles(dir.appendingPathComponent("error-vs-rho").path, series: ["m = 4", "m = 64"])

        let run = dir.appendingPathComponent("sam-run")
        try FileManager.default.createDirectory(at: run, withIntermediateDirectories: true)
        try "epoch,step,train_loss,train_acc,test_loss,test_acc,images_per_s,seconds\n1,10,0.5,0.8,0.4,0.85,100,1\n2,20,0.4,0.85,0.35,0.88,100,1\n"
            .write(to: run.appendingPathComponent("metrics.csv"), atomically: true, encoding: .utf8)
        let curves = try Subprocess.run(Subprocess.samtrain, ["plot", "curves", run.appendingPathComponent("metrics.csv").path,
                                                              "--out", dir.appendingPathComponent("curves").path])
        XCTAssertEqual(curves.status, 0, curves.output)
        try checkFiles(dir.appendingPathComponent("curves-test-accuracy").path, series: ["sam-run"])

        try "{\"top_eigenvalues\": [40.5, 20.1, 11.0]}".write(to: run.appendingPathComponent("sharpness.json"), atomically: true, encoding: .utf8)
        let spectrum = try Subprocess.run(Subprocess.samtrain, ["plot", "spectrum", run.appendingPathComponent("sharpness.json").path,
                                                                "--out", dir.appendingPathComponent("spectrum").path])
        XCTAssertEqual(spectrum.status, 0, spectrum.output)
        try checkFiles(dir.appendingPathComponent("spectrum").path, series: ["sam-run"])

        let bad = try Subprocess.run(Subprocess.samtrain, ["plot", "sweep", results, "--x", "colour", "--out", dir.appendingPathComponent("x").path])
        XCTAssertNotEqual(bad.status, 0)
        XCTAssertTrue(bad.stderr.contains("no column colour"), bad.output)
    }

    /// results.csv's labels may hold commas and quotes; the reader gives them back.
    func testLabelsSurviveResultsCSV() throws {
        XCTAssertEqual(CSVTable.field("sam=sam,rho=0.1"), "\"sam=sam,rho=0.1\"")
        XCTAssertEqual(CSVTable.field("say \"hi\""), "\"say \"\"hi\"\"\"")
        XCTAssertEqual(CSVTable.field("0.05"), "0.05")
        let text = "cell,method,x\n\"method=a\",\(CSVTable.field("sam=sam,rho=0.1")),\(CSVTable.field("say \"hi\", twice"))\n"
        XCTAssertEqual(try CSVTable(data: Data(text.utf8), source: "r.csv").rows, [["method=a", "sam=sam,rho=0.1", "say \"hi\", twice"]])
    }

    /// A chart whose x is a bundle axis: its labels as categories in the file's order; several
    /// measures as lines per series and measure.
    func testFiguresTakeLabelsAsXAndSeveralMeasures() throws {
        let dir = Subprocess.temporaryDirectory("samtrain-bundle-figure")
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("results.csv").path
        try """
        cell,model,method,final_test_acc,best_test_acc,final_train_acc,seconds
        "model=vit,method=base",vit,base,0.80,0.82,0.9,10
        "model=vit,method=sam",vit,"sam=sam,rho=0.1",0.84,0.85,0.88,20
        "model=cnn,method=base",cnn,base,0.90,0.91,0.95,5
        "model=cnn,method=sam",cnn,"sam=sam,rho=0.1",0.91,0.91,0.93,9

        """.write(toFile: path, atomically: true, encoding: .utf8)
        let chart = try SweepFigure.chart(results: [path], x: "method", series: "model", y: ["accuracy", "best"], logX: false)
        XCTAssertEqual(chart.xCategories, ["base", "sam=sam,rho=0.1"])
        XCTAssertEqual(chart.series.map(\.name), ["model = vit, final test", "model = vit, best test",
                                                  "model = cnn, final test", "model = cnn, best test"])
        XCTAssertEqual(chart.series[1].points.map(\.x), [0, 1])
        XCTAssertEqual(chart.series[1].points.map(\.y), [0.82, 0.85])
        XCTAssertEqual(chart.styles["model = cnn, best test"].map { [$0.color, $0.dash] }, [1, 1])
        XCTAssertEqual(chart.yLabel, "accuracy")
        if try Subprocess.run("/bin/sh", ["-c", "command -v gnuplot"]).status == 0 {
            let base = dir.appendingPathComponent("accuracy-vs-method").path
            let plot = try Subprocess.run(Subprocess.samtrain, ["plot", "sweep", path, "--x", "method", "--series", "model", "--y", "accuracy,best", "--out", base])
            XCTAssertEqual(plot.status, 0, plot.output)
            try checkFiles(base, series: ["model = cnn, best test", "sam=sam,rho=0.1"])
        }
        XCTAssertThrowsError(try SweepFigure.chart(results: [path], x: "method", series: "model", y: ["accuracy"], logX: true)) { e in
            XCTAssertTrue("\(e)".contains("holds labels"), "\(e)")
        }
        // Numeric series before labelled ones (m 4, 16, then global).
        try "cell,m,rho,final_test_acc\na,global,0.1,0.5\nb,16,0.1,0.6\nc,4,0.1,0.7\n".write(toFile: path, atomically: true, encoding: .utf8)
        XCTAssertEqual(try SweepFigure.chart(results: [path], x: "rho", series: "m", y: "error", logX: false).series.map(\.name), ["m = 4", "m = 16", "m = global"])
    }
}
