import Foundation
import XCTest
@testable import SAMTrain

/// samtrain under a real Slurm: a one-machine cluster (`LocalSlurm`) started for these tests,
/// launch/slurm/train.sbatch, `samtrain sweep --slurm`, and a preempted job that is requeued.
final class SlurmTests: XCTestCase {
    nonisolated(unsafe) static var shared: Result<LocalSlurm, Error>?

    /// The cluster, started by the first test that needs it (its skip reason repeats for the others).
    func cluster() throws -> LocalSlurm {
        if SlurmTests.shared == nil { SlurmTests.shared = Result { try LocalSlurm.start() } }
        return try SlurmTests.shared!.get()
    }

    override class func tearDown() {
        if case .success(let cluster)? = shared { cluster.stop() }
        shared = nil
        super.tearDown()
    }

    static let script = Subprocess.repositoryRoot.appendingPathComponent("launch/slurm/train.sbatch").path

    /// `sbatch launch/slurm/train.sbatch ARGS`; the job id.
    func submit(_ slurm: LocalSlurm, _ arguments: [String], output: String) throws -> String {
        let r = try slurm.run("sbatch", ["--parsable", "--output=\(output)", SlurmTests.script] + arguments,
                              environment: ["SAMTRAIN_BIN": Subprocess.samtrain])
        XCTAssertEqual(r.status, 0, r.output)
        return try XCTUnwrap(r.stdout.split(separator: ";").first.map { $0.trimmingCharacters(in: .whitespacesAndNewlines) }, r.output)
    }

    func newestCheckpoint(_ dir: String) throws -> Data {
        let path = try XCTUnwrap(CheckpointDirectory.list(dir).first, "no checkpoint in \(dir)")
        return try Data(contentsOf: URL(fileURLWithPath: path))
    }

    /// metrics.csv without the timing columns (images/s, seconds).
    func epochRows(_ dir: String) throws -> [String] {
        try String(contentsOfFile: dir + "/metrics.csv", encoding: .utf8).split(separator: "\n").map { $0.split(separator: ",").prefix(6).joined(separator: ",") }
    }

    /// A 2-rank job of launch/slurm/train.sbatch: mpirun takes its slots from the allocation,
    /// and the run ends with the epochs and the parameters of the same run under plain mpirun.
    func testSbatchTrainingJobOfTwoRanks() throws {
        let slurm = try cluster()
        try Subprocess.requireFashionMNIST()
        let root = Subprocess.temporaryDirectory("samtrain-slurm")
        defer { try? FileManager.default.removeItem(at: root) }
        let a = root.appendingPathComponent("a").path, b = root.appendingPathComponent("b").path
        let args = ["--model", "mlp", "--epochs", "2", "--train-subset", "512", "--batch-size", "64", "--test-subset", "200", "--log-every", "4"]
        let reference = try Subprocess.mpirun(2, ["train"] + args + ["--out", a])
        XCTAssertEqual(reference.status, 0, reference.output)

        let output = root.appendingPathComponent("job.out").path
        let job = try submit(slurm, args + ["--out", b], output: output)
        let record = try XCTUnwrap(try slurm.wait(for: job, timeout: 120).first)
        let log = (try? String(contentsOfFile: output, encoding: .utf8)) ?? ""
        XCTAssertEqual(record["JobState"], "COMPLETED", log)
        XCTAssertEqual(record["ExitCode"], "0:0", log)
        XCTAssertTrue(log.contains("train.sbatch: job \(job) (restart 0) on \(LocalSlurm.hostName): 2 ranks × 1 thread(s)"), log)
        XCTAssertTrue(log.contains("ranks: 2, hosts: "), log)
        XCTAssertEqual(try epochRows(b), try epochRows(a))
        XCTAssertEqual(try epochRows(b).count, 3)
        XCTAssertEqual(try newestCheckpoint(b), try newestCheckpoint(a), "the Slurm job's parameters differ from plain mpirun's")
    }

    /// `samtrain sweep FILE --slurm`: one array task per cell, each a 2-rank allocation; a second
    /// submission and an early --collect are refused while it runs; --collect gathers the three
    /// cells once the tasks have finished, and a rerun finds nothing left to submit.
    func testSweepAsSlurmArray() throws {
        let slurm = try cluster()
        try Subprocess.requireFashionMNIST()
        let root = Subprocess.temporaryDirectory("samtrain-slurm-sweep")
        defer { try? FileManager.default.removeItem(at: root) }
        let path = root.appendingPathComponent("sweep.json").path
        try """
        {"name": "tiny", "expected_time": "seconds", "ranks": 2,
         "fixed": {"model": "mlp", "epochs": 1, "train_subset": 512, "batch_size": 64, "test_subset": 200},
         "axes": {"rho": [0.02, 0.05, 0.1]}}
        """.write(toFile: path, atomically: true, encoding: .utf8)
        let out = root.appendingPathComponent("out").path
        let sweep = ["sweep", path, "--out", out]
        let submitted = try Subprocess.run(Subprocess.samtrain, sweep + ["--slurm", "--time=10"], environment: slurm.environment, timeout: 60)
        XCTAssertEqual(submitted.status, 0, submitted.output)
        let job = try XCTUnwrap(submitted.stdout.components(separatedBy: "Slurm array job ").last?.split(separator: " ").first.map(String.init), submitted.output)
        XCTAssertTrue(submitted.stdout.contains("submitted 3 of 3 cells"), submitted.output)

        let again = try Subprocess.run(Subprocess.samtrain, sweep + ["--slurm"], environment: slurm.environment, timeout: 60)
        XCTAssertEqual(again.status, 1, again.output)
        XCTAssertTrue(again.stderr.contains("the array job \(job) of this sweep is still queued or running"), again.output)
        let early = try Subprocess.run(Subprocess.samtrain, sweep + ["--collect"], timeout: 60)
        XCTAssertEqual(early.status, 1, early.output)
        XCTAssertTrue(early.stderr.contains("are not finished"), early.output)

        let tasks = try slurm.wait(for: job, timeout: 240)
        XCTAssertEqual(tasks.count, 3, "\(tasks)")
        for t in tasks {
            let log = (try? String(contentsOfFile: "\(out)/slurm/\(job)_\(t["ArrayTaskId"] ?? "?").out", encoding: .utf8)) ?? "(no log)"
            XCTAssertEqual(t["JobState"], "COMPLETED", log)
            XCTAssertTrue(log.contains("samtrain: task \(t["ArrayTaskId"] ?? "?") (job "), log)
        }
        let collected = try Subprocess.run(Subprocess.samtrain, sweep + ["--collect"], timeout: 60)
        XCTAssertEqual(collected.status, 0, collected.output)
        let csv = try String(contentsOfFile: out + "/results.csv", encoding: .utf8).split(separator: "\n")
        XCTAssertEqual(csv.count, 4, csv.joined(separator: "\n"))
        for (row, rho) in zip(csv.dropFirst(), ["0.02", "0.05", "0.1"]) {
            XCTAssertTrue(row.hasPrefix("\"rho=\(rho)\",\(rho)"), String(row))
            let accuracy = Double(row.split(separator: ",")[row.split(separator: ",").count - 6]) ?? 0
            XCTAssertGreaterThan(accuracy, 0.2, String(row))
        }
        let rerun = try Subprocess.run(Subprocess.samtrain, sweep + ["--slurm"], environment: slurm.environment, timeout: 60)
        XCTAssertEqual(rerun.status, 0, rerun.output)
        XCTAssertTrue(rerun.stdout.contains("all 3 cells are finished"), rerun.output)
    }

    /// `scancel --batch --signal=TERM` mid-epoch (what `--signal=B:TERM@…` sends before the time
    /// limit): the ranks stop after one step with its checkpoint, the script requeues the job,
    /// and the requeued job resumes and ends bit-identical to an uninterrupted run.
    func testPreemptedJobIsRequeuedAndResumesBitIdentically() throws {
        let slurm = try cluster()
        try Subprocess.requireFashionMNIST()
        let root = Subprocess.temporaryDirectory("samtrain-slurm-preempt")
        defer { try? FileManager.default.removeItem(at: root) }
        let a = root.appendingPathComponent("a").path, b = root.appendingPathComponent("b").path
        // 2 epochs of 20 cnn steps; periodic checkpoints only at the epochs' ends.
        let args = ["--model", "cnn", "--epochs", "2", "--train-subset", "1280", "--batch-size", "64", "--test-subset", "500", "--log-every", "1"]
        let reference = try Subprocess.mpirun(2, ["train"] + args + ["--out", a], timeout: 300)
        XCTAssertEqual(reference.status, 0, reference.output)

        let output = root.appendingPathComponent("job.out").path
        let submitted = Date()
        let job = try submit(slurm, args + ["--out", b], output: output)
        let deadline = Date().addingTimeInterval(180)
        var reached = false
        while Date() < deadline {
            // Mid-epoch 2: step 25 recorded.
            if let text = try? String(contentsOfFile: b + "/metrics.jsonl", encoding: .utf8), text.contains("\"step\":25,") || text.contains("\"step\":25}") { reached = true; break }
            usleep(20_000)
        }
        XCTAssertTrue(reached, "the job did not reach step 25: \(String(describing: try? String(contentsOfFile: output, encoding: .utf8)))")
        let signalled = Date()
        let cancel = try slurm.run("scancel", ["--batch", "--signal=TERM", job])
        XCTAssertEqual(cancel.status, 0, cancel.output)

        let record = try XCTUnwrap(try slurm.wait(for: job, timeout: 240).first)
        print(String(format: "reference run %.1f s; job submitted → step 25 %.1f s, scancel → requeued job done %.1f s",
                     reference.seconds, signalled.timeIntervalSince(submitted), Date().timeIntervalSince(signalled)))
        let log = (try? String(contentsOfFile: output, encoding: .utf8)) ?? ""
        XCTAssertEqual(record["JobState"], "COMPLETED", log)
        XCTAssertEqual(record["Restarts"], "1", log)
        let line = try XCTUnwrap(log.split(separator: "\n").first { $0.contains("samtrain: stopped by SIGUSR2") }, log)
        let step = try XCTUnwrap(line.components(separatedBy: "after step ").last?.split(separator: ":").first.flatMap { Int($0) }, String(line))
        XCTAssertTrue(step >= 25 && step < 40, "stopped at step \(step): \(line)")
        XCTAssertTrue(log.contains("train.sbatch: stopped with a checkpoint in \(b); requeueing job \(job)"), log)
        XCTAssertTrue(log.contains("train.sbatch: job \(job) (restart 1)"), log)
        XCTAssertTrue(log.contains("resumed at step \(step) of 40"), log)
        let last = "/checkpoint-step0000040.safetensors"
        XCTAssertNotNil(FileManager.default.contents(atPath: b + last), log)
        XCTAssertEqual(FileManager.default.contents(atPath: a + last), FileManager.default.contents(atPath: b + last),
                       "the requeued job's parameters differ from the uninterrupted run's")
    }
}
