import XCTest
@testable import SAMTrain

final class CheckpointTests: XCTestCase {
    func mlp() -> (Sequential, SGD) {
        let model = Architecture.mlp.build()
        model.initialize(seed: 1)
        return (model, SGD(count: model.store.count, momentum: 0.9, nesterov: false, weightDecay: 0))
    }

    func testRoundTripRestoresEverything() throws {
        let (a, optA) = mlp()
        optA.stepCount = 7
        for i in 0..<a.store.count { optA.momentumBuffer[i] = Float(i % 13) }
        let dir = Subprocess.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("c.safetensors").path
        try Checkpoint(model: a, optimizer: optA, metadata: ["step": "7"]).write(to: path)
        let (b, optB) = mlp()
        b.initialize(seed: 2)
        try Checkpoint.read(from: path).restore(into: b, optimizer: optB, source: path)
        XCTAssertEqual(a.store.values.array, b.store.values.array)
        XCTAssertEqual(optA.momentumBuffer.array, optB.momentumBuffer.array)
        XCTAssertEqual(optB.stepCount, 7)
        XCTAssertEqual((try? FileManager.default.contentsOfDirectory(atPath: dir.path))?.count, 1, "no temporary file left")
    }

    func testShapesThatDoNotFitTheModelAreRefused() throws {
        let (a, opt) = mlp()
        var checkpoint = Checkpoint(model: a, optimizer: opt, metadata: [:])
        let i = checkpoint.file.tensors.firstIndex { $0.name == "3.weight" }!
        checkpoint.file.tensors[i].shape = [128, 512]
        XCTAssertThrowsError(try checkpoint.restore(into: a, optimizer: opt, source: "x.safetensors")) { e in
            XCTAssertTrue("\(e)".contains("3.weight has shape [128, 512], the model needs [256, 256]"), "\(e)")
        }
        checkpoint.file.tensors.remove(at: i)
        XCTAssertThrowsError(try checkpoint.restore(into: a, optimizer: opt, source: "x.safetensors")) { e in
            XCTAssertTrue("\(e)".contains("no tensor 3.weight"), "\(e)")
        }
    }

    /// A damaged newest checkpoint never hides the good one before it, and --keep prunes.
    func testResumeSkipsADamagedNewestCheckpoint() throws {
        let (a, opt) = mlp()
        let dir = Subprocess.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let checkpoints = CheckpointDirectory(path: dir.path, keep: 2)
        for step in [10, 20, 30] { try checkpoints.save(Checkpoint(model: a, optimizer: opt, metadata: ["step": "\(step)"]), step: step) }
        XCTAssertEqual(CheckpointDirectory.list(dir.path).map { ($0 as NSString).lastPathComponent },
                       ["checkpoint-step0000030.safetensors", "checkpoint-step0000020.safetensors"])
        let newest = checkpoints.fileName(step: 40)
        try Data([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]).write(to: URL(fileURLWithPath: newest))
        var notes: [String] = []
        let (path, checkpoint) = try CheckpointDirectory.resolve(dir.path) { notes.append($0) }
        XCTAssertEqual(path, checkpoints.fileName(step: 30))
        XCTAssertEqual(checkpoint.metadata["step"], "30")
        XCTAssertEqual(notes.count, 1)
        XCTAssertTrue(notes[0].contains("checkpoint-step0000040"), "\(notes)")
    }
}
