import Glibc

/// The one random generator of samtrain: SplitMix64. Small, fast, with a state that is a
/// single UInt64 (easy to checkpoint), and identical on every platform, so that the same
/// seed gives the same initialization, permutation and label noise everywhere.
public struct SplitMix64: RandomNumberGenerator {
    public var state: UInt64

    public init(seed: UInt64) { state = seed }

    /// A generator for one purpose (`stream`) of one run (`seed`), e.g. the permutation of
    /// epoch 3, with no stored state. Each part of the key goes through the output mix before
    /// the next is added, so two keys start at unrelated states and their sequences do not
    /// overlap in practice (docs/algorithms.md §6.6). Keys must not enter the state linearly:
    /// with `stream·γ` added to one state (γ the step below), the streams of one seed were
    /// the same sequence one draw apart, and the label noise chose nearly the examples that
    /// the first epoch's permutation put first.
    public init(seed: UInt64, stream: UInt64, index: UInt64 = 0) {
        state = Self.mix(Self.mix(Self.mix(seed ^ 0x5AD7_0000_0000_0000) &+ stream &* 0xD1B5_4A32_D192_ED03)
                         &+ index &* 0x8CB9_2BA7_2F3D_8DD7)
    }

    /// How `init(seed:stream:index:)` keys its streams; checkpoints record it, and a run
    /// resumes only from a checkpoint whose draws were keyed the same way.
    public static let keying = "splitmix64, streams keyed through the mix (2026-12)"

    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        return Self.mix(state)
    }

    /// SplitMix64's output function: a bijection of UInt64 whose every output bit depends on
    /// every input bit.
    @inline(__always)
    static func mix(_ x: UInt64) -> UInt64 {
        var z = x
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// Uniform in [0, 1) with 24 random bits (exact in float32).
    public mutating func nextUnitFloat() -> Float {
        Float(next() >> 40) * (1.0 / 16_777_216.0)
    }

    /// Uniform in [lo, hi).
    public mutating func uniform(_ lo: Float, _ hi: Float) -> Float {
        lo + (hi - lo) * nextUnitFloat()
    }

    /// A standard normal draw (Box–Muller's cosine branch, from two 53-bit uniforms). The
    /// sine branch is not kept, so the state stays one UInt64.
    public mutating func nextStandardNormal() -> Double {
        let u1 = Double((next() >> 11) + 1) * 0x1p-53   // (0, 1]: log(u1) is finite
        let u2 = Double(next() >> 11) * 0x1p-53
        return (-2 * log(u1)).squareRoot() * cos(2 * Double.pi * u2)
    }

    /// Normal with the given mean and standard deviation (PyTorch's `nn.init.normal_`).
    public mutating func normal(mean: Float = 0, std: Float) -> Float {
        mean + std * Float(nextStandardNormal())
    }

    /// Normal(mean, std²) restricted to [lower, upper] by redrawing what falls outside: the
    /// distribution of timm's `trunc_normal_(t, mean, std, a, b)`, whose bounds are absolute
    /// (a = −2, b = 2 by default, so at std 0.02 effectively untruncated).
    public mutating func truncatedNormal(mean: Float = 0, std: Float, lower: Float = -2, upper: Float = 2) -> Float {
        precondition(lower < upper && std > 0, "an empty truncation interval")
        while true {
            let x = normal(mean: mean, std: std)
            if x >= lower && x <= upper { return x }
        }
    }

    /// Uniform integer in [0, n), without modulo bias (Lemire's method).
    public mutating func nextInt(below n: Int) -> Int {
        precondition(n > 0)
        let bound = UInt64(n)
        var m = next().multipliedFullWidth(by: bound)
        if m.low < bound {
            let threshold = (0 &- bound) % bound
            while m.low < threshold { m = next().multipliedFullWidth(by: bound) }
        }
        return Int(m.high)
    }

    /// A Fisher-Yates permutation of 0..<n.
    public mutating func permutation(_ n: Int) -> [Int] {
        var p = Array(0..<n)
        if n > 1 {
            for i in stride(from: n - 1, to: 0, by: -1) {
                p.swapAt(i, nextInt(below: i + 1))
            }
        }
        return p
    }
}

/// Named random streams, so that adding a new use of randomness never shifts another.
public enum RandomStream: UInt64, CaseIterable {
    case initialization = 1
    case permutation = 2
    case labelNoise = 3
    case augmentation = 4
    case sharpness = 5
}
