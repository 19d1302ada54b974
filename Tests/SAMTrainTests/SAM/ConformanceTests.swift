import XCTest
@testable import SAMTrain

/// Every golden vector file passes with 1, 2 and 4 ranks; the wrong scope fails.
final class ConformanceTests: XCTestCase {
    /// `vectors/*.json` (schema 1) and `vectors/v2/*.json` (schema 2), read by the same code.
    var vectorFiles: [String] {
        ["vectors", "vectors/v2"].flatMap { sub -> [String] in
            let dir = Subprocess.sharedDirectory.appendingPathComponent(sub).path
            let names = (try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []
            return names.filter { $0.hasSuffix(".json") }.sorted().map { dir + "/" + $0 }
        }
    }

    func requireVectors() throws {
        if vectorFiles.isEmpty { throw XCTSkip("no vector files in \(Subprocess.sharedDirectory.path)/vectors") }
    }

    func testEveryVectorFileInProcess() throws {
        try requireVectors()
        let world = Communicator.world()
        for file in vectorFiles {
            let report = try ConformanceRunner.run(try ConformanceCase(contentsOf: file), world: world)
            XCTAssertTrue(report.passed, "\(file): worst deviation \(report.worstRatio) of the tolerance")
            XCTAssertFalse(report.deviations.isEmpty)
        }
    }

    func testEveryVectorFileUnderTwoAndFourRanks() throws {
        try requireVectors()
        for ranks in [2, 4] {
            let r = try Subprocess.mpirun(ranks, ["conformance", "--summary"] + vectorFiles, timeout: 120)
            XCTAssertEqual(r.status, 0, r.output)
            XCTAssertTrue(r.stdout.contains("\(vectorFiles.count) passed, 0 failed"), r.output)
            XCTAssertEqual(r.stdout.components(separatedBy: "PASS  ").count - 1, vectorFiles.count)
        }
    }

    /// A per-shard case run with one ε for the whole batch fails, and the other way round:
    /// the vectors tell the scopes apart.
    func testTheWrongScopeFails() throws {
        try requireVectors()
        let dir = Subprocess.sharedDirectory.appendingPathComponent("vectors").path
        let world = Communicator.world()
        let perShard = try ConformanceCase(contentsOf: dir + "/sam_m4.json")
        XCTAssertTrue(try ConformanceRunner.run(perShard, world: world).passed)
        XCTAssertFalse(try ConformanceRunner.run(perShard, world: world, m: perShard.inputs.count).passed, "sam_m4 passed with a global ε")
        let global = try ConformanceCase(contentsOf: dir + "/sam_p2.json")
        XCTAssertFalse(try ConformanceRunner.run(global, world: world, m: 4).passed, "sam_p2 passed with ε per 4 examples")
    }

    /// The stateful variants keep one state per shard slot: their per-shard cases fail when
    /// every slot is folded into one ε, and schema 2 files are really read (all eight here).
    func testStatePerShardSlotIsWhatTheV2VectorsCheck() throws {
        try requireVectors()
        XCTAssertGreaterThanOrEqual(vectorFiles.filter { $0.contains("/v2/") }.count, 8)
        let dir = Subprocess.sharedDirectory.appendingPathComponent("vectors/v2").path
        let world = Communicator.world()
        for name in ["looksam_m4", "fsam_m2", "vasso_m4", "gsam_m4"] {
            let c = try ConformanceCase(contentsOf: dir + "/\(name).json")
            XCTAssertTrue(try ConformanceRunner.run(c, world: world).passed, name)
            XCTAssertFalse(try ConformanceRunner.run(c, world: world, m: c.inputs.count).passed, "\(name) passed with one state for the batch")
        }
    }

    func testBadVectorFileIsReported() throws {
        let dir = Subprocess.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("broken.json").path
        try Data("{\"model\": {\"layers\": [{\"type\": \"conv\"}]}}".utf8).write(to: URL(fileURLWithPath: path))
        XCTAssertThrowsError(try ConformanceCase(contentsOf: path)) { e in
            XCTAssertTrue("\(e)".contains("broken.json"), "\(e)")
        }
    }
}
