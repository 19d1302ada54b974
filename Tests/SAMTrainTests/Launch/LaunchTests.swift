import Foundation
import XCTest

/// launch/train's command line, and a real launch across three simulated hosts.
final class LaunchTests: XCTestCase {
    var launchTrain: String { Subprocess.repositoryRoot.appendingPathComponent("launch/train").path }

    /// With a fake mpirun that prints its arguments: --hostfile goes to mpirun, the rest to
    /// `samtrain train`, and the rank and thread counts come from NP and THREADS.
    func testLaunchTrainBuildsTheMpirunCommandLine() throws {
        let dir = Subprocess.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let fake = dir.appendingPathComponent("mpirun").path
        try "#!/bin/sh\nfor a in \"$@\"; do echo \"arg:$a\"; done\n".write(toFile: fake, atomically: true, encoding: .utf8)
        chmod(fake, 0o755)
        let r = try Subprocess.run(launchTrain, ["--hostfile", "hosts.txt", "--epochs", "2", "--sam", "bsam"],
                                   environment: ["MPIRUN": fake, "SAMTRAIN_BIN": "/opt/x/samtrain", "NP": "6", "THREADS": "3"])
        XCTAssertEqual(r.status, 0, r.output)
        let args = r.stdout.split(separator: "\n").map { String($0.dropFirst(4)) }
        let binary = try XCTUnwrap(args.firstIndex(of: "/opt/x/samtrain"), r.output)
        let mpirun = Array(args[..<binary]), samtrain = Array(args[(binary + 1)...])
        XCTAssertEqual(samtrain, ["train", "--threads", "3", "--epochs", "2", "--sam", "bsam"])
        XCTAssertTrue(mpirun.starts(with: ["-np", "6"]), "\(mpirun)")
        // samtrain runs the threads; OpenBLAS, under it, one.
        XCTAssertTrue(mpirun.contains("--bind-to") && mpirun.contains("OPENBLAS_NUM_THREADS=1"), "\(mpirun)")
        let h = try XCTUnwrap(mpirun.firstIndex(of: "--hostfile"))
        XCTAssertEqual(mpirun[h + 1], "hosts.txt")
        XCTAssertFalse(mpirun.contains("--oversubscribe"), "a hostfile sets the slots")
    }

    /// Three hosts in network namespaces (../shared/multihost): launch/train --hostfile.
    func testTrainingAcrossThreeSimulatedHosts() throws {
        try Subprocess.requireFashionMNIST()
        let multihost = Subprocess.sharedDirectory.appendingPathComponent("multihost")
        guard FileManager.default.fileExists(atPath: multihost.appendingPathComponent("up").path) else {
            throw XCTSkip("SKIPPED multi-host test: \(multihost.path) is missing")
        }
        guard Subprocess.isRoot else { throw XCTSkip("SKIPPED multi-host test: network namespaces need root") }
        let env = ["MH_PREFIX": "samtrain-t-"]
        let up = try Subprocess.run(multihost.appendingPathComponent("up").path, ["3"], environment: env, timeout: 60)
        defer { _ = try? Subprocess.run(multihost.appendingPathComponent("down").path, [], environment: env, timeout: 60) }
        guard up.status == 0, let hostfile = up.stdout.split(separator: "\n").last.map(String.init) else {
            if up.stderr.contains("not permitted") {
                throw XCTSkip("SKIPPED multi-host test: this machine does not permit network namespaces: \(up.stderr)")
            }
            XCTFail("multihost/up failed: \(up.output)")
            return
        }
        var launch = env
        launch["NP"] = "3"
        launch["MPIRUN"] = multihost.appendingPathComponent("mpirun").path
        launch["SAMTRAIN_BIN"] = Subprocess.samtrain
        let r = try Subprocess.run(launchTrain, ["--hostfile", hostfile, "--model", "mlp", "--epochs", "1", "--train-subset", "2048",
                                                 "--batch-size", "96", "--max-steps", "10", "--report-digests"],
                                   environment: launch, timeout: 150)
        XCTAssertEqual(r.status, 0, r.output)
        let hosts = try XCTUnwrap(r.stdout.split(separator: "\n").first { $0.contains("hosts: ") }, r.output)
        for h in ["h1", "h2", "h3"] { XCTAssertTrue(hosts.contains(h), "\(h) missing from: \(hosts)") }
        XCTAssertTrue(r.stdout.contains("test_acc"), r.output)
        let digests = Set(r.stdout.split(separator: "\n").filter { $0.hasPrefix("rank ") }.map { $0.split(separator: " ").last! })
        XCTAssertEqual(digests.count, 1, r.output)
    }
}
