/// Which steps run the variant's ascent (docs/algorithms.md §1, "When the ascent runs"): every
/// `every`-th step (step index mod `every` = 0) once the fraction `from` of all steps has
/// passed; the other steps are plain base-optimizer steps on the clean gradient, as
/// `--sam none` takes them. The default, every step, is SAM throughout.
public struct AscentSchedule: Equatable, Sendable {
    /// `--sam-every K`.
    public var every = 1
    /// `--sam-from F`: the fraction of all steps before the first SAM step.
    public var from = 0.0

    public init(every: Int = 1, from: Double = 0) {
        self.every = every
        self.from = from
    }

    public func validate() throws {
        guard (1...1_000_000).contains(every) else { throw SAMTrainError("--sam-every \(every): must be in 1…1000000") }
        guard from >= 0, from < 1 else { throw SAMTrainError("--sam-from \(from): must be in [0, 1) (0.8: SAM in the last 20 % of the steps)") }
    }

    /// Whether step `step` (0-based) of a run of `totalSteps` steps is a SAM step.
    public func runsAscent(step: Int, totalSteps: Int) -> Bool {
        step % every == 0 && Double(step) >= from * Double(totalSteps)
    }

    /// How many steps of `range` (0-based, in a run of `totalSteps`) are SAM steps: the count of
    /// `runsAscent` over the range, in closed form, so that a step count read from a file costs
    /// nothing however large it is.
    public func ascentSteps(in range: Range<Int>, totalSteps: Int) -> Int {
        guard every > 0, totalSteps >= 0, range.upperBound > 0 else { return 0 }
        // The first step s with Double(s) >= from · T is that product rounded up.
        let threshold = (from * Double(totalSteps)).rounded(.up)
        guard threshold < Double(range.upperBound) else { return 0 }   // also false for NaN
        let lower = max(range.lowerBound, 0, Int(max(threshold, 0)))
        let remainder = lower % every
        let gap = remainder == 0 ? 0 : every - remainder   // to the next multiple of `every`
        guard gap < range.upperBound - lower else { return 0 }
        return (range.upperBound - 1 - (lower + gap)) / every + 1
    }

    /// Whether every step is a SAM step.
    public var isEveryStep: Bool { every == 1 && from == 0 }
}
