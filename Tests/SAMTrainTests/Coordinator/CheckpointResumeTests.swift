import Foundation
import XCTest
@testable import SAMTrain

/// Checkpoints and resume, end to end under mpirun.
final class CheckpointResumeTests: XCTestCase {
    /// 2 epochs of 40 steps of the cnn, a checkpoint every 7 steps (mid-epoch).
    func run(out: String, _ extra: [String] = []) -> [String] {
        ["train", "--model", "cnn", "--epochs", "2", "--train-subset", "2560", "--batch-size", "64",
         "--checkpoint-every", "7", "--keep", "2", "--log-every", "5", "--out", out] + extra
    }

    /// metrics.csv's epoch rows without their times (images/s and seconds).
    func epochResults(_ dir: String) throws -> [[String]] {
        try CSVTable(path: dir + "/metrics.csv").rows.map { Array($0.prefix(6)) }
    }

    /// metrics.csv's seconds of epoch `epoch` (from 1).
    func epochSeconds(_ dir: String, epoch: Int) throws -> Double {
        let table = try CSVTable(path: dir + "/metrics.csv")
        let column = try table.column("seconds", source: dir)
        return try XCTUnwrap(Double(table.rows[epoch - 1][column]))
    }

    func finalCheckpoint(_ dir: String) throws -> Data {
        try XCTUnwrap(FileManager.default.contents(atPath: dir + "/checkpoint-step0000080.safetensors"), "no final checkpoint in \(dir)")
    }

    func testRunKilledMidEpochResumesBitIdentically() throws {
        try Subprocess.requireFashionMNIST()
        let root = Subprocess.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: root) }
        let a = root.appendingPathComponent("a").path, b = root.appendingPathComponent("b").path

        let whole = try Subprocess.mpirun(2, run(out: a))
        XCTAssertEqual(whole.status, 0, whole.output)

        // The same run, killed with SIGKILL (mpirun and both ranks) once step 21 is saved.
        let killed = try Subprocess.mpirun(2, run(out: b), timeout: 120,
                                           killWhen: { FileManager.default.fileExists(atPath: b + "/checkpoint-step0000021.safetensors") })
        XCTAssertTrue(killed.killed, "the run ended before it could be killed:\n\(killed.output)")
        XCTAssertNil(FileManager.default.contents(atPath: b + "/checkpoint-step0000080.safetensors"))
        // --keep 2; a new checkpoint is renamed into place before the oldest is pruned, so a
        // kill between the two leaves one more, never fewer.
        let kept = CheckpointDirectory.list(b)
        XCTAssertTrue((2...3).contains(kept.count), "--keep 2: \(kept)")
        XCTAssertTrue(kept.first?.hasSuffix("checkpoint-step0000021.safetensors") == true, "\(kept)")
        let earlierSeconds = try XCTUnwrap(Checkpoint.read(from: kept[0]).metadata["epoch_seconds"].flatMap(Double.init))
        XCTAssertGreaterThan(earlierSeconds, 0)

        let resumed = try Subprocess.mpirun(2, run(out: b, ["--resume", b]))
        XCTAssertEqual(resumed.status, 0, resumed.output)
        XCTAssertTrue(resumed.stdout.contains("resumed at step"), resumed.output)
        XCTAssertEqual(try finalCheckpoint(a), try finalCheckpoint(b), "resumed parameters differ from the uninterrupted run's")

        // Metrics: the step and epoch records, the CSV and the configuration.
        let jsonl = try String(contentsOfFile: a + "/metrics.jsonl", encoding: .utf8).split(separator: "\n")
        let records = try jsonl.map { try JSONSerialization.jsonObject(with: Data($0.utf8)) as! [String: Any] }
        XCTAssertEqual(records.filter { $0["kind"] as? String == "epoch" }.count, 2)
        let step = try XCTUnwrap(records.first { $0["kind"] as? String == "step" })
        for key in ["step", "epoch", "lr", "rho", "loss", "loss_perturbed", "sharpness", "accuracy", "grad_norm", "epsilon_norm", "images_per_s", "seconds_per_step"] {
            XCTAssertNotNil(step[key], "step record lacks \(key)")
        }
        // Seconds per step after a resume are over the steps this process ran (4 at step 25),
        // not over the epoch's 25: about those of the same process's next epoch (step 45), not a
        // sixth of them. (One process against itself: the machine's load does not matter.)
        func secondsPerStep(_ dir: String, step: Int) throws -> Double {
            let lines = try String(contentsOfFile: dir + "/metrics.jsonl", encoding: .utf8).split(separator: "\n")
            let record = try XCTUnwrap(lines.map { try JSONSerialization.jsonObject(with: Data($0.utf8)) as! [String: Any] }
                .last { $0["kind"] as? String == "step" && $0["step"] as? Int == step }, "no step \(step) in \(dir)")
            return (record["seconds_per_step"] as! [String: Double]).values.reduce(0, +)
        }
        let nextEpoch = try secondsPerStep(b, step: 45), afterResume = try secondsPerStep(b, step: 25)
        XCTAssertGreaterThan(afterResume, 0.4 * nextEpoch, "seconds per step after the resume: \(afterResume), in the next epoch \(nextEpoch)")
        // The epoch resumed at step 21 is recorded whole: its train loss and accuracy are the
        // uninterrupted run's bit for bit (the checkpoint kept every rank's totals so far), and
        // its seconds include the killed process's 21 steps.
        XCTAssertEqual(try epochResults(b), try epochResults(a), "the resumed run's epoch records differ")
        let resumedEpoch = try epochSeconds(b, epoch: 1)
        XCTAssertGreaterThan(resumedEpoch, earlierSeconds, "epoch 1's seconds leave out the killed process's \(earlierSeconds) s")
        let csv = try String(contentsOfFile: a + "/metrics.csv", encoding: .utf8).split(separator: "\n")
        XCTAssertEqual(csv.count, 3)
        XCTAssertTrue(csv[0].hasPrefix("epoch,step,train_loss"))
        let config = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: a + "/config.json"))) as! [String: Any]
        XCTAssertEqual(config["world_size"] as? Int, 2)
        XCTAssertNotNil((config["versions"] as? [String: String])?["mpi"])

        // A resume with other settings is refused, listing them.
        let other = try Subprocess.mpirun(2, run(out: b, ["--resume", a + "/checkpoint-step0000077.safetensors", "--seed", "5", "--lr", "0.1"]))
        XCTAssertNotEqual(other.status, 0)
        XCTAssertTrue(other.stderr.contains("seed: checkpoint 0, now 5") && other.stderr.contains("lr: checkpoint 0.05, now 0.1"), other.output)

        // `samtrain eval` gives the same figures with 1 and 2 ranks.
        let e1 = try Subprocess.mpirun(1, ["eval", "--checkpoint", a + "/checkpoint-step0000080.safetensors"])
        let e2 = try Subprocess.mpirun(2, ["eval", "--checkpoint", a + "/checkpoint-step0000080.safetensors"])
        XCTAssertEqual(e1.status, 0, e1.output)
        let accuracy = { (r: Subprocess.Result) in r.stdout.components(separatedBy: "test_acc ").last?.prefix(6) }
        XCTAssertEqual(accuracy(e1), accuracy(e2))
        XCTAssertTrue(whole.stdout.contains("test_acc \(accuracy(e1) ?? "?")"), "eval disagrees with the run's last epoch line:\n\(whole.stdout)\n\(e1.stdout)")

        try checkPythonSafetensorsReads(a + "/checkpoint-step0000080.safetensors")
    }

    /// The stateful variants resume bit-exactly: their per-slot state (F-SAM's momentum per
    /// micro-shard, LookSAM's g_v per rank group, VaSSO's d under the global scope) is in
    /// the checkpoint. Stopped at step 5 (--max-steps leaves the schedule alone), resumed,
    /// the last checkpoint equals an uninterrupted run's byte for byte.
    func testStatefulVariantsResumeBitIdentically() throws {
        try Subprocess.requireFashionMNIST()
        let root = Subprocess.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: root) }
        let cases: [(String, [String], String)] = [
            ("fsam", ["--sam", "fsam", "--m", "16", "--fsam-sigma", "0.5"], "samtrain.rank1.variant.fsam_momentum.slot1"),
            ("looksam", ["--sam", "looksam", "--m", "64", "--looksam-k", "3"], "samtrain.rank1.variant.looksam_gv.slot0"),
            ("vasso", ["--sam", "vasso", "--scope", "global"], "samtrain.rank0.variant.vasso_d.slot0"),
        ]
        for (name, flags, tensor) in cases {
            let a = root.appendingPathComponent(name + "-a").path, b = root.appendingPathComponent(name + "-b").path
            let common = ["train", "--model", "mlp", "--epochs", "2", "--train-subset", "512", "--batch-size", "64",
                          "--checkpoint-every", "5", "--log-every", "100"] + flags
            let whole = try Subprocess.mpirun(2, common + ["--out", a])
            XCTAssertEqual(whole.status, 0, whole.output)
            let first = try Subprocess.mpirun(2, common + ["--out", b, "--max-steps", "5"])
            XCTAssertEqual(first.status, 0, first.output)
            let saved = try Checkpoint.read(from: b + "/checkpoint-step0000005.safetensors")
            XCTAssertNotNil(saved.file.tensor(tensor), "\(name): no \(tensor) in the checkpoint")
            let resumed = try Subprocess.mpirun(2, common + ["--out", b, "--resume", b])
            XCTAssertEqual(resumed.status, 0, resumed.output)
            let last = "/checkpoint-step0000016.safetensors"
            XCTAssertEqual(FileManager.default.contents(atPath: a + last), FileManager.default.contents(atPath: b + last),
                           "\(name): the resumed run differs from the uninterrupted one")
        }
    }

    /// Python's `safetensors` library reads our file, with the expected names and shapes.
    func checkPythonSafetensorsReads(_ path: String) throws {
        let probe = try Subprocess.run("/usr/bin/env", ["python3", "-c", "import safetensors, numpy"])
        if probe.status != 0 {
            _ = try Subprocess.run("/usr/bin/env", ["python3", "-m", "pip", "install", "-q", "safetensors", "numpy"], timeout: 180)
        }
        let script = """
        import json, sys
        from safetensors.numpy import load_file
        from safetensors import safe_open
        t = load_file(sys.argv[1])
        with safe_open(sys.argv[1], framework="numpy") as f: meta = f.metadata()
        print(json.dumps({"shapes": {k: list(v.shape) for k, v in t.items()}, "dtype": str(t["0.weight"].dtype), "step": meta["step"]}))
        """
        let r = try Subprocess.run("/usr/bin/env", ["python3", "-c", script, path])
        guard r.status == 0 else {
            if r.stderr.contains("No module named") { throw XCTSkip("Python's safetensors is not installable here: \(r.stderr)") }
            XCTFail("python could not read the checkpoint: \(r.output)")
            return
        }
        let out = try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as! [String: Any]
        let shapes = out["shapes"] as! [String: [Int]]
        XCTAssertEqual(shapes["0.weight"], [32, 1, 3, 3])
        XCTAssertEqual(shapes["1.running_var"], [32])
        XCTAssertEqual(shapes["15.weight"], [256, 3136])
        XCTAssertEqual(shapes["17.bias"], [10])
        XCTAssertEqual(shapes["optimizer.momentum_buffer.10.weight"], [64, 64, 3, 3])
        XCTAssertEqual(out["dtype"] as? String, "float32")
        XCTAssertEqual(out["step"] as? String, "80")
    }

    func testUnwritableOutputDirectoryIsRefused() throws {
        try Subprocess.requireFashionMNIST()
        let r = try Subprocess.mpirun(2, ["train", "--model", "mlp", "--out", "/proc/samtrain-cannot-write-here"], timeout: 30)
        XCTAssertNotEqual(r.status, 0)
        XCTAssertLessThan(r.seconds, 10)
        XCTAssertTrue(r.stderr.contains("--out /proc/samtrain-cannot-write-here"), r.output)
    }

    /// Processes whose command line mentions `fragment` (a run's --out directory).
    static func processes(mentioning fragment: String) -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []).compactMap { entry in
            guard Int32(entry) != nil, Int32(entry) != getpid(), let cmdline = FileManager.default.contents(atPath: "/proc/\(entry)/cmdline") else { return nil }
            let text = String(decoding: cmdline, as: UTF8.self).replacingOccurrences(of: "\u{0}", with: " ")
            return text.contains(fragment) ? "\(entry): \(text)" : nil
        }
    }

    /// SIGTERM to launch/train (what a scheduler sends before preemption) mid-epoch: the
    /// ranks agree on one step, rank 0 writes that step's checkpoint, every rank exits 75 and
    /// none outlives mpirun; the resumed run ends bit-identical to an uninterrupted one.
    func testSIGTERMStopsAtAStepBoundaryAndTheResumeIsBitIdentical() throws {
        try Subprocess.requireFashionMNIST()
        let root = Subprocess.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: root) }
        let a = root.appendingPathComponent("a").path, b = root.appendingPathComponent("b").path
        // 3 epochs of 20 steps of the cnn; periodic checkpoints only at epoch ends.
        func args(_ out: String) -> [String] {
            ["--model", "cnn", "--epochs", "3", "--train-subset", "1280", "--batch-size", "64", "--test-subset", "500",
             "--log-every", "1", "--out", out]
        }
        let whole = try Subprocess.mpirun(2, ["train"] + args(a), timeout: 300)
        XCTAssertEqual(whole.status, 0, whole.output)

        let launcher = Subprocess.repositoryRoot.appendingPathComponent("launch/train").path
        let env = ["SAMTRAIN_BIN": Subprocess.samtrain, "NP": "2"]
        let jsonl = b + "/metrics.jsonl"
        var signalled = Date()
        let stopped = try Subprocess.run("/bin/bash", [launcher] + args(b), environment: env, timeout: 300, killWhen: {
            // Mid-epoch 2: step 25 recorded.
            guard let text = try? String(contentsOfFile: jsonl, encoding: .utf8), text.contains("\"step\":25}") || text.contains("\"step\":25,") else { return false }
            signalled = Date()
            return true
        }, interrupt: SIGTERM)
        let stopSeconds = Date().timeIntervalSince(signalled)
        XCTAssertTrue(stopped.killed, "the run ended before it could be stopped:\n\(stopped.output)")
        XCTAssertEqual(stopped.status, StopRequest.exitStatus, stopped.output)
        XCTAssertLessThan(stopSeconds, 10, "SIGTERM → exit took \(stopSeconds) s")
        print("SIGTERM to launch/train → exit \(stopped.status) in \(String(format: "%.2f", stopSeconds)) s")
        usleep(1_000_000)
        XCTAssertEqual(CheckpointResumeTests.processes(mentioning: b), [], "a rank outlived mpirun by 1 s")

        // The checkpoint of the step the ranks agreed on, named in the one stop line.
        let line = try XCTUnwrap(stopped.stderr.split(separator: "\n").first { $0.contains("samtrain: stopped by") }, stopped.output)
        let step = try XCTUnwrap(line.components(separatedBy: "after step ").last?.split(separator: ":").first.flatMap { Int($0) }, String(line))
        XCTAssertTrue(step >= 25 && step < 60, "stopped at step \(step): \(line)")
        let saved = b + String(format: "/checkpoint-step%07d.safetensors", step)
        XCTAssertTrue(line.contains(saved), String(line))
        XCTAssertEqual(CheckpointDirectory.list(b).first, saved)
        XCTAssertEqual(try Checkpoint.read(from: saved).metadata["step"], "\(step)")

        let resumed = try Subprocess.run("/bin/bash", [launcher] + args(b) + ["--resume", b], environment: env, timeout: 300)
        XCTAssertEqual(resumed.status, 0, resumed.output)
        XCTAssertTrue(resumed.stdout.contains("resumed at step \(step) of 60"), resumed.output)
        let last = "/checkpoint-step0000060.safetensors"
        XCTAssertEqual(FileManager.default.contents(atPath: a + last), FileManager.default.contents(atPath: b + last),
                       "the resumed run's parameters differ from the uninterrupted run's")
        XCTAssertEqual(try epochResults(b), try epochResults(a), "the resumed run's epoch records differ")
    }

    /// An --out directory in use by a live run is refused (here the test holds its lock).
    func testOutputDirectoryInUseIsRefused() throws {
        try Subprocess.requireFashionMNIST()
        let dir = Subprocess.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let lock = try DirectoryLock(directory: dir.path)
        try Subprocess.expectFailure(["train", "--model", "mlp", "--out", dir.path], naming: ["--out \(dir.path) is in use by a running samtrain", "pid \(getpid())"])
        withExtendedLifetime(lock) {}
    }
}
