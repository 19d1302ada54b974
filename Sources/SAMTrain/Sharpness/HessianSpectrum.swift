import Foundation

/// The top of the Hessian's spectrum from Hessian-vector products (docs/algorithms.md §8.3): the largest
/// eigenvalue by power iteration, the top k by Lanczos with full reorthogonalization.
public enum HessianSpectrum {
    /// A unit vector drawn from `seed` (the same on every rank).
    static func randomUnit(count: Int, seed: UInt64) -> FlatBuffer {
        var rng = SplitMix64(seed: seed, stream: RandomStream.sharpness.rawValue)
        let v = FlatBuffer(count: count)
        for i in 0..<count { v[i] = rng.uniform(-1, 1) }
        v.scale(by: Float(1 / v.norm()))
        return v
    }

    /// λ_max, the largest (algebraic) eigenvalue, by power iteration until the estimate
    /// changes by less than `tolerance` (relative) or `maxIterations`. Power iteration finds
    /// the eigenvalue of largest magnitude; away from a minimum that can be negative, and it
    /// converges slowly when the top two are close. In either case Lanczos (which finds both
    /// ends of the spectrum) takes over with `maxIterations` more products: a shifted power
    /// iteration on H − μI stalled there, since most eigenvalues sit near 0, i.e. near −μ.
    public static func topEigenvalue(_ landscape: LossLandscape, seed: UInt64 = 0, maxIterations: Int = 50,
                                     tolerance: Double = 1e-3) -> (value: Double, iterations: Int) {
        let first = powerIteration(landscape, shift: 0, seed: seed, maxIterations: maxIterations, tolerance: tolerance)
        guard first.value < 0 || first.iterations == maxIterations else { return first }
        let top = topEigenvalues(landscape, k: 1, steps: max(maxIterations, 20), seed: seed &+ 1)[0]
        return (first.value > 0 ? max(top, first.value) : top, first.iterations + max(maxIterations, 20))
    }

    /// The dominant eigenvalue of H − shift·I.
    static func powerIteration(_ landscape: LossLandscape, shift: Double, seed: UInt64, maxIterations: Int,
                               tolerance: Double) -> (value: Double, iterations: Int) {
        let n = landscape.weights.count
        let v = randomUnit(count: n, seed: seed), hv = FlatBuffer(count: n)
        var lambda = 0.0
        for iteration in 1...maxIterations {
            landscape.hessianVectorProduct(v, into: hv)
            if shift != 0 { hv.add(v, scaledBy: Float(-shift)) }
            let next = v.dot(hv)
            let norm = hv.norm()
            guard norm > 0 else { return (0, iteration) }
            v.copy(from: hv)
            v.scale(by: Float(1 / norm))
            if iteration > 1 && abs(next - lambda) <= tolerance * abs(next) { return (next, iteration) }
            lambda = next
        }
        return (lambda, maxIterations)
    }

    /// The `k` largest eigenvalues (descending) from `steps` Lanczos steps.
    public static func topEigenvalues(_ landscape: LossLandscape, k: Int, steps: Int? = nil, seed: UInt64 = 0) -> [Double] {
        let n = landscape.weights.count
        let m = min(steps ?? max(3 * k, 20), n)
        var basis: [FlatBuffer] = [randomUnit(count: n, seed: seed)]
        var alpha: [Double] = [], beta: [Double] = []
        let w = FlatBuffer(count: n)
        for j in 0..<m {
            landscape.hessianVectorProduct(basis[j], into: w)
            let a = w.dot(basis[j])
            alpha.append(a)
            // Full reorthogonalization against every earlier vector (twice, for stability).
            for _ in 0..<2 { for q in basis { w.add(q, scaledBy: Float(-w.dot(q))) } }
            let b = w.norm()
            if j == m - 1 || b < 1e-10 { break }
            beta.append(b)
            let next = FlatBuffer(count: n)
            next.copy(from: w)
            next.scale(by: Float(1 / b))
            basis.append(next)
        }
        let t = alpha.count
        var matrix = [[Double]](repeating: [Double](repeating: 0, count: t), count: t)
        for i in 0..<t { matrix[i][i] = alpha[i] }
        for i in 0..<(t - 1) where i < beta.count { matrix[i][i + 1] = beta[i]; matrix[i + 1][i] = beta[i] }
        return Array(symmetricEigenvalues(matrix).sorted(by: >).prefix(k))
    }

    /// Eigenvalues of a small symmetric matrix by cyclic Jacobi rotations.
    public static func symmetricEigenvalues(_ input: [[Double]]) -> [Double] {
        var a = input
        let n = a.count
        for _ in 0..<100 {
            var off = 0.0
            for p in 0..<n { for q in (p + 1)..<n { off += a[p][q] * a[p][q] } }
            if off < 1e-22 { break }
            for p in 0..<n {
                for q in (p + 1)..<n where abs(a[p][q]) > 1e-300 {
                    let theta = (a[q][q] - a[p][p]) / (2 * a[p][q])
                    let t = (theta >= 0 ? 1.0 : -1.0) / (abs(theta) + (theta * theta + 1).squareRoot())
                    let c = 1 / (t * t + 1).squareRoot(), s = t * c
                    for k in 0..<n {
                        let akp = a[k][p], akq = a[k][q]
                        a[k][p] = c * akp - s * akq
                        a[k][q] = s * akp + c * akq
                    }
                    for k in 0..<n {
                        let apk = a[p][k], aqk = a[q][k]
                        a[p][k] = c * apk - s * aqk
                        a[q][k] = s * apk + c * aqk
                    }
                }
            }
        }
        return (0..<n).map { a[$0][$0] }
    }
}
