import Foundation

/// The learning rate of each step (docs/algorithms.md §5.4), evaluated per step from the step index, so a
/// resumed run continues exactly where it stopped.
public struct LearningRateSchedule: Equatable, Sendable {
    public enum Shape: Equatable, Sendable {
        case constant
        /// Cosine from the base rate to 0 over all steps (after warm-up).
        case cosine
        /// ×`factor` at each of the given fractions of the run.
        case multiStep(milestones: [Double], factor: Float)
    }

    public var base: Float
    public var shape: Shape
    public var totalSteps: Int
    /// Linear warm-up from base/warmupSteps to base over the first steps.
    public var warmupSteps: Int

    public init(base: Float, shape: Shape, totalSteps: Int, warmupSteps: Int = 0) {
        self.base = base
        self.shape = shape
        self.totalSteps = max(totalSteps, 1)
        self.warmupSteps = max(warmupSteps, 0)
    }

    /// The rate for step `step` (0-based).
    public func rate(at step: Int) -> Float {
        if step < warmupSteps {
            return base * Float(step + 1) / Float(warmupSteps)
        }
        switch shape {
        case .constant:
            return base
        case .cosine:
            let span = max(totalSteps - warmupSteps, 1)
            let progress = Double(step - warmupSteps) / Double(span)
            return Float(Double(base) * 0.5 * (1 + cos(Double.pi * min(progress, 1))))
        case let .multiStep(milestones, factor):
            let progress = Double(step) / Double(totalSteps)
            let passed = milestones.filter { progress >= $0 }.count
            return base * pow(factor, Float(passed))
        }
    }

    /// The largest and smallest rates the schedule takes (BSAM's ρ_min follows the rate
    /// between them).
    public var maximum: Float { base }
    public var minimum: Float {
        switch shape {
        case .constant: return base
        case .cosine: return 0
        case let .multiStep(m, f): return base * pow(f, Float(m.count))
        }
    }

    /// Parses `constant`, `cosine`, `multistep` (×0.2 at 30 %, 60 %, 80 %) or
    /// `multistep:0.5,0.75[:0.1]`.
    public static func parseShape(_ text: String) throws -> Shape {
        let parts = text.split(separator: ":", omittingEmptySubsequences: false).map(String.init)
        switch parts[0] {
        case "constant" where parts.count == 1: return .constant
        case "cosine" where parts.count == 1: return .cosine
        case "multistep", "multi-step":
            if parts.count == 1 { return .multiStep(milestones: [0.3, 0.6, 0.8], factor: 0.2) }
            let milestones = parts[1].split(separator: ",").compactMap { Double($0) }
            guard milestones.count == parts[1].split(separator: ",").count, !milestones.isEmpty,
                  milestones.allSatisfy({ $0 > 0 && $0 < 1 }) else {
                throw SAMTrainError("--schedule \(text): milestones must be fractions in (0, 1), e.g. multistep:0.5,0.75")
            }
            var factor: Float = 0.2
            if parts.count == 3 {
                guard let f = Float(parts[2]), f > 0 else {
                    throw SAMTrainError("--schedule \(text): the factor must be a positive number, e.g. multistep:0.5,0.75:0.1")
                }
                factor = f
            }
            return .multiStep(milestones: milestones.sorted(), factor: factor)
        default:
            throw SAMTrainError("--schedule \(text): unknown schedule; use constant, cosine or multistep[:FRACTIONS[:FACTOR]]")
        }
    }
}
