import Foundation
import XCTest
@testable import SAMTrain

/// Every vector-kernel path this machine runs against float64 references of the same
/// formulas (include/CKernels.h), and bit-identical on a second run (docs/algorithms.md §12).
final class VectorKernelsTests: XCTestCase {
    /// The paths to test; a path this CPU lacks is reported, not silently dropped.
    private func paths() -> [VectorKernels] {
        KernelPath.allCases.compactMap { path in
            guard let k = VectorKernels(path) else {
                print("VectorKernelsTests: skipping the \(path.rawValue) kernels: this CPU or its OS cannot run them")
                return nil
            }
            return k
        }
    }

    private func values(_ n: Int, seed: UInt64, scale: Float = 3) -> [Float] {
        var rng = SplitMix64(seed: seed)
        return (0..<n).map { _ in Float(rng.nextStandardNormal()) * scale }
    }

    func testGELUForwardAndBackwardAgainstFloat64() {
        // 1,003 values: whole vectors and a remainder; the range covers erf's clamp at ±4·√2.
        var x = values(1003, seed: 1)
        x += [0, -0, 8, -8, 30, -30, 1e-30]
        let dy = values(x.count, seed: 2, scale: 1)
        for k in paths() {
            var y = [Float](repeating: 0, count: x.count), dx = y
            k.geluForward(x, &y, x.count)
            k.geluBackward(x, dy, &dx, x.count)
            for i in x.indices {
                let v = Double(x[i])
                let cdf = 0.5 * (1 + erf(v / 2.0.squareRoot()))
                let pdf = exp(-0.5 * v * v) / (2 * Double.pi).squareRoot()
                XCTAssertEqual(Double(y[i]), v * cdf, accuracy: 1e-6 * max(1, abs(v)), "\(k.path) GELU(\(v))")
                XCTAssertEqual(Double(dx[i]), Double(dy[i]) * (cdf + v * pdf), accuracy: 2e-6 * max(1, abs(Double(dy[i]))),
                               "\(k.path) GELU'(\(v))")
            }
            var again = [Float](repeating: 0, count: x.count)
            k.geluForward(x, &again, x.count)
            XCTAssertEqual(again.map(\.bitPattern), y.map(\.bitPattern), "\(k.path) not bit-identical on a second run")
        }
    }

    func testSoftmaxRowsAndTheirBackward() {
        let (rows, cols) = (7, 65)
        var s = values(rows * cols, seed: 3, scale: 4)
        s[3] = 90  // exp would overflow without the maximum subtracted first
        s[cols] = -200
        let g = values(rows * cols, seed: 4, scale: 1)
        for k in paths() {
            var p = s
            k.softmaxRows(&p, rows: rows, columns: cols)
            var ds = g
            k.softmaxBackwardRows(p, &ds, rows: rows, columns: cols)
            for r in 0..<rows {
                let row = (0..<cols).map { Double(s[r * cols + $0]) }
                let m = row.max()!
                let e = row.map { exp($0 - m) }, z = e.reduce(0, +)
                let ref = e.map { $0 / z }
                let c = (0..<cols).map { ref[$0] * Double(g[r * cols + $0]) }.reduce(0, +)
                for j in 0..<cols {
                    XCTAssertEqual(Double(p[r * cols + j]), ref[j], accuracy: 1e-6 * max(ref[j], 1e-3), "\(k.path) P[\(r)][\(j)]")
                    XCTAssertEqual(Double(ds[r * cols + j]), ref[j] * (Double(g[r * cols + j]) - c), accuracy: 1e-6,
                                   "\(k.path) ∂S[\(r)][\(j)]")
                }
            }
        }
    }

    func testLayerNormForwardAndBackward() {
        let (rows, d) = (5, 37)
        let x = values(rows * d, seed: 5, scale: 2).map { $0 + 3 }
        let gamma = values(d, seed: 6, scale: 0.5).map { $0 + 1 }, beta = values(d, seed: 7, scale: 0.5)
        let dy = values(rows * d, seed: 8, scale: 1)
        let eps: Float = 1e-6
        for k in paths() {
            var y = [Float](repeating: 0, count: rows * d), stats = [Float](repeating: 0, count: 2 * rows)
            k.layerNormForward(x, gamma: gamma, beta: beta, &y, statistics: &stats, rows: rows, features: d, epsilon: eps)
            var dx = [Float](repeating: 0, count: rows * d)
            var dGamma = [Float](repeating: 0.5, count: d), dBeta = [Float](repeating: -0.5, count: d)
            k.layerNormBackward(x, dy, gamma: gamma, statistics: stats, dx: &dx, dGamma: &dGamma, dBeta: &dBeta,
                                rows: rows, features: d)
            var refGamma = [Double](repeating: 0.5, count: d), refBeta = [Double](repeating: -0.5, count: d)
            for r in 0..<rows {
                let row = (0..<d).map { Double(x[r * d + $0]) }, g = (0..<d).map { Double(dy[r * d + $0]) }
                let mu = row.reduce(0, +) / Double(d)
                let inv = 1 / (row.map { ($0 - mu) * ($0 - mu) }.reduce(0, +) / Double(d) + Double(eps)).squareRoot()
                let xhat = row.map { ($0 - mu) * inv }
                let dxhat = (0..<d).map { g[$0] * Double(gamma[$0]) }
                let meanD = dxhat.reduce(0, +) / Double(d)
                let meanDX = (0..<d).map { dxhat[$0] * xhat[$0] }.reduce(0, +) / Double(d)
                for j in 0..<d {
                    XCTAssertEqual(Double(y[r * d + j]), xhat[j] * Double(gamma[j]) + Double(beta[j]), accuracy: 1e-5)
                    XCTAssertEqual(Double(dx[r * d + j]), inv * (dxhat[j] - meanD - xhat[j] * meanDX), accuracy: 1e-5)
                    refGamma[j] += g[j] * xhat[j]
                    refBeta[j] += g[j]
                }
            }
            for j in 0..<d {
                XCTAssertEqual(Double(dGamma[j]), refGamma[j], accuracy: 1e-5, "\(k.path) ∂γ[\(j)]")
                XCTAssertEqual(Double(dBeta[j]), refBeta[j], accuracy: 1e-5, "\(k.path) ∂β[\(j)]")
            }
            // Only ∂x asked for: γ's and β's gradients untouched.
            var dx2 = [Float](repeating: 0, count: rows * d)
            k.layerNormBackward(x, dy, gamma: gamma, statistics: stats, dx: &dx2, dGamma: nil, dBeta: nil, rows: rows, features: d)
            XCTAssertEqual(dx2, dx)
        }
    }

    func testAddAndColumnSums() {
        let a = values(1001, seed: 9), b = values(1001, seed: 10)
        for k in paths() {
            var out = [Float](repeating: 0, count: a.count)
            k.add(a, b, &out, a.count)
            XCTAssertEqual(out, zip(a, b).map { $0 + $1 })
            var sums = [Float](repeating: 1, count: 11)
            k.addRows(a, rows: 91, columns: 11, to: &sums)
            for j in 0..<11 {
                let ref = 1 + (0..<91).map { Double(a[$0 * 11 + j]) }.reduce(0, +)
                XCTAssertEqual(Double(sums[j]), ref, accuracy: 1e-4)
            }
        }
    }

    func testChoosingThePath() throws {
        XCTAssertTrue(KernelPath.generic.isAvailable)
        XCTAssertEqual(try KernelPath.chosen(environment: [:]), KernelPath.best)
        XCTAssertEqual(try KernelPath.chosen(environment: ["SAMTRAIN_KERNELS": "generic"]), .generic)
        XCTAssertThrowsError(try KernelPath.chosen(environment: ["SAMTRAIN_KERNELS": "sse9"])) {
            XCTAssertTrue("\($0)".contains("SAMTRAIN_KERNELS=sse9: not a kernel path; choose one of avx512, avx2, generic"), "\($0)")
        }
        if let missing = KernelPath.allCases.first(where: { !$0.isAvailable }) {
            XCTAssertThrowsError(try KernelPath.chosen(environment: ["SAMTRAIN_KERNELS": missing.rawValue])) {
                XCTAssertTrue("\($0)".contains("cannot run the \(missing.rawValue) kernels"), "\($0)")
            }
        }
    }
}
