import Foundation
import XCTest
@testable import SAMTrain

/// A rank that stops responding without dying ends the job within --collective-timeout, with
/// one message naming the step and the rank; the newest checkpoint stays valid.
final class WatchdogTests: XCTestCase {
    /// The pid of `rank` among the descendants of the test's process tree.
    static func pid(ofRank rank: Int, mentioning fragment: String) -> Int32? {
        for entry in (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? [] {
            guard let p = Int32(entry), let cmdline = FileManager.default.contents(atPath: "/proc/\(entry)/cmdline"),
                  String(decoding: cmdline, as: UTF8.self).contains(fragment),
                  let environ = FileManager.default.contents(atPath: "/proc/\(entry)/environ") else { continue }
            let variables = environ.split(separator: 0).map { String(decoding: $0, as: UTF8.self) }
            if variables.contains("OMPI_COMM_WORLD_RANK=\(rank)") { return p }
        }
        return nil
    }

    func testStoppedRankEndsTheJobWithinTheTimeout() throws {
        try Subprocess.requireFashionMNIST()
        let dir = Subprocess.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let timeout = 3.0
        var stoppedAt: Date?
        let r = try Subprocess.mpirun(2, ["train", "--model", "mlp", "--epochs", "200", "--train-subset", "2048", "--batch-size", "64",
                                          "--checkpoint-every", "10", "--log-every", "5", "--collective-timeout", "\(timeout)",
                                          "--out", dir.path], timeout: 120, killWhen: {
            // SIGSTOP rank 1 once it has written a checkpoint (it trains on from there).
            guard stoppedAt == nil, !CheckpointDirectory.list(dir.path).isEmpty,
                  let rank1 = WatchdogTests.pid(ofRank: 1, mentioning: dir.path) else { return false }
            kill(rank1, SIGSTOP)
            stoppedAt = Date()
            return false
        })
        let stopped = try XCTUnwrap(stoppedAt, "rank 1 was never stopped:\n\(r.output)")
        let seconds = Date().timeIntervalSince(stopped)
        print("SIGSTOP of rank 1 → job ended in \(String(format: "%.2f", seconds)) s (--collective-timeout \(timeout))")
        XCTAssertFalse(r.timedOut, r.output)
        XCTAssertNotEqual(r.status, 0, r.output)
        XCTAssertLessThan(seconds, timeout + 6, "the job took \(seconds) s to end")
        let errors = r.stderr.split(separator: "\n").filter { $0.contains("samtrain: error") }
        XCTAssertEqual(errors.count, 1, r.output)
        let message = String(errors.first ?? "")
        for fragment in ["--collective-timeout 3 s", "rank 1 did not arrive", "step "] {
            XCTAssertTrue(message.contains(fragment), "'\(fragment)' not in \(message)")
        }
        let newest = try XCTUnwrap(CheckpointDirectory.list(dir.path).first)
        XCTAssertTrue(message.contains(newest), message)
        XCTAssertNoThrow(try Checkpoint.read(from: newest), "the newest checkpoint is damaged")
        usleep(1_000_000)
        XCTAssertEqual(CheckpointResumeTests.processes(mentioning: dir.path), [], "a rank outlived the job")
    }

    /// A job suspended as a whole for longer than the timeout (SIGSTOP to every rank, as
    /// Slurm's `scontrol suspend` does) trains on when continued, even when rank 1 wakes first
    /// and finds rank 0 silent since before the suspension.
    func testSuspendedJobGoesOnWhenContinued() throws {
        try Subprocess.requireFashionMNIST()
        let dir = Subprocess.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        var suspended = false
        let r = try Subprocess.mpirun(2, ["train", "--model", "mlp", "--epochs", "6", "--train-subset", "2048", "--batch-size", "64",
                                          "--checkpoint-every", "10", "--log-every", "5", "--collective-timeout", "3",
                                          "--out", dir.path], timeout: 120, killWhen: {
            guard !suspended, !CheckpointDirectory.list(dir.path).isEmpty,
                  let rank0 = WatchdogTests.pid(ofRank: 0, mentioning: dir.path),
                  let rank1 = WatchdogTests.pid(ofRank: 1, mentioning: dir.path) else { return false }
            // Rank 0 first, so that rank 1 is waiting for it in a collective when it stops too.
            kill(rank0, SIGSTOP)
            usleep(300_000)
            kill(rank1, SIGSTOP)
            usleep(6_000_000)   // twice the timeout
            kill(rank1, SIGCONT)
            usleep(300_000)     // rank 1 alone, its collective waiting since before the stop
            kill(rank0, SIGCONT)
            suspended = true
            return false
        })
        XCTAssertTrue(suspended, "the job was never suspended:\n\(r.output)")
        XCTAssertEqual(r.status, 0, r.output)
        XCTAssertFalse(r.stderr.contains("did not complete"), r.output)
        XCTAssertTrue(r.stdout.contains("epoch 6/6"), r.output)
    }

    func testTimeoutOutsideItsRangeIsRefused() throws {
        try Subprocess.expectFailure(["train", "--collective-timeout", "0"], naming: ["--collective-timeout 0", "between 1 and 1000000"])
    }
}
