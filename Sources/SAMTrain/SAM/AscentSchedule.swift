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

    /// Whether every step is a SAM step.
    public var isEveryStep: Bool { every == 1 && from == 0 }
}
