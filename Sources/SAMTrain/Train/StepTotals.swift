/// Sums over steps of what `SAMStep.run` reports: this rank's, or over all ranks.
struct StepTotals {
    var lossSum = 0.0
    var correct = 0.0
    var examples = 0.0
    var perturbedLossSum = 0.0
    /// Σ over steps of the step's mean ‖g‖ and ‖ε‖ over its shards.
    var gradientNorm = 0.0
    var epsilonNorm = 0.0

    mutating func add(_ s: StepStatistics) {
        lossSum += s.lossAtWSum
        correct += Double(s.correct)
        examples += Double(s.examples)
        perturbedLossSum += s.lossAtPerturbedSum
        gradientNorm += s.gradientNormSum / Double(s.shards)
        epsilonNorm += s.epsilonNormSum / Double(s.shards)
    }

    /// The totals of every rank (one allreduce).
    func summed(over world: Communicator) -> StepTotals {
        let g = world.allreduceSum([lossSum, correct, examples, perturbedLossSum, gradientNorm, epsilonNorm])
        return StepTotals(lossSum: g[0], correct: g[1], examples: g[2], perturbedLossSum: g[3], gradientNorm: g[4], epsilonNorm: g[5])
    }

    var loss: Double { lossSum / examples }
    var accuracy: Double { correct / examples }
    var perturbedLoss: Double { perturbedLossSum / examples }
}
