import Foundation

/// Single passes over flat buffers: the whole vocabulary of SAM's ascent, restore and
/// combination. Reductions accumulate in Double so that norms do not depend on the
/// parameter count's magnitude.
extension FlatBuffer {
    /// Σ x², accumulated in Double.
    public func sumOfSquares() -> Double { sumOfSquaresOf(data, count: count) }

    public func norm() -> Double { sumOfSquares().squareRoot() }

    /// Σ x·y in Double, with eight partial sums as `sumOfSquares`.
    public func dot(_ other: FlatBuffer) -> Double {
        precondition(other.count == count)
        let p = data, q = other.data
        var acc = SIMD8<Double>()
        var i = 0
        while i + 8 <= count {
            let a = SIMD8<Double>(Double(p[i]), Double(p[i + 1]), Double(p[i + 2]), Double(p[i + 3]),
                                  Double(p[i + 4]), Double(p[i + 5]), Double(p[i + 6]), Double(p[i + 7]))
            let b = SIMD8<Double>(Double(q[i]), Double(q[i + 1]), Double(q[i + 2]), Double(q[i + 3]),
                                  Double(q[i + 4]), Double(q[i + 5]), Double(q[i + 6]), Double(q[i + 7]))
            acc += a * b
            i += 8
        }
        var s = acc.sum()
        while i < count { s += Double(p[i]) * Double(q[i]); i += 1 }
        return s
    }

    /// self += a·x
    public func add(_ x: FlatBuffer, scaledBy a: Float = 1) {
        precondition(x.count == count)
        let x = x.data
        for i in 0..<count { data[i] += a * x[i] }
    }

    public func scale(by a: Float) {
        for i in 0..<count { data[i] *= a }
    }

    /// A 64-bit FNV-1a digest of the bytes: equal buffers, equal digests; used to check
    /// that every rank holds the same parameters.
    public func digest() -> UInt64 {
        var h: UInt64 = 0xCBF2_9CE4_8422_2325
        let bytes = UnsafeRawBufferPointer(start: data, count: count * MemoryLayout<Float>.stride)
        for b in bytes { h = (h ^ UInt64(b)) &* 0x100_0000_01B3 }
        return h
    }

    public var isFinite: Bool {
        for i in 0..<count where !data[i].isFinite { return false }
        return true
    }
}

/// Σ x² over `count` floats from `p`, accumulated in Double. Eight independent partial sums:
/// one chain of Double adds would run at the adder's latency (a tenth of the step at 64
/// micro-shards per rank).
func sumOfSquaresOf(_ p: UnsafePointer<Float>, count: Int) -> Double {
    var acc = SIMD8<Double>()
    var i = 0
    while i + 8 <= count {
        let v = SIMD8<Double>(Double(p[i]), Double(p[i + 1]), Double(p[i + 2]), Double(p[i + 3]),
                              Double(p[i + 4]), Double(p[i + 5]), Double(p[i + 6]), Double(p[i + 7]))
        acc += v * v
        i += 8
    }
    var s = acc.sum()
    while i < count { let v = Double(p[i]); s += v * v; i += 1 }
    return s
}

/// dst[i] += src[i] (a part's partial sum added into the whole).
func addInPlace(_ dst: UnsafeMutablePointer<Float>, _ src: UnsafePointer<Float>, _ count: Int) {
    for i in 0..<count { dst[i] += src[i] }
}
