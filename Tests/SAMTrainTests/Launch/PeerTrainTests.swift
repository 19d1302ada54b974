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

    /// launch/peer-compare: the peer's record beside samtrain's metrics.csv, epoch by epoch.
    func testPeerCompareTabulatesBothSidesAndTheGap() throws {
        let dir = Subprocess.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        func write(_ path: String, _ text: String) throws {
            let url = dir.appendingPathComponent(path)
            try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
            try text.write(to: url, atomically: true, encoding: .utf8)
        }
        try write("peer/train_torch_vit-t4_sgd_3.json", """
            {"epochs": 3, "epochs_log": [{"epoch": 1, "test_acc": 0.7637}, {"epoch": 2, "test_acc": 0.835},
                                         {"epoch": 3, "test_acc": 0.8438}]}
            """)
        // A resumed run wrote epoch 2 twice: the last record counts.
        try write("ours/metrics.csv", """
            epoch,step,train_loss,train_acc,test_loss,test_acc,images_per_s,seconds
            1,469,1.2,0.6,0.7,0.7700,90,100
            2,938,0.9,0.8,0.5,0.8000,90,100
            2,938,0.9,0.8,0.5,0.8300,90,100
            3,1407,0.8,0.85,0.49,0.8400,90,100

            """)
        try write("ours/config.json", #"{"settings": {"epochs": 3}}"#)
        try write("partial/metrics.csv", "epoch,step,train_loss,train_acc,test_loss,test_acc,images_per_s,seconds\n1,469,1,0.6,0.7,0.7800,90,100\n")
        let script = Subprocess.repositoryRoot.appendingPathComponent("launch/peer-compare").path
        let p = dir.appendingPathComponent("peer").path
        let r = try Subprocess.run(script, ["AdamW", p, dir.appendingPathComponent("ours").path,
                                            "early", p, dir.appendingPathComponent("partial").path])
        XCTAssertEqual(r.status, 0, r.output)
        XCTAssertTrue(r.stdout.contains("| AdamW | 3 of 3 | 76.37, 83.50, 84.38 | 77.00, 83.00, 84.00 | -0.38 | yes |"), r.stdout)
        XCTAssertTrue(r.stdout.contains("| early | 1 of 3 | 76.37 | 78.00 | +1.63 | no (so far: epoch 1 of 3) |"), r.stdout)
        let strict = try Subprocess.run(script, ["--tolerance", "0.2", "AdamW", p, dir.appendingPathComponent("ours").path])
        XCTAssertTrue(strict.stdout.contains("| -0.38 | no |"), strict.stdout)
        let missing = try Subprocess.run(script, ["AdamW", p, dir.path])
        XCTAssertNotEqual(missing.status, 0)
        XCTAssertTrue(missing.output.contains("no metrics.csv"), missing.output)
    }
}
