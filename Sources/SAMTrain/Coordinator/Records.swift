/// One epoch's results, as logged.
public struct EpochRecord: Codable, Sendable, Equatable {
    public var epoch: Int
    public var step: Int
    public var trainLoss: Double
    public var trainAccuracy: Double
    public var testLoss: Double
    public var testAccuracy: Double
    public var imagesPerSecond: Double
    public var seconds: Double
}

/// A logged step: the interval's losses since the last one, the step's norms.
public struct StepRecord: Sendable {
    public var step: Int
    public var epoch: Int
    public var learningRate: Float
    public var rho: Float
    /// Mean loss and accuracy at w over the interval, all ranks.
    public var loss: Double
    public var accuracy: Double
    public var imagesPerSecond: Double
    /// ‖g‖ of the step (mean over rank 0's shards).
    public var gradientNorm: Double
    /// Whether the logged step was a SAM step (false: a plain one, `--sam-every`, `--sam-from`).
    public var ascended: Bool
    /// SAM steps in the interval since the last record.
    public var ascentSteps: Int
    /// What the perturbed passes saw over the interval's SAM steps (nil: none ran).
    public var perturbed: Perturbed?
    /// Mean seconds per step of each phase since the epoch began.
    public var secondsPerStep: [Phase: Double]

    public struct Perturbed: Sendable {
        /// Mean loss at w + ε over the interval's SAM steps, all ranks.
        public var loss: Double
        /// loss at w + ε − loss at w.
        public var sharpness: Double
        /// ‖ε‖ of the logged step (mean over rank 0's shards; 0 for a plain step).
        public var epsilonNorm: Double
    }

    /// The record as `metrics.jsonl` writes it.
    var json: [String: Any] {
        var record: [String: Any] = [
            "kind": "step", "step": step, "epoch": epoch, "lr": Double(learningRate), "rho": Double(rho),
            "loss": loss, "accuracy": accuracy, "images_per_s": imagesPerSecond, "grad_norm": gradientNorm,
            "seconds_per_step": Dictionary(uniqueKeysWithValues: Phase.allCases.map { ($0.rawValue, secondsPerStep[$0, default: 0]) }),
            "step_kind": ascended ? "sam" : "plain", "sam_steps": ascentSteps,
        ]
        if let perturbed {
            record["loss_perturbed"] = perturbed.loss
            record["sharpness"] = perturbed.sharpness
            record["epsilon_norm"] = perturbed.epsilonNorm
        }
        return record
    }
}
