/// A loss on a batch of logits: the descent loss (cross-entropy) or an ascent surrogate
/// (BiSAM's Q). Returns the mean over the batch and writes ∂(mean loss)/∂logits.
public protocol LogitLoss: AnyObject {
    func evaluate(logits: Tensor, labels: [Int32], gradient: Tensor) -> LossValue
}

public struct LossValue: Sendable {
    /// Mean loss over the batch.
    public var loss: Double
    /// Examples whose largest logit is the label.
    public var correct: Int
    public init(loss: Double, correct: Int) {
        self.loss = loss
        self.correct = correct
    }
}
