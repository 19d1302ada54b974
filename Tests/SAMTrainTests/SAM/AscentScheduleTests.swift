import Foundation
import XCTest
@testable import SAMTrain

/// `--sam-every K` and `--sam-from F`: which steps are SAM steps, and that the others are
/// exactly the base optimizer's steps.
final class AscentScheduleTests: XCTestCase {
    func testWhichStepsAscend() throws {
        let every3 = AscentSchedule(every: 3)
        XCTAssertEqual((0..<8).filter { every3.runsAscent(step: $0, totalSteps: 8) }, [0, 3, 6])
        let late = AscentSchedule(every: 1, from: 0.8)
        XCTAssertEqual((0..<10).filter { late.runsAscent(step: $0, totalSteps: 10) }, [8, 9])
        let both = AscentSchedule(every: 2, from: 0.5)
        XCTAssertEqual((0..<10).filter { both.runsAscent(step: $0, totalSteps: 10) }, [6, 8])
        XCTAssertThrowsError(try AscentSchedule(every: 0).validate()) { XCTAssertTrue("\($0)".contains("--sam-every 0")) }
        XCTAssertThrowsError(try AscentSchedule(from: 1).validate()) { XCTAssertTrue("\($0)".contains("--sam-from 1.0")) }
    }

    /// The closed-form count is the count of `runsAscent` over the range, and a hostile size
    /// (a step count read from a file) is answered at once, without a trap.
    func testAscentStepsCountsWhatRunsAscentSays() {
        for every in [1, 2, 3, 7] {
            for from in [0, 0.1, 0.5, 0.8, 0.9, 0.999, 1.0 / 3] {
                let schedule = AscentSchedule(every: every, from: from)
                for total in [0, 1, 2, 9, 10, 11, 100, 4690] {
                    for range in [0..<total, 0..<(total / 2), (total / 3)..<total, (total / 2)..<(total / 2)] {
                        let brute = range.filter { schedule.runsAscent(step: $0, totalSteps: total) }.count
                        XCTAssertEqual(schedule.ascentSteps(in: range, totalSteps: total), brute, "every \(every) from \(from) total \(total) \(range)")
                    }
                }
            }
        }
        XCTAssertEqual(AscentSchedule(every: 1).ascentSteps(in: 0..<Int.max, totalSteps: Int.max), Int.max)
        XCTAssertEqual(AscentSchedule(every: 7, from: 0.5).ascentSteps(in: (Int.max - 3)..<Int.max, totalSteps: Int.max), 0)
        XCTAssertEqual(AscentSchedule(every: 2, from: .nan).ascentSteps(in: 0..<10, totalSteps: 10), 0)
        XCTAssertEqual(AscentSchedule(every: 0).ascentSteps(in: 0..<10, totalSteps: 10), 0)
    }

    /// The final parameter digest of a short cnn run on 2 ranks.
    func digest(_ flags: [String], out: String? = nil) throws -> String {
        let r = try Subprocess.mpirun(2, ["train", "--model", "cnn", "--train-subset", "512", "--test-subset", "64",
                                          "--epochs", "1", "--batch-size", "64", "--seed", "4", "--report-digests"]
                                          + (out.map { ["--out", $0, "--log-every", "1"] } ?? []) + flags, timeout: 120)
        XCTAssertEqual(r.status, 0, r.output)
        let lines = r.stdout.split(separator: "\n").filter { $0.hasPrefix("rank ") && $0.contains("parameter digest") }
        XCTAssertEqual(lines.count, 2, r.output)
        XCTAssertEqual(Set(lines.map { $0.split(separator: " ").last! }).count, 1, "the ranks disagree: \(lines)")
        return String(try XCTUnwrap(lines.first?.split(separator: " ").last))
    }

    /// Plain steps are the base optimizer's, bit for bit: `--sam-every 3` is LookSAM with
    /// k = 3 and α = 0 (its SAM step on step mod 3 = 0, the clean gradient between), and SAM
    /// from 90 % of an 8-step run stopped after 6 steps is `--sam none`.
    func testPlainStepsAreTheBaseOptimizersSteps() throws {
        try Subprocess.requireFashionMNIST()
        let every = try digest(["--sam", "sam", "--sam-every", "3"])
        XCTAssertEqual(every, try digest(["--sam", "looksam", "--looksam-k", "3", "--looksam-alpha", "0"]))
        XCTAssertNotEqual(every, try digest(["--sam", "sam"]), "--sam-every 3 changed nothing")
        let late = try digest(["--sam", "sam", "--sam-from", "0.9", "--max-steps", "6"])
        XCTAssertEqual(late, try digest(["--sam", "none", "--max-steps", "6"]))
        XCTAssertNotEqual(try digest(["--sam", "sam", "--sam-from", "0.5", "--max-steps", "6"]), late, "--sam-from 0.5 ran no SAM step")
    }

    /// The step log says which kind of step ran; a resume must keep the schedule.
    func testTheStepLogNamesTheKindAndResumeKeepsTheSchedule() throws {
        try Subprocess.requireFashionMNIST()
        let dir = Subprocess.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        _ = try digest(["--sam", "gsam", "--sam-every", "2", "--scope", "global", "--max-steps", "6"], out: dir.path)
        let records = try String(contentsOfFile: dir.path + "/metrics.jsonl", encoding: .utf8).split(separator: "\n")
            .compactMap { try JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
            .filter { $0["kind"] as? String == "step" }
        // Records follow steps 1…5 (the epoch's last step is not logged): steps 0, 2, 4 are SAM steps.
        XCTAssertEqual(records.compactMap { $0["step_kind"] as? String }, ["sam", "plain", "sam", "plain", "sam"])
        XCTAssertEqual(records.compactMap { $0["sam_steps"] as? Int }, [1, 0, 1, 0, 1])
        XCTAssertNil(records[1]["loss_perturbed"], "a plain interval has no perturbed loss")
        XCTAssertNotNil(records[2]["loss_perturbed"])
        let checkpoint = try XCTUnwrap(CheckpointDirectory.list(dir.path).first)
        let other = try Subprocess.mpirun(2, ["train", "--model", "cnn", "--train-subset", "512", "--epochs", "1", "--batch-size", "64",
                                              "--seed", "4", "--sam", "gsam", "--scope", "global", "--resume", checkpoint])
        XCTAssertNotEqual(other.status, 0)
        XCTAssertTrue(other.stderr.contains("sam_every: checkpoint 2, now 1"), other.output)
    }
}
