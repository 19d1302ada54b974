/// A Linear layer's weight gradient from one example is an outer product, ∂W = u·vᵀ (u the
/// output gradient, v the input). SAM's shards of one example (`--m 1`) keep it that way
/// (`ShardPasses.perturbedPassAlongCleanGradient`): the clean pass records u and v instead
/// of writing ∂W, the ascent takes ‖u‖·‖v‖ for the tensor's norm, and the perturbed pass
/// computes with W + s·u·vᵀ without writing it. For the cnn's 3136×256 layer that is five
/// passes over 0.8 M weights less per example (zeroing ∂W, the outer product, its norm,
/// reading it and writing w + ε), which is what made micro-shards pay for being small.
public final class RankOneGradients {
    /// u (rows) and v (columns) of one Linear weight's gradient.
    public struct Factor {
        public let slot: Int
        public let u: FlatBuffer
        public let v: FlatBuffer
    }

    public private(set) var factors: [Factor] = []
    private var factorOfSlot: [Int: Int] = [:]
    /// The ranges of the flat buffers outside every factored weight.
    public private(set) var denseRanges: [Range<Int>] = []

    init() {}

    /// Declares `slot` (a rows × columns weight) as one whose one-example gradient is u·vᵀ.
    func register(slot: Int, rows: Int, columns: Int) {
        factorOfSlot[slot] = factors.count
        factors.append(Factor(slot: slot, u: FlatBuffer(count: rows), v: FlatBuffer(count: columns)))
    }

    func seal(parameters: [ParameterSlot], count: Int) {
        var start = 0
        for slot in factors.map({ parameters[$0.slot] }).sorted(by: { $0.offset < $1.offset }) {
            if slot.offset > start { denseRanges.append(start..<slot.offset) }
            start = slot.offset + slot.count
        }
        if count > start { denseRanges.append(start..<count) }
    }

    /// Before a clean pass that records factors (`RankOnePhase.recording`). They start at zero,
    /// so that a weight whose layer records nothing in this pass counts as a zero gradient,
    /// never as a stale one.
    func resetFactors() {
        for f in factors {
            f.u.zero()
            f.v.zero()
        }
    }

    /// The factors of `slot` (nil: not a factored weight).
    @inline(__always) func factor(of slot: Int) -> Factor? {
        factorOfSlot[slot].map { factors[$0] }
    }

    /// Σ g² over `gradient` with the factored weights' parts taken as ‖u‖²·‖v‖².
    func sumOfSquares(of gradient: FlatBuffer) -> Double {
        var sum = 0.0
        for range in denseRanges { sum += sumOfSquaresOf(gradient.data + range.lowerBound, count: range.count) }
        for f in factors { sum += f.u.sumOfSquares() * f.v.sumOfSquares() }
        return sum
    }

    /// Writes the factored weights' gradients u·vᵀ into their slices of `gradient` (for a
    /// recorder, which wants every tensor dense).
    func materialize(into gradient: FlatBuffer, parameters: [ParameterSlot]) {
        for f in factors {
            let out = gradient.data + parameters[f.slot].offset, u = f.u.data, v = f.v.data
            for r in 0..<f.u.count {
                let ur = u[r], row = out + r * f.v.count
                for c in 0..<f.v.count { row[c] = ur * v[c] }
            }
        }
    }
}
