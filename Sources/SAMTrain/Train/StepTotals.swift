/// Sums over steps of what `SAMStep.run` reports: this rank's, or over all ranks.
struct StepTotals {
    var lossSum = 0.0
    var correct = 0.0
    var examples = 0.0
    /// The same over the SAM steps only (a schedule's plain steps have no perturbed point).
    var ascentLossSum = 0.0
    var ascentExamples = 0.0
    var perturbedLossSum = 0.0
    /// Σ over steps of the step's mean ‖g‖ and ‖ε‖ over its shards.
    var gradientNorm = 0.0
    var epsilonNorm = 0.0
    var ascentSteps = 0.0

    mutating func add(_ s: StepStatistics) {
        lossSum += s.lossAtWSum
        correct += Double(s.correct)
        examples += Double(s.examples)
        if s.ascended {
            ascentLossSum += s.lossAtWSum
            ascentExamples += Double(s.examples)
            ascentSteps += 1
        }
        perturbedLossSum += s.lossAtPerturbedSum
        gradientNorm += s.gradientNormSum / Double(s.shards)
        epsilonNorm += s.epsilonNormSum / Double(s.shards)
    }

    /// The totals of every rank (one allreduce).
    func summed(over world: Communicator) -> StepTotals {
        let g = world.allreduceSum([lossSum, correct, examples, ascentLossSum, ascentExamples, perturbedLossSum,
                                    gradientNorm, epsilonNorm])
        return StepTotals(lossSum: g[0], correct: g[1], examples: g[2], ascentLossSum: g[3], ascentExamples: g[4],
                          perturbedLossSum: g[5], gradientNorm: g[6], epsilonNorm: g[7], ascentSteps: ascentSteps)
    }

    /// The totals in a fixed order (a checkpoint keeps them), and back.
    var values: [Double] {
        [lossSum, correct, examples, ascentLossSum, ascentExamples, perturbedLossSum, gradientNorm, epsilonNorm, ascentSteps]
    }

    init?(values v: [Double]) {
        guard v.count == 9, v.allSatisfy(\.isFinite) else { return nil }
        self.init(lossSum: v[0], correct: v[1], examples: v[2], ascentLossSum: v[3], ascentExamples: v[4],
                  perturbedLossSum: v[5], gradientNorm: v[6], epsilonNorm: v[7], ascentSteps: v[8])
    }

    init() {}

    init(lossSum: Double, correct: Double, examples: Double, ascentLossSum: Double, ascentExamples: Double,
         perturbedLossSum: Double, gradientNorm: Double, epsilonNorm: Double, ascentSteps: Double) {
        self.lossSum = lossSum
        self.correct = correct
        self.examples = examples
        self.ascentLossSum = ascentLossSum
        self.ascentExamples = ascentExamples
        self.perturbedLossSum = perturbedLossSum
        self.gradientNorm = gradientNorm
        self.epsilonNorm = epsilonNorm
        self.ascentSteps = ascentSteps
    }

    var loss: Double { lossSum / examples }
    var accuracy: Double { correct / examples }
    /// Mean loss at w + ε over the SAM steps, and its excess over the loss at w there.
    var perturbedLoss: Double { perturbedLossSum / ascentExamples }
    var sharpness: Double { (perturbedLossSum - ascentLossSum) / ascentExamples }
}
