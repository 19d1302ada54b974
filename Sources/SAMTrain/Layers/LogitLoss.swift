/// A loss on a batch of logits: the descent loss (cross-entropy) or an ascent surrogate
/// (BiSAM's Q). Returns the mean over the batch and writes ∂(mean loss)/∂logits; with
/// `keepingExampleLosses`, also each example's loss (ESAM's data selection).
public protocol LogitLoss: AnyObject {
    func evaluate(logits: Tensor, labels: [Int32], gradient: Tensor, keepingExampleLosses: Bool) -> LossValue
}

extension LogitLoss {
    public func evaluate(logits: Tensor, labels: [Int32], gradient: Tensor) -> LossValue {
        evaluate(logits: logits, labels: labels, gradient: gradient, keepingExampleLosses: false)
    }
}

public struct LossValue: Sendable {
    /// Mean loss over the batch.
    public var loss: Double
    /// Examples whose largest logit is the label.
    public var correct: Int
    /// Each example's loss, when asked for (else empty).
    public var exampleLosses: [Double]
    public init(loss: Double, correct: Int, exampleLosses: [Double] = []) {
        self.loss = loss
        self.correct = correct
        self.exampleLosses = exampleLosses
    }
}
