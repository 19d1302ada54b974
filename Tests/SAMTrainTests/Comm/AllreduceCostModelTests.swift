import XCTest
import Foundation
@testable import SAMTrain

final class AllreduceCostModelTests: XCTestCase {
    /// The fit recovers α and β from times of a known link with ±5 % noise on every size, where
    /// an unweighted fit of the same samples misses α: the large sizes' noise outweighs it.
    func testFitRecoversLatencyAndBandwidthFromNoisyTimes() {
        let truth = AllreduceCostModel(alpha: 150e-6, beta: 33.6e-9)
        var rng = SplitMix64(seed: 3)
        let sizes = [1, 4, 16, 64, 256, 1024, 4096, 16384].map { Double($0 * 1024) }
        let samples = sizes.map { bytes in (bytes, truth.seconds(bytes: bytes, ranks: 2) * Double(rng.uniform(0.95, 1.05))) }
        let fitted = AllreduceCostModel.fit(samples, ranks: 2)
        XCTAssertEqual(fitted.alpha, truth.alpha, accuracy: 0.1 * truth.alpha)
        XCTAssertEqual(fitted.beta, truth.beta, accuracy: 0.05 * truth.beta)

        let k = Double(samples.count)
        let mx = samples.map(\.0).reduce(0, +) / k, my = samples.map(\.1).reduce(0, +) / k
        let slope = samples.reduce(0) { $0 + ($1.0 - mx) * ($1.1 - my) } / samples.reduce(0) { $0 + ($1.0 - mx) * ($1.0 - mx) }
        let unweightedAlpha = (my - slope * mx) / 2
        XCTAssertGreaterThan(abs(unweightedAlpha - truth.alpha), 0.1 * truth.alpha, "the noise was too small to tell the fits apart")

        // With α from a tiny allreduce's time, β through that intercept.
        let pinned = AllreduceCostModel.fit(samples, latency: 2 * truth.alpha, ranks: 2)
        XCTAssertEqual(pinned.alpha, truth.alpha, accuracy: 1e-12)
        XCTAssertEqual(pinned.beta, truth.beta, accuracy: 0.05 * truth.beta)
    }

    /// The command on two local ranks: a fit with a positive α and β, and predictions.
    func testBenchAllreduceFitsAndPredicts() throws {
        let r = try Subprocess.mpirun(2, ["bench-allreduce", "--sizes-kb", "4", "64", "256", "--repeats", "5", "--json",
                                          "--nodes", "8", "--predict", "cnn=100"])
        XCTAssertEqual(r.status, 0, r.output)
        let start = try XCTUnwrap(r.stdout.firstIndex(of: "{"), r.output)
        let report = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(r.stdout[start...].utf8)) as? [String: Any])
        let model = try XCTUnwrap(report["model"] as? [String: Double])
        XCTAssertGreaterThan(model["alpha"] ?? 0, 0, "\(report)")
        XCTAssertGreaterThan(model["beta"] ?? 0, 0, "\(report)")
        XCTAssertFalse((report["predictions"] as? [Any] ?? []).isEmpty)
    }
}
