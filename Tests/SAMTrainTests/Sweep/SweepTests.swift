import Foundation
import XCTest
@testable import SAMTrain
@testable import samtrain

final class SweepTests: XCTestCase {
    func writeSweep(_ text: String) throws -> (URL, String) {
        let dir = Subprocess.temporaryDirectory("samtrain-sweep")
        let path = dir.appendingPathComponent("sweep.json").path
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return (dir, path)
    }

    func testBadSweepFilesAreRefusedWithLineAndKey() throws {
        let cases: [(String, [String])] = [
            ("{\n \"axes\": {\"rho\": [0.1]},\n \"colour\": 1\n}", [":3:", "colour", "unknown key"]),
            ("{\n \"fixed\": {\"epochs\": \"ten\"},\n \"axes\": {\"rho\": [0.1]}\n}", [":2:", "--epochs", "ten"]),
            ("{\n \"axes\": {\n  \"rho\": [0.1],\n  \"learning_speed\": [1]\n }\n}", [":4:", "learning-speed", "Unknown option"]),
            ("{\n \"axes\": {\"nesterov\": [1]}\n}", ["cell nesterov=1", "Unexpected argument '1'"]),
            ("{\n \"axes\": {\"sam\": [\"sam\", \"nosuch\"]}\n}", [":2:", "cell sam=nosuch", "none", "bsam"]),
        ]
        for (text, fragments) in cases {
            let (dir, path) = try writeSweep(text)
            defer { try? FileManager.default.removeItem(at: dir) }
            // The file reads; the cells' settings are refused by train's own parser.
            XCTAssertThrowsError(try SweepFile(path: path, quick: false).validate()) { e in
                for f in fragments { XCTAssertTrue("\(e)".contains(f), "'\(f)' not in \(e)") }
            }
        }
        // Valid syntax, impossible settings: refused by validate() before any cell runs.
        let (dir, path) = try writeSweep("{\"ranks\": 2, \"fixed\": {\"batch_size\": 128}, \"axes\": {\"m\": [16, 48]}}")
        defer { try? FileManager.default.removeItem(at: dir) }
        XCTAssertThrowsError(try SweepFile(path: path, quick: false).validate()) { e in
            XCTAssertTrue("\(e)".contains("cell m=48") && "\(e)".contains("--m 48"), "\(e)")
        }
        let (dir2, path2) = try writeSweep("{\"fixed\": {\"data\": \"/nonexistent\"}, \"axes\": {\"rho\": [0.1]}}")
        defer { try? FileManager.default.removeItem(at: dir2) }
        XCTAssertThrowsError(try SweepFile(path: path2, quick: false).validate()) { e in
            XCTAssertTrue("\(e)".contains("/nonexistent"), "\(e)")
        }
    }

    /// Settings `samtrain train` refuses are refused for the cell that holds them, with the
    /// train command's own message, before any cell starts (issue 12: the dry run accepted them).
    func testEveryCellIsParsedAsTrainParsesItsFlags() throws {
        let data = Subprocess.temporaryDirectory("samtrain-sweep-data")
        defer { try? FileManager.default.removeItem(at: data) }
        try MNISTFiles.write(to: data, train: (64, 28), test: (8, 28))
        let cases: [(String, [String])] = [
            (#""threads": [1, 0]"#, ["cell threads=0", "--threads 0"]),
            (#""optimizer": ["sgd", "bogus"]"#, ["cell optimizer=bogus", "'bogus'", "--optimizer"]),
            (#""train_subset": [-1]"#, ["cell train-subset=-1", "--train-subset -1"]),
            (#""momentum": [-1]"#, ["cell momentum=-1", "--momentum -1.0"]),
            (#""keep": [0]"#, ["cell keep=0", "--keep 0"]),
            (#""schedule": ["sometimes"]"#, ["cell schedule=sometimes", "--schedule"]),
            (#""p": ["0.5"]"#, ["cell p=0.5"]),
            (#""batch_size": [63]"#, ["cell batch-size=63", "not divisible by the sweep's 2 ranks"]),
        ]
        for (axis, fragments) in cases {
            let (dir, path) = try writeSweep(#"{"ranks": 2, "fixed": {"data": "\#(data.path)", "batch_size": 8}, "axes": {\#(axis)}}"#)
            defer { try? FileManager.default.removeItem(at: dir) }
            XCTAssertThrowsError(try SweepFile(path: path, quick: false).validate(), axis) { e in
                for f in fragments { XCTAssertTrue("\(e)".contains(f), "'\(f)' not in \(e)") }
            }
        }
        let (dir, path) = try writeSweep(#"{"ranks": 2, "fixed": {"data": "\#(data.path)", "batch_size": 8}, "axes": {"lr": [-1]}}"#)
        defer { try? FileManager.default.removeItem(at: dir) }
        XCTAssertThrowsError(try SweepFile(path: path, quick: false).validate()) { e in
            XCTAssertTrue("\(e)".contains("cell lr=-1: --lr -1.0: the learning rate must be a positive number"), "\(e)")
        }
    }

    /// A sweep takes any flag `samtrain train` takes, variants' own flags included, with no
    /// list of its own: a cell is exactly the command line it runs.
    func testSweepCellsAreTrainCommandLines() throws {
        let data = Subprocess.temporaryDirectory("samtrain-sweep-data")
        defer { try? FileManager.default.removeItem(at: data) }
        try MNISTFiles.write(to: data, train: (64, 28), test: (8, 28))
        let (dir, path) = try writeSweep(#"{"ranks": 2, "fixed": {"data": "\#(data.path)", "batch_size": 8, "nesterov": true, "wd_in_ascent": false, "sam": "bisam", "bisam_phi": "tanh"}, "axes": {"bisam_mu": [1, 2.5]}}"#)
        defer { try? FileManager.default.removeItem(at: dir) }
        let sweep = try SweepFile(path: path, quick: false)
        try sweep.validate()
        let cell = sweep.cells[1]
        XCTAssertEqual(cell.arguments, ["--batch-size", "8", "--bisam-phi", "tanh", "--data", data.path, "--nesterov", "--sam", "bisam", "--bisam-mu", "2.5"])
        let c = try TrainCommand.configuration(arguments: cell.arguments)
        XCTAssertEqual(c.samConfiguration.variant.rawValue, "bisam")
        XCTAssertEqual(c.samConfiguration.variants.options(BiSAM.Options.self).bisamMu, 2.5)
        XCTAssertEqual(c.samConfiguration.variants.options(BiSAM.Options.self).bisamPhi, .tanh)
        XCTAssertTrue(c.optimization.nesterov)

        // A model family's flags too: a ViT's depth as an axis, checked as train checks it.
        let (vitDir, vitPath) = try writeSweep(#"{"ranks": 2, "fixed": {"data": "\#(data.path)", "batch_size": 8, "model": "vit-t4", "vit_width": 16, "vit_heads": 2}, "axes": {"vit_depth": [1, 2]}}"#)
        defer { try? FileManager.default.removeItem(at: vitDir) }
        let vit = try SweepFile(path: vitPath, quick: false)
        try vit.validate()
        XCTAssertEqual(try TrainCommand.configuration(arguments: vit.cells[1].arguments).model.configuration.commandLine,
                       "vit-t4 --vit-width 16 --vit-depth 2 --vit-heads 2")
        for (fixed, axis, fragments) in [(#""model": "vit-t4""#, #""vit_heads": [5]"#, ["cell vit-heads=5", "5 heads do not divide the width 192"]),
                                         (#""model": "cnn""#, #""vit_depth": [6]"#, ["cell vit-depth=6", "--vit-depth only applies to the vision transformers"])] {
            let (badDir, badPath) = try writeSweep(#"{"ranks": 2, "fixed": {"data": "\#(data.path)", "batch_size": 8, \#(fixed)}, "axes": {\#(axis)}}"#)
            defer { try? FileManager.default.removeItem(at: badDir) }
            XCTAssertThrowsError(try SweepFile(path: badPath, quick: false).validate(), axis) { e in
                for f in fragments { XCTAssertTrue("\(e)".contains(f), "'\(f)' not in \(e)") }
            }
        }
    }

    func testShippedSweepFilesAreValid() throws {
        try Subprocess.requireFashionMNIST()
        let dir = Subprocess.repositoryRoot.appendingPathComponent("sweeps")
        // Every Fashion-MNIST sweep in sweeps/ (the CIFAR recipes below), issue 30's studies with their sizes.
        let studies = ["label-noise": 12, "m-sharpness": 12, "late-sam": 5, "vit-sam": 6]
        let names = ["m-rho", "label-noise-variants", "variants", "variants-beyond"] + studies.keys.sorted()
        let shipped = try FileManager.default.contentsOfDirectory(atPath: dir.path).filter { $0.hasSuffix(".json") }.map { String($0.dropLast(5)) }
        XCTAssertEqual(Set(shipped), Set(names + ["foret-wrn28-10-cifar10", "foret-label-noise-resnet32", "bsam-bisam-resnet18"]), "a sweep file is not checked here")
        for name in names {
            for quick in [false, true] {
                let sweep = try SweepFile(path: dir.appendingPathComponent(name + ".json").path, quick: quick)
                try sweep.validate()
                XCTAssertFalse(sweep.cells.isEmpty)
                XCTAssertNotEqual(sweep.expectedTime, "unknown")
                XCTAssertEqual(sweep.name, name)
                if let count = studies[name], !quick { XCTAssertEqual(sweep.cells.count, count, name) }
                // Each figure's x and series are columns of results.csv: an axis or a setting.
                let columns = Set(sweep.axes.map(\.key) + sweep.cells.flatMap { $0.settings.map(\.key) })
                // Over the epochs, a chart per value of an axis.
                for f in sweep.figures {
                    XCTAssertTrue((f.byEpoch || columns.contains(f.x)) && columns.contains(f.series), "\(name): \(f)")
                    XCTAssertTrue(f.per.map(columns.contains) ?? true, "\(name): \(f)")
                }
            }
        }
        // The studies train on all 60,000 examples for their length; their quick runs do not.
        for name in studies.keys {
            let full = try SweepFile(path: dir.appendingPathComponent(name + ".json").path, quick: false)
            XCTAssertTrue(full.cells.allSatisfy { $0.value("train-subset") == nil && $0.value("max-steps") == nil }, name)
            XCTAssertTrue(full.cells.allSatisfy { Int($0.value("epochs") ?? "0")! >= ($0.value("model") == "vit-t4" ? 5 : 10) }, name)
        }
        // The papers' CIFAR recipes, pointed at a folder holding both CIFAR copies (real layout).
        let data = Subprocess.temporaryDirectory("samtrain-recipes")
        defer { try? FileManager.default.removeItem(at: data) }
        try CIFARFiles.patterned(.cifar10, to: data.appendingPathComponent("cifar-10-batches-bin"), layout: .standard)
        try CIFARFiles.patterned(.cifar100, to: data.appendingPathComponent("cifar-100-binary"), layout: .standard)
        let recipes = ["foret-wrn28-10-cifar10": 2, "foret-label-noise-resnet32": 12, "bsam-bisam-resnet18": 8]
        for (name, count) in recipes {
            for quick in [false, true] {
                var sweep = try SweepFile(path: dir.appendingPathComponent(name + ".json").path, quick: quick)
                XCTAssertThrowsError(try sweep.validate(), "\(name) validates without the user's CIFAR copy")
                sweep.overrideData(data.path)
                try sweep.validate()
                if !quick { XCTAssertEqual(sweep.cells.count, count, name) }
                XCTAssertFalse(sweep.published.isEmpty, name)
                XCTAssertTrue(sweep.expectedTime.contains("per 100 cores") || quick, "\(name): \(sweep.expectedTime)")
                XCTAssertTrue(sweep.cells.allSatisfy { $0.value("data") == data.path })
            }
        }
        let grid = try SweepFile(path: dir.appendingPathComponent("m-rho.json").path, quick: false)
        XCTAssertEqual(grid.cells.count, 25)
        XCTAssertEqual(Set(grid.cells.compactMap { $0.value("m") }), ["1", "4", "16", "64", "128"])
    }

    /// A sweep runs its cells, writes results.csv, and a rerun redoes only a missing cell.
    func testSweepRunsAndResumesOnlyMissingCells() throws {
        try Subprocess.requireFashionMNIST()
        let (dir, path) = try writeSweep("""
        {"name": "tiny", "expected_time": "seconds", "ranks": 2,
         "fixed": {"model": "mlp", "epochs": 1, "train_subset": 512, "batch_size": 64},
         "axes": {"rho": [0.02, 0.1]},
         "sharpness": {"subset": 64, "rho": 0.05, "m": 32},
         "figures": [{"x": "rho", "series": "epochs", "y": "error"}]}
        """)
        defer { try? FileManager.default.removeItem(at: dir) }
        let out = dir.appendingPathComponent("out").path
        let first = try Subprocess.run(Subprocess.samtrain, ["sweep", path, "--out", out], timeout: 300)
        XCTAssertEqual(first.status, 0, first.output)
        let csv = try String(contentsOfFile: out + "/results.csv", encoding: .utf8).split(separator: "\n")
        XCTAssertEqual(csv.count, 3, csv.joined(separator: "\n"))
        let header = csv[0].split(separator: ",").map(String.init)
        XCTAssertEqual(Array(header.prefix(2)), ["cell", "rho"])
        XCTAssertTrue(header.contains("epochs") && header.contains("final_test_acc"), "\(header)")
        XCTAssertTrue(csv[1].contains("0.02"))
        let sharpness = csv[1].split(separator: ",", omittingEmptySubsequences: false)[header.firstIndex(of: "m_sharpness")!]
        XCTAssertNotNil(Double(sharpness), "m-sharpness recorded: \(csv[1])")
        if first.stdout.contains("figure: ") {
            XCTAssertTrue(FileManager.default.fileExists(atPath: out + "/error-vs-rho-per-epochs.svg"), first.output)
            XCTAssertTrue(FileManager.default.fileExists(atPath: out + "/error-vs-rho-per-epochs.png"), first.output)
        } else {
            XCTAssertTrue(first.stdout.contains("figure not drawn: gnuplot"), first.output)
        }

        try FileManager.default.removeItem(atPath: out + "/rho=0.1/result.json")
        let second = try Subprocess.run(Subprocess.samtrain, ["sweep", path, "--out", out], timeout: 300)
        XCTAssertEqual(second.status, 0, second.output)
        XCTAssertTrue(second.stdout.contains("rho=0.02: done before"), second.output)
        XCTAssertTrue(second.stdout.contains("rho=0.1: resuming"), second.output)
    }

    /// A sweep along a bundle axis, end to end: cells named by their labels; results.csv with
    /// the axis's labels, the settings each bundle set, and the final train accuracy and best
    /// epoch of each cell's metrics.csv; `--results` puts results.csv and the figures in a
    /// directory of their own, and `--collect` fills in what an older result.json lacks.
    func testBundleAxisSweepCollectsIntoTheResultsDirectory() throws {
        try Subprocess.requireFashionMNIST()
        let (dir, path) = try writeSweep("""
        {"name": "tiny-bundles", "expected_time": "seconds", "ranks": 2,
         "fixed": {"model": "mlp", "epochs": 2, "train_subset": 256, "test_subset": 200, "batch_size": 64, "label_noise": 0.5},
         "axes": {"method": [{"label": "sgd", "sam": "none", "lr": 0.1}, {"sam": "sam", "rho": 0.1}, {"label": "late", "sam": "sam", "rho": 0.1, "sam_from": 0.5}]},
         "figures": [{"x": "method", "series": "label_noise", "y": ["accuracy", "best", "train_accuracy"]},
                     {"x": "epoch", "series": "method", "per": "label_noise", "y": ["accuracy", "train_accuracy"]}]}
        """)
        defer { try? FileManager.default.removeItem(at: dir) }
        let out = dir.appendingPathComponent("out").path, results = dir.appendingPathComponent("docs/studies/tiny").path
        let run = try Subprocess.run(Subprocess.samtrain, ["sweep", path, "--out", out, "--results", results], timeout: 300)
        XCTAssertEqual(run.status, 0, run.output)
        XCTAssertFalse(FileManager.default.fileExists(atPath: out + "/results.csv"), "results.csv belongs in --results")
        let table = try CSVTable(path: results + "/results.csv")
        XCTAssertEqual(Array(table.columns.prefix(2)), ["cell", "method"])
        XCTAssertEqual(Array(table.columns.suffix(SweepRunner.resultColumns.count)), SweepRunner.resultColumns)
        func column(_ name: String) throws -> [String] { let i = try table.column(name, source: "results.csv"); return table.rows.map { $0[i] } }
        XCTAssertEqual(try column("cell"), ["method=sgd", "method=sam=sam,rho=0.1", "method=late"])
        XCTAssertEqual(try column("method"), ["sgd", "sam=sam,rho=0.1", "late"])
        XCTAssertEqual(try column("sam"), ["none", "sam", "sam"])
        XCTAssertEqual(try column("rho"), ["", "0.1", "0.1"])
        XCTAssertEqual(try column("lr"), ["0.1", "", ""])
        XCTAssertEqual(try column("label-noise"), ["0.5", "0.5", "0.5"])
        // The cost: 2 epochs of 4 steps; SAM from half of them on takes the last 4.
        XCTAssertEqual(try column("sam_steps"), ["0", "8", "4"])
        for (row, cell) in zip(table.rows, ["method=sgd", "method=sam=sam,rho=0.1", "method=late"]) {
            let metricsPath = "\(out)/\(cell)/metrics.csv"
            let metrics = try CSVTable(path: metricsPath)
            let (epoch, train, test) = try (metrics.column("epoch", source: metricsPath), metrics.column("train_acc", source: metricsPath), metrics.column("test_acc", source: metricsPath))
            XCTAssertEqual(metrics.rows.count, 2)
            let trainAccuracy = try XCTUnwrap(Double(row[try table.column("final_train_acc", source: "")]))
            XCTAssertEqual(trainAccuracy, Double(metrics.rows[1][train])!, accuracy: 5e-5, cell)
            let best = metrics.rows.max { Double($0[test])! < Double($1[test])! }!
            XCTAssertEqual(row[try table.column("best_test_epoch", source: "")], best[epoch], cell)
            XCTAssertEqual(Double(row[try table.column("best_test_acc", source: "")])!, Double(best[test])!, accuracy: 5e-5, cell)
            // Not resumed: each epoch's examples at its rate are its seconds.
            let epochSeconds = try metrics.column("seconds", source: metricsPath)
            let trainSeconds = try XCTUnwrap(Double(row[try table.column("train_seconds", source: "")]))
            XCTAssertEqual(trainSeconds, metrics.rows.map { Double($0[epochSeconds])! }.reduce(0, +), accuracy: 0.06, cell)
        }
        let figure = results + "/accuracy+best+train_accuracy-vs-method-per-label-noise"
        if run.stdout.contains("figure: ") {
            XCTAssertTrue(FileManager.default.fileExists(atPath: figure + ".svg"), run.output)
            let svg = try String(contentsOfFile: figure + ".svg", encoding: .utf8)
            for text in ["sam=sam,rho=0.1", "label-noise = 0.5, final train"] { XCTAssertTrue(svg.contains(text), "\(text) not in the figure") }
            // Over the epochs, from each cell's metrics.csv: a line per cell and measure, a chart per noise level.
            let byEpoch = results + "/accuracy+train_accuracy-vs-epoch-per-method-label-noise-0.5"
            let curves = try String(contentsOfFile: byEpoch + ".svg", encoding: .utf8)
            for text in ["tiny-bundles: label-noise = 0.5", "method = sgd, test", "method = late, train", "epoch"] {
                XCTAssertTrue(curves.contains(text), "\(text) not in the figure")
            }
            let sweep = try SweepFile(path: path, quick: false)
            let charts = try SweepFigure.epochCharts(sweep.figures[1], cells: sweep.cells, directory: out, title: sweep.name)
            XCTAssertEqual(charts.map(\.name), ["accuracy+train_accuracy-vs-epoch-per-method-label-noise-0.5"])
            XCTAssertEqual(charts[0].chart.series.map(\.points.count), Array(repeating: 2, count: 6), "3 cells × 2 measures, 2 epochs each")
            let late = try CSVTable(path: out + "/method=late/metrics.csv")
            XCTAssertEqual(charts[0].chart.series[5].points.map(\.y), late.rows.map { Double($0[try! late.column("train_acc", source: "")])! })
        } else {
            XCTAssertTrue(run.stdout.contains("figure not drawn: gnuplot"), run.output)
        }

        // A result.json from before the train accuracy, the best epoch and the cost were recorded.
        let old = out + "/method=late/result.json"
        var json = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: old))) as? [String: Any])
        XCTAssertNotNil(json["finalTrainAccuracy"])
        json["finalTrainAccuracy"] = nil
        json["bestTestEpoch"] = nil
        json["samSteps"] = nil
        json["trainSeconds"] = nil
        try JSONSerialization.data(withJSONObject: json).write(to: URL(fileURLWithPath: old))
        let again = dir.appendingPathComponent("again").path
        let collected = try Subprocess.run(Subprocess.samtrain, ["sweep", path, "--out", out, "--collect", "--results", again], timeout: 60)
        XCTAssertEqual(collected.status, 0, collected.output)
        XCTAssertEqual(try CSVTable(path: again + "/results.csv").rows, table.rows)
        XCTAssertTrue(collected.stdout.contains("results: \(again)/results.csv"), collected.output)

        let refused = try Subprocess.run(Subprocess.samtrain, ["sweep", path, "--out", out, "--cell", "method=sgd", "--results", again], timeout: 60)
        XCTAssertNotEqual(refused.status, 0)
        XCTAssertTrue(refused.stderr.contains("--results does not go with --cell"), refused.output)
    }

    /// A cell's cost when its second epoch was resumed mid-way: the epoch counts whole at its
    /// measured rate (its row's seconds are only the resumed part), and the SAM steps follow
    /// the schedule config.json records.
    func testCostOfAResumedCellCountsWholeEpochs() throws {
        let (dir, path) = try writeSweep("""
        {"name": "cost", "expected_time": "seconds", "ranks": 2, "fixed": {"model": "mlp", "epochs": 2}, "axes": {"rho": [0.1]}}
        """)
        defer { try? FileManager.default.removeItem(at: dir) }
        let sweep = try SweepFile(path: path, quick: false)
        let cellDirectory = dir.appendingPathComponent("rho=0.1").path
        try FileManager.default.createDirectory(atPath: cellDirectory, withIntermediateDirectories: true)
        try """
        epoch,step,train_loss,train_acc,test_loss,test_acc,images_per_s,seconds
        1,4,2.0,0.3,1.9,0.35,64,4.0
        2,8,1.5,0.5,1.4,0.55,32,2.0
        """.write(toFile: cellDirectory + "/metrics.csv", atomically: true, encoding: .utf8)
        try #"{"settings": {"batch_size": 64, "sam": "sam", "sam_every": 2, "sam_from": 0.5}}"#
            .write(toFile: cellDirectory + "/config.json", atomically: true, encoding: .utf8)
        let runner = SweepRunner(sweep: sweep, directory: dir.path, samtrain: "samtrain")
        let result = try runner.summarize(cell: sweep.cells[0], directory: cellDirectory, seconds: 1)
        XCTAssertEqual(try XCTUnwrap(result.trainSeconds), 4 + 8, accuracy: 1e-9, "epoch 2: 4 steps of 64 at 32 images/s")
        XCTAssertEqual(result.samSteps, 2, "steps 4 and 6 of 0…7")
        XCTAssertEqual(result.bestTestEpoch, 2)

        try #"{"settings": {"batch_size": 64, "sam": "none", "sam_every": 1, "sam_from": 0}}"#
            .write(toFile: cellDirectory + "/config.json", atomically: true, encoding: .utf8)
        XCTAssertEqual(try runner.summarize(cell: sweep.cells[0], directory: cellDirectory, seconds: 1).samSteps, 0)
        try FileManager.default.removeItem(atPath: cellDirectory + "/config.json")
        let bare = try runner.summarize(cell: sweep.cells[0], directory: cellDirectory, seconds: 1)
        XCTAssertNil(bare.samSteps, "no config.json: the cost is unknown, not 0")
        XCTAssertNil(bare.trainSeconds)
    }

    /// SIGTERM to a running sweep stops its cell (mpirun and the ranks) within seconds and
    /// exits 143 with a message; the rerun skips the finished cell and resumes the
    /// interrupted one from its checkpoint.
    func testInterruptedSweepStopsItsCellAndTheRerunResumesIt() throws {
        try Subprocess.requireFashionMNIST()
        let (dir, path) = try writeSweep("""
        {"name": "tiny", "expected_time": "seconds", "ranks": 2,
         "fixed": {"model": "mlp", "epochs": 12, "train_subset": 1024, "batch_size": 64},
         "axes": {"seed": [1, 2]}}
        """)
        defer { try? FileManager.default.removeItem(at: dir) }
        let out = dir.appendingPathComponent("out").path
        let second = out + "/seed=2"
        let first = try Subprocess.run(Subprocess.samtrain, ["sweep", path, "--out", out], timeout: 300,
                                       killWhen: { !CheckpointDirectory.list(second).isEmpty }, interrupt: SIGTERM)
        XCTAssertTrue(first.killed, "the sweep ended before it could be interrupted:\n\(first.output)")
        XCTAssertFalse(first.timedOut, first.output)
        XCTAssertEqual(first.status, 128 + SIGTERM, first.output)
        XCTAssertTrue(first.stderr.contains("interrupted by SIGTERM at cell seed=2 (1 of 2 cells finished)"), first.output)
        XCTAssertFalse(FileManager.default.fileExists(atPath: second + "/result.json"))
        usleep(500_000)
        let strays = ((try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []).filter { entry in
            guard Int32(entry) != nil, let cmdline = FileManager.default.contents(atPath: "/proc/\(entry)/cmdline") else { return false }
            return String(decoding: cmdline, as: UTF8.self).contains(second)
        }
        XCTAssertEqual(strays, [], "processes of the interrupted cell still run")

        let rerun = try Subprocess.run(Subprocess.samtrain, ["sweep", path, "--out", out], timeout: 300)
        XCTAssertEqual(rerun.status, 0, rerun.output)
        XCTAssertTrue(rerun.stdout.contains("seed=1: done before"), rerun.output)
        XCTAssertTrue(rerun.stdout.contains("seed=2: resuming"), rerun.output)
        let log = try String(contentsOfFile: second + "/train.log", encoding: .utf8)
        XCTAssertTrue(log.contains("resumed at step"), log)
        XCTAssertEqual(try String(contentsOfFile: out + "/results.csv", encoding: .utf8).split(separator: "\n").count, 3)
    }

    /// `--parallel 2` runs two cells at once (their time windows overlap) and gives the rows of
    /// a sequential run; TensorBoard's reader lists the cells as runs with their scalars;
    /// `--collect` rebuilds results.csv, and names the cell that is not finished.
    func testParallelSweepOverlapsCellsAndCollectNamesUnfinishedCells() throws {
        try Subprocess.requireFashionMNIST()
        let (dir, path) = try writeSweep("""
        {"name": "tiny", "expected_time": "seconds", "ranks": 2,
         "fixed": {"model": "mlp", "epochs": 1, "train_subset": 512, "batch_size": 64, "test_subset": 500},
         "axes": {"seed": [1, 2]}}
        """)
        defer { try? FileManager.default.removeItem(at: dir) }
        let parallel = dir.appendingPathComponent("parallel").path, sequential = dir.appendingPathComponent("sequential").path
        let p = try Subprocess.run(Subprocess.samtrain, ["sweep", path, "--out", parallel, "--parallel", "2"], timeout: 300)
        XCTAssertEqual(p.status, 0, p.output)
        let s = try Subprocess.run(Subprocess.samtrain, ["sweep", path, "--out", sequential], timeout: 300)
        XCTAssertEqual(s.status, 0, s.output)

        let windows = try ["seed=1", "seed=2"].map { cell -> (Double, Double) in
            let r = try JSONDecoder().decode(SweepRunner.Result.self, from: Data(contentsOf: URL(fileURLWithPath: "\(parallel)/\(cell)/result.json")))
            return (try XCTUnwrap(r.started), try XCTUnwrap(r.ended))
        }
        XCTAssertLessThan(max(windows[0].0, windows[1].0), min(windows[0].1, windows[1].1), "the cells did not run at the same time: \(windows)")
        func rows(_ out: String) throws -> [String] {
            // Every column but the last two, the times.
            try String(contentsOfFile: out + "/results.csv", encoding: .utf8).split(separator: "\n").map { $0.split(separator: ",", omittingEmptySubsequences: false).dropLast(2).joined(separator: ",") }
        }
        let parallelRows = try rows(parallel)
        XCTAssertEqual(parallelRows.count, 3, parallelRows.joined(separator: "\n"))
        XCTAssertEqual(parallelRows, try rows(sequential))

        if let runs = try TensorBoardReader.scalars(logdir: parallel) {
            XCTAssertEqual(runs.keys.sorted(), ["seed=1", "seed=2"])
            for (cell, row) in zip(["seed=1", "seed=2"], parallelRows.dropFirst()) {
                let accuracy = try XCTUnwrap(runs[cell]?.values["epoch/test_acc"]?[8], "\(cell): \(runs[cell]?.values.keys.sorted() ?? [])")
                XCTAssertTrue(row.contains(String(format: ",%.4f,", accuracy)), "\(cell): TensorBoard's test_acc \(accuracy), results.csv \(row)")
            }
        }

        try FileManager.default.removeItem(atPath: parallel + "/results.csv")
        let collected = try Subprocess.run(Subprocess.samtrain, ["sweep", path, "--out", parallel, "--collect"], timeout: 60)
        XCTAssertEqual(collected.status, 0, collected.output)
        XCTAssertEqual(try rows(parallel), parallelRows)
        try FileManager.default.removeItem(atPath: parallel + "/seed=2/result.json")
        let unfinished = try Subprocess.run(Subprocess.samtrain, ["sweep", path, "--out", parallel, "--collect"], timeout: 60)
        XCTAssertEqual(unfinished.status, 1, unfinished.output)
        XCTAssertTrue(unfinished.stderr.contains("--collect: 1 of 2 cells in \(parallel) are not finished: seed=2 (at checkpoint-step0000008.safetensors)"), unfinished.output)
        XCTAssertEqual(unfinished.stderr.split(separator: "\n").count, 1, unfinished.stderr)

        // Bad input: one line, a non-zero exit, nothing started.
        for (args, message) in [(["--parallel", "0"], "--parallel 0: run at least 1 cell at a time"),
                                (["--cell", "seed=3"], "--cell seed=3: no such cell"),
                                (["--collect", "--slurm"], "--slurm and --collect do not go together"),
                                (["--partition", "x"], "sbatch options go with --slurm")] {
            let r = try Subprocess.run(Subprocess.samtrain, ["sweep", path, "--out", dir.appendingPathComponent("bad").path] + args, timeout: 60)
            XCTAssertNotEqual(r.status, 0, "\(args)")
            XCTAssertTrue(r.stderr.contains(message), "\(args): \(r.output)")
            XCTAssertEqual(r.stderr.split(separator: "\n").count, 1, r.stderr)
        }
        // --slurm where there is no sbatch.
        let noSlurm = try Subprocess.run(Subprocess.samtrain, ["sweep", path, "--out", dir.appendingPathComponent("bad").path, "--slurm"],
                                         environment: ["PATH": "/nonexistent"], timeout: 60)
        XCTAssertEqual(noSlurm.status, 1, noSlurm.output)
        XCTAssertTrue(noSlurm.stderr.contains("--slurm: sbatch is not on PATH"), noSlurm.output)
    }
}
