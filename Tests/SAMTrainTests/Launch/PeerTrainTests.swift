import Foundation
import XCTest

/// launch/peer-train, the PyTorch peer's training loop made resumable for long comparisons
/// (issue 28's accuracy table): a run stopped and resumed gives the uninterrupted run's record.
final class PeerTrainTests: XCTestCase {
    func testAStoppedRunResumesToTheUninterruptedRecord() throws {
        try Subprocess.requireFashionMNIST()
        let peer = Subprocess.sharedDirectory.appendingPathComponent("peer/torch_reference.py").path
        guard FileManager.default.fileExists(atPath: peer) else {
            throw XCTSkip("SKIPPED: the peer \(peer) is missing (set SAMTRAIN_SHARED)")
        }
        try ResidualNetworkTests.requireTorch()
        let script = Subprocess.repositoryRoot.appendingPathComponent("launch/peer-train").path
        let dir = Subprocess.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        // SAM over SGD on the cnn, 2 epochs of 5 steps, a checkpoint every 2 steps.
        let flags = ["--opt", "sam", "--model", "cnn", "-E", "2", "--limit-steps", "5", "--checkpoint-every", "2",
                     "--threads", "1", "--batch", "32"]
        func run(_ out: String, _ extra: [String] = []) throws -> String {
            let r = try Subprocess.run(script, [dir.appendingPathComponent(out).path] + flags + extra,
                                       environment: ["SAMTRAIN_PEER": peer], timeout: 600)
            XCTAssertEqual(r.status, 0, r.output)
            return r.stdout
        }
        func record(_ out: String) throws -> [[String: Double]] {
            let file = dir.appendingPathComponent(out).appendingPathComponent("train_torch_cnn_sam_2.json")
            let json = try JSONSerialization.jsonObject(with: Data(contentsOf: file)) as! [String: Any]
            XCTAssertEqual(json["finished"] as? Bool, true)
            // Everything but the wall-clock times.
            return (json["epochs_log"] as! [[String: Any]]).map { epoch in
                epoch.compactMapValues { $0 as? Double }.filter { !$0.key.hasSuffix("wall_s") }
            }
        }
        _ = try run("whole")
        // Stopped after step 3 of epoch 1 (a checkpoint at step 2 only), then after 4 more
        // steps, in epoch 2, past its end-of-epoch checkpoint; each resume replays what was lost.
        XCTAssertTrue(try run("stopped", ["--stop-after-steps", "3"]).contains("stopped after 3 steps"))
        XCTAssertTrue(try run("stopped", ["--stop-after-steps", "4"]).contains("resumed at epoch 1 step 2"))
        XCTAssertTrue(try run("stopped").contains("resumed at epoch 2 step 0"))
        let whole = try record("whole"), resumed = try record("stopped")
        XCTAssertEqual(whole.count, 2)
        XCTAssertEqual(resumed, whole, "the resumed run's record differs from the uninterrupted one's")
        // A finished run exits at once; other flags on the same directory are refused.
        XCTAssertTrue(try run("stopped").contains("finished earlier"))
        let other = try Subprocess.run(script, [dir.appendingPathComponent("stopped").path] + flags + ["--rho", "0.1"],
                                       environment: ["SAMTRAIN_PEER": peer], timeout: 600)
        XCTAssertNotEqual(other.status, 0)
        XCTAssertTrue(other.output.contains("was written with other flags"), other.output)
    }
}
