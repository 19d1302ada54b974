import Foundation

/// Single passes over flat buffers: the whole vocabulary of SAM's ascent, restore and
/// combination. Reductions accumulate in Double so that norms do not depend on the
/// parameter count's magnitude.
extension FlatBuffer {
    public func sumOfSquares() -> Double {
        var s = 0.0
        for i in 0..<count { let v = Double(data[i]); s += v * v }
        return s
    }

    public func norm() -> Double { sumOfSquares().squareRoot() }

    public func dot(_ other: FlatBuffer) -> Double {
        precondition(other.count == count)
        var s = 0.0
        for i in 0..<count { s += Double(data[i]) * Double(other.data[i]) }
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
