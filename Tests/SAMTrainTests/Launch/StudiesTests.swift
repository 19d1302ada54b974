import Foundation
import XCTest

/// launch/studies' bookkeeping around `samtrain sweep`, with a stand-in binary (the real
/// studies take hours): it shares the cells two studies have in common, probes the noisy-label
/// cells on the true labels with the sweep file's probe settings, saves every finished cell's
/// record under docs/studies/, and on a machine without the runs restores those records instead
/// of running their cells again.
final class StudiesTests: XCTestCase {
    /// A stand-in for `samtrain`: `sweep FILE --out DIR` finishes the cells listed in
    /// $CELLS/<name> (files it finds already there are kept), `--collect` lists the cells in
    /// results.csv, and `sharpness` prints its own arguments as the probe's JSON.
    static let fake = """
        #!/bin/bash
        set -eu
        echo "$*" >> "$CALLS"
        case "$1" in
        sweep)
            file=$2; shift 2; out=; collect=; results=
            while [ $# -gt 0 ]; do
                case $1 in --out) out=$2; shift ;; --results) results=$2; shift ;; --collect) collect=1 ;; esac
                shift
            done
            name=$(basename "$file" .json)
            if [ -n "$collect" ]; then mkdir -p "$results"; ls "$out" > "$results/results.csv"; exit 0; fi
            for cell in $(cat "$CELLS/$name"); do
                d=$out/$cell; mkdir -p "$d"
                [ -f "$d/result.json" ] && continue
                [ -f "$d/metrics.csv" ] || echo "trained as $name/$cell" > "$d/metrics.csv"
                [ -f "$d/config.json" ] || echo '{}' > "$d/config.json"
                ls "$d"/checkpoint-step*.safetensors > /dev/null 2>&1 || echo w > "$d/checkpoint-step0000010.safetensors"
                echo '{"lambda_max": 1}' > "$d/sharpness.json"
                echo '{"test_accuracy": 0.5}' > "$d/result.json"
            done ;;
        sharpness) echo "{\\"arguments\\": \\"$*\\"}" ;;
        esac
        """

    func testStudiesShareProbeSaveAndRestoreCells() throws {
        let root = Subprocess.temporaryDirectory("samtrain-studies")
        defer { try? FileManager.default.removeItem(at: root) }
        let fm = FileManager.default
        let repo = Subprocess.repositoryRoot
        for dir in ["launch", "sweeps", "cells"] {
            try fm.createDirectory(at: root.appendingPathComponent(dir), withIntermediateDirectories: true)
        }
        try fm.copyItem(at: repo.appendingPathComponent("launch/studies"), to: root.appendingPathComponent("launch/studies"))
        for name in ["label-noise", "late-sam"] {
            try fm.copyItem(at: repo.appendingPathComponent("sweeps/\(name).json"), to: root.appendingPathComponent("sweeps/\(name).json"))
        }
        let fake = root.appendingPathComponent("fake-samtrain").path
        try Self.fake.write(toFile: fake, atomically: true, encoding: .utf8)
        chmod(fake, 0o755)
        func cells(_ name: String, _ list: [String]) throws {
            try list.joined(separator: "\n").write(to: root.appendingPathComponent("cells/\(name)"), atomically: true, encoding: .utf8)
        }
        func read(_ path: String) -> String { (try? String(contentsOf: root.appendingPathComponent(path), encoding: .utf8)) ?? "<missing>" }
        let calls = root.appendingPathComponent("calls").path
        func studies(out: String) throws -> [String] {
            try? fm.removeItem(atPath: calls)
            let r = try Subprocess.run(root.appendingPathComponent("launch/studies").path, ["label-noise", "late-sam"],
                                       environment: ["SAMTRAIN": fake, "OUT": out, "CALLS": calls,
                                                     "CELLS": root.appendingPathComponent("cells").path], timeout: 60)
            XCTAssertEqual(r.status, 0, r.output)
            return read("calls").split(separator: "\n").map(String.init)
        }
        try cells("label-noise", ["label-noise=0.4,method=sgd", "label-noise=0.4,method=sam-0.05"])
        try cells("late-sam", ["method=sgd", "method=sam", "method=sam-from-0.5"])

        var log = try studies(out: "runs")
        // late-sam's SGD and SAM cells are label-noise's runs, copied, not trained again.
        XCTAssertEqual(read("runs/late-sam/method=sgd/metrics.csv"), "trained as label-noise/label-noise=0.4,method=sgd\n")
        XCTAssertEqual(read("runs/late-sam/method=sam/metrics.csv"), "trained as label-noise/label-noise=0.4,method=sam-0.05\n")
        XCTAssertEqual(read("runs/late-sam/method=sam-from-0.5/metrics.csv"), "trained as late-sam/method=sam-from-0.5\n")
        // Every finished cell is probed on the true labels from its last checkpoint, with the
        // sweep file's probe settings, and its record saved with both probes.
        let probes = log.filter { $0.hasPrefix("sharpness") }
        XCTAssertEqual(probes.count, 5, "\(log)")
        let sweep = try JSONSerialization.jsonObject(with: Data(contentsOf: repo.appendingPathComponent("sweeps/label-noise.json"))) as! [String: Any]
        let subset = try XCTUnwrap((sweep["sharpness"] as? [String: Any])?["subset"] as? Int)
        for (study, cell) in [("label-noise", "label-noise=0.4,method=sgd"), ("late-sam", "method=sam-from-0.5")] {
            let record = "docs/studies/\(study)/cells/\(cell)/"
            let probe = read(record + "sharpness-clean.json")
            XCTAssertTrue(probe.contains("--checkpoint runs/\(study)/\(cell)/checkpoint-step0000010.safetensors"), probe)
            XCTAssertTrue(probe.contains("--labels clean") && probe.contains("--subset \(subset)"), probe)
            for file in ["result.json", "metrics.csv", "config.json", "sharpness.json"] {
                XCTAssertEqual(read(record + file), read("runs/\(study)/\(cell)/\(file)"), record + file)
            }
            XCTAssertFalse(fm.fileExists(atPath: root.appendingPathComponent(record + "checkpoint-step0000010.safetensors").path),
                           "a record keeps no weights")
        }
        XCTAssertTrue(read("docs/studies/late-sam/results.csv").contains("method=sam-from-0.5"))

        // Another machine (no runs/): the committed records count as finished cells; only the
        // new cell trains, and only it is probed.
        try cells("late-sam", ["method=sgd", "method=sam", "method=sam-from-0.5", "method=sam-from-0.9"])
        log = try studies(out: "runs-elsewhere")
        XCTAssertEqual(read("runs-elsewhere/late-sam/method=sam-from-0.5/result.json"), read("runs/late-sam/method=sam-from-0.5/result.json"))
        XCTAssertEqual(log.filter { $0.hasPrefix("sharpness") }.count, 1, "\(log)")
        XCTAssertTrue(log.contains { $0.hasPrefix("sharpness") && $0.contains("method=sam-from-0.9") }, "\(log)")
        XCTAssertEqual(read("runs-elsewhere/late-sam/method=sam-from-0.9/metrics.csv"), "trained as late-sam/method=sam-from-0.9\n")
        XCTAssertTrue(fm.fileExists(atPath: root.appendingPathComponent("docs/studies/late-sam/cells/method=sam-from-0.9/sharpness-clean.json").path))
    }
}
