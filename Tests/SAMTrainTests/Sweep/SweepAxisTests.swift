import Foundation
import XCTest
@testable import SAMTrain
@testable import samtrain

/// An axis's values as settings or bundles of settings (`SweepAxis`): how they decode, name
/// cells and override `fixed`, and every way a file can get them wrong (file:line and key).
final class SweepAxisTests: XCTestCase {
    func sweep(_ text: String, quick: Bool = false) throws -> SweepFile {
        try SweepFile(data: Data(text.utf8), source: "s.json", quick: quick)
    }

    func expectError(_ text: String, _ fragments: [String], validate: Bool = false, quick: Bool = false, line: UInt = #line) {
        XCTAssertThrowsError(try { let s = try sweep(text, quick: quick); if validate { try s.validate() } }(), line: line) { e in
            for f in fragments { XCTAssertTrue("\(e)".contains(f), "'\(f)' not in: \(e)", line: line) }
            // (train's parser lists an option's values on lines of their own)
            if !validate { XCTAssertEqual("\(e)".split(separator: "\n").count, 1, "one line: \(e)", line: line) }
        }
    }

    func testBundlesSetSeveralFlagsAndNameTheirCells() throws {
        let s = try sweep("""
        {"fixed": {"model": "cnn", "sam": "sam", "epochs": 2},
         "axes": {
          "label_noise": [0.2, 0.4],
          "method": [{"label": "sgd", "sam": "none"},
                     {"rho": 0.1, "sam": "sam"},
                     {"label": "ASAM ρ/0.5", "sam": "asam", "rho": 0.5, "nesterov": true, "wd_in_ascent": false},
                     {"label": "defaults"}]
         }}
        """)
        XCTAssertEqual(s.cells.count, 8)
        XCTAssertEqual(s.cells.map(\.name).prefix(4), ["label-noise=0.2,method=sgd", "label-noise=0.2,method=rho=0.1,sam=sam",
                                                       "label-noise=0.2,method=ASAM_0.5", "label-noise=0.2,method=defaults"])
        // A default label lists the settings as the file writes them.
        XCTAssertEqual(s.axes[1].values.map(\.label), ["sgd", "rho=0.1,sam=sam", "ASAM ρ/0.5", "defaults"])
        XCTAssertEqual(s.cells[2].labels.map(\.label), ["0.2", "ASAM ρ/0.5"])
        // A bundle's settings replace the fixed ones; true is a flag, false leaves it out.
        XCTAssertEqual(s.cells[0].arguments, ["--epochs", "2", "--model", "cnn", "--label-noise", "0.2", "--sam", "none"])
        XCTAssertEqual(s.cells[2].arguments, ["--epochs", "2", "--model", "cnn", "--label-noise", "0.2", "--sam", "asam", "--rho", "0.5", "--nesterov"])
        XCTAssertEqual(s.cells[3].arguments, ["--epochs", "2", "--model", "cnn", "--sam", "sam", "--label-noise", "0.2"])
        let c = try TrainCommand.configuration(arguments: s.cells[2].arguments)
        XCTAssertEqual(c.samConfiguration.variant.rawValue, "asam")
        XCTAssertEqual(c.samConfiguration.rho, 0.5)
        XCTAssertTrue(c.optimization.nesterov)

        // A plain value and a bundle in one axis; plain axes keep the names they always had.
        let mixed = try sweep(#"{"fixed": {"sam": "sam"}, "axes": {"m": [4, 16, {"label": "global", "scope": "global"}], "rho": [0.02, 0.1]}}"#)
        XCTAssertEqual(mixed.cells.map(\.name), ["m=4,rho=0.02", "m=4,rho=0.1", "m=16,rho=0.02", "m=16,rho=0.1", "m=global,rho=0.02", "m=global,rho=0.1"])
        XCTAssertEqual(mixed.cells[4].arguments, ["--sam", "sam", "--scope", "global", "--rho", "0.02"])
        XCTAssertFalse(mixed.axes[0].values[0].isBundle)
        XCTAssertTrue(mixed.axes[0].values[2].isBundle)

        XCTAssertEqual(SweepAxis.directoryName("SAM ρ = 0.05 / p∞"), "SAM_=_0.05_p_")
        XCTAssertEqual(SweepAxis.directoryName("sam-0.05,x=1+2_a.b"), "sam-0.05,x=1+2_a.b")
        XCTAssertEqual(SweepAxis.directoryName("../etc"), ".._etc")
    }

    /// quick.fixed changes fixed and so loses to an axis's values, as before bundles; quick.axes
    /// replaces a whole axis, bundles included.
    func testQuickAndDataOverridesMeetBundles() throws {
        let text = """
        {"fixed": {"epochs": 10, "data": "/a"},
         "axes": {"model": [{"model": "vit-t4", "epochs": 5, "data": "/b"}, {"model": "cnn"}]},
         "quick": {"fixed": {"epochs": 1, "max_steps": 4},
                   "axes": {"seed": [1]}}}
        """
        let quick = try sweep(text, quick: true)
        XCTAssertEqual(quick.cells.map(\.name), ["model=model=vit-t4,epochs=5,data=_b,seed=1", "model=model=cnn,seed=1"])
        XCTAssertEqual(quick.cells[0].value("epochs"), "5")
        XCTAssertEqual(quick.cells[1].value("epochs"), "1")
        XCTAssertEqual(quick.cells[0].value("max-steps"), "4")
        var overridden = try sweep(text)
        overridden.overrideData("/mine")
        XCTAssertEqual(overridden.cells.map { $0.value("data") }, ["/mine", "/mine"])
        let replaced = try sweep(#"{"axes": {"method": [{"sam": "sam"}, {"sam": "none"}]}, "quick": {"axes": {"method": [{"label": "only", "sam": "none"}]}}}"#, quick: true)
        XCTAssertEqual(replaced.cells.map(\.name), ["method=only"])
    }

    /// Every mistake: one line naming the file, the line of the offending value or key, and the key.
    func testBadBundlesAreRefusedWithLineAndKey() throws {
        let cases: [(String, [String])] = [
            ("{\"axes\": {\n \"method\": [\n  {\"sam\": \"none\"},\n  {}\n ]}}", ["s.json:4: method:", "value 2 is an empty bundle"]),
            ("{\"axes\": {\n \"method\": [\n  {\"sam\": \"none\"},\n  {\"sam\": [\"sam\"]}\n ]}}", ["s.json:4: sam:", "got [\"sam\"]"]),
            ("{\"axes\": {\n \"method\": [\n  {\"sam\": \"none\"},\n  {\"rho\": {\"x\": 1}}\n ]}}", ["s.json:4: rho:", "must be a string, a finite number"]),
            ("{\"axes\": {\n \"method\": [\n  [1],\n  null\n ]}}", ["s.json:3: method:", "a setting", "or a bundle of settings (an object); got [1]"]),
            ("{\"axes\": {\n \"method\": [\n  {\"sam\": \"none\",\n   \"label\": 7}\n ]}}", ["s.json:4: label:", "non-empty string; got 7"]),
            ("{\"axes\": {\n \"method\": [\n  {\"sam\": \"none\", \"label\": \" \"}\n ]}}", ["s.json:3: label:", "non-empty string"]),
            ("{\"axes\": {\n \"method\": [\n  {\"sam\": \"none\", \"label\": \"a\\nb\"}\n ]}}", ["s.json:3: label:", "one line of printable characters"]),
            ("{\"axes\": {\n \"method\": [\n  {\"sam\": \"none\", \"label\": \"\(String(repeating: "x", count: 101))\"}\n ]}}", ["s.json:3: label:", "at most 100 characters"]),
            ("{\"axes\": {\n \"method\": [\n  {\"label\": \"a\", \"sam\": \"none\"},\n  {\"label\": \"a\", \"sam\": \"sam\"}\n ]}}",
             ["s.json:4: method:", "lines 3 and 4 are both labelled a", "its own \"label\""]),
            ("{\"axes\": {\n \"method\": [\n  {\"sam\": \"sam\", \"rho\": 0.1},\n  {\"sam\": \"sam\", \"rho\": 0.1}\n ]}}", ["s.json:4: method:", "both labelled sam=sam,rho=0.1"]),
            ("{\"axes\": {\n \"method\": [\n  {\"label\": \"SAM ρ\", \"sam\": \"sam\"},\n  {\"label\": \"SAM σ\", \"sam\": \"none\"}\n ]}}",
             ["s.json:4: method:", "\"SAM ρ\" (line 3) and \"SAM σ\" (line 4) make the same directory name SAM_"]),
            ("{\"axes\": {\n \"seed\": [1,\n  1]\n}}", ["s.json:3: seed:", "the value 1 is given twice (lines 2 and 3)"]),
            ("{\"axes\": {\n \"rho\": [0.05, 0.1],\n \"method\": [\n  {\"sam\": \"sam\"},\n  {\"sam\": \"sam\",\n   \"rho\": 0.2}\n ]}}",
             ["s.json:6: rho:", "set by the axes rho and method", "one axis only"]),
            ("{\"axes\": {\n \"a\": [{\"sam\": \"none\"}],\n \"b\": [{\"x\": 1}, {\"sam\": \"sam\"}]\n}}", ["s.json:3: sam:", "set by the axes a and b"]),
            ("{\"axes\": {\n \"optimizer\": [{\"sam\": \"none\"}],\n \"recipe\": [{\"optimizer\": \"adamw\"}]\n}}",
             ["s.json:2: optimizer:", "named like the setting optimizer, which the axis recipe varies"]),
            ("{\"axes\": {\n \"method\": [\n  {\"label_noise\": 0.1,\n   \"label-noise\": 0.2}\n ]}}", ["s.json:4: label-noise:", "given twice in one object (as label_noise and label-noise)"]),
            ("{\"axes\": {\n \"label_noise\": [0.1],\n \"label-noise\": [0.2]\n}}", ["s.json:3: label-noise:", "given twice"]),
            ("{\"axes\": {\n \"method\": [\n  {\"sam\": \"none\", \"sam\": \"sam\"}\n ]}}", ["s.json:3: sam:", "given twice in one object"]),
            ("{\"axes\": {\"a\": [{\"label\": \"\(String(repeating: "x", count: 100))\", \"sam\": \"none\"}], \"b\": [{\"label\": \"\(String(repeating: "y", count: 100))\", \"rho\": 1}],\n \"c\": [{\"label\": \"\(String(repeating: "z", count: 60))\", \"m\": 1}]}}",
             ["s.json:1: a:", "has 268 bytes, more than the 255 of a directory name", "shorter labels"]),
            ("{\"axes\": {\"a\": [1, 2, 3, 4, 5, 6, 7, 8, 9, 10],\n \"method\": [\(Array(repeating: "{\"sam\": \"none\"}", count: 1).joined()), \((1...100).map { "{\"seed\": \($0)}" }.joined(separator: ", "))]}}",
             ["s.json", "axes", "10 × 101", "more than the 1000"]),
            ("{\"axes\": {\"method\": [{\(((0..<1001).map { "\"k\($0)\": 1" }).joined(separator: ", "))}]}}", ["method:", "1001 settings, more than the 1000"]),
            ("{\"axes\": {\"rho\": [0.1]},\n \"sharpness\": {\"subset\": 1000, \"rho\": 0.05, \"m\": 128},\n \"quick\": {\n  \"sharpness\": {\"subset\": 64, \"rho\": 0.05, \"m\": 64}}}",
             ["s.json:4: sharpness:", "m 64 is more than the 32 examples each of the 2 ranks probes"]),
            ("{\"axes\": {\"method\": [{\"sam\": \"none\"}]}, \"figures\": [{\"x\": \"method\", \"series\": \"m\", \"y\": [\"accuracy\", \"accuracy\"]}]}",
             ["y:", "without repeats"]),
            ("{\"axes\": {\"method\": [{\"sam\": \"none\"}]}, \"figures\": [{\"x\": \"method\", \"series\": \"m\", \"y\": [\"accuracy\", \"colour\"]}]}", ["y:", "train_accuracy"]),
            // Over the epochs: what metrics.csv has by epoch; a chart per value of an axis.
            ("{\"axes\": {\"method\": [{\"sam\": \"none\"}]}, \"figures\": [{\"x\": \"epoch\", \"series\": \"method\", \"y\": \"lambda\"}]}",
             ["y:", "over the epochs", "test_loss", "train_accuracy"]),
            ("{\"axes\": {\"method\": [{\"sam\": \"none\"}]}, \"figures\": [{\"x\": \"rho\", \"series\": \"method\", \"per\": \"method\"}]}",
             ["per:", "for x epoch only"]),
            ("{\"axes\": {\"method\": [{\"sam\": \"none\"}]},\n \"figures\": [{\"x\": \"epoch\", \"series\": \"method\",\n \"per\": \"label_noise\"}]}",
             ["s.json:3: per:", "label-noise is neither an axis (method) nor a setting of the sweep"]),
        ]
        for (text, fragments) in cases { expectError(text, fragments, quick: text.contains("\"quick\"")) }
        XCTAssertNoThrow(try sweep("{\"axes\": {\"rho\": [0.1]}, \"sharpness\": {\"subset\": 128, \"rho\": 0.05, \"m\": 64}}"))
        let epochs = try sweep("{\"axes\": {\"rho\": [0.1], \"m\": [4]}, \"figures\": [{\"x\": \"epoch\", \"series\": \"m\", \"per\": \"rho\", \"y\": [\"accuracy\", \"train_accuracy\"]}]}")
        XCTAssertEqual(epochs.figures, [SweepFile.Figure(x: "epoch", series: "m", y: ["accuracy", "train_accuracy"], per: "rho")])
        XCTAssertEqual(epochs.figures[0].name, "accuracy+train_accuracy-vs-epoch-per-m")

        // What only train's parser knows: named on the line of the bundle that set it, not of
        // the key's first appearance in the file.
        let data = Subprocess.temporaryDirectory("samtrain-bundle-data")
        defer { try? FileManager.default.removeItem(at: data) }
        try MNISTFiles.write(to: data, train: (64, 28), test: (8, 28))
        let fixed = #""fixed": {"data": "\#(data.path)", "batch_size": 8, "rho": 0.05}"#
        let parsed: [(String, [String])] = [
            ("{\(fixed),\n \"axes\": {\"method\": [\n  {\"sam\": \"sam\", \"rho\": 0.1},\n  {\"sam\": \"nosuch\"}\n ]}}",
             ["s.json:4: cell method=sam=nosuch", "'nosuch'", "--sam"]),
            ("{\(fixed),\n \"axes\": {\"method\": [\n  {\"sam\": \"sam\", \"rho\": 0.1},\n  {\"sam\": \"sam\",\n   \"rho\": -1}\n ]}}",
             ["s.json:5: cell method=sam=sam,rho=-1: --rho -1.0"]),
            ("{\(fixed),\n \"axes\": {\"method\": [\n  {\"sam\": \"sam\"},\n  {\"sam\": \"sam\", \"rhoo\": 0.2}\n ]}}",
             ["s.json:4: cell method=sam=sam,rhoo=0.2", "Unknown option '--rhoo'"]),
            ("{\(fixed),\n \"axes\": {\"method\": [\n  {\"sam\": \"sam\", \"nesterov\": 1}\n ]}}", ["cell method=sam=sam,nesterov=1", "Unexpected argument '1'"]),
            ("{\(fixed),\n \"axes\": {\"method\": [\n  {\"label\": \"ok\", \"m\": 4},\n  {\"label\": \"bad\",\n   \"m\": 3}\n ]}}",
             ["s.json:5: cell method=bad", "--m 3"]),
        ]
        for (text, fragments) in parsed { expectError(text, fragments, validate: true) }
    }

    /// `--m` in a message is not `--momentum`: the line named is the setting's own.
    func testAMessageNamesAFlagOnlyAsAWholeWord() {
        XCTAssertEqual(SweepFile.position(of: "m", in: "--m 3: m must divide the batch"), 0)
        XCTAssertNil(SweepFile.position(of: "m", in: "--momentum -1.0: must be in [0, 1)"))
        XCTAssertEqual(SweepFile.position(of: "rhoo", in: "Unknown option '--rhoo'. Did you mean '--rho'?"), 16)
        XCTAssertEqual(SweepFile.position(of: "rho", in: "Unknown option '--rhoo'. Did you mean '--rho'?"), 39)
    }
}
