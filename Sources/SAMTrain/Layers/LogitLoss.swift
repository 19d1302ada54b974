/// A loss on a batch of logits: the descent loss (cross-entropy) or an ascent surrogate
/// (BiSAM's Q). Returns the batch's loss summed and divided by `meanOver`, and writes its
/// gradient ∂/∂logits; with `keepingExampleLosses`, also each example's loss (ESAM's data
/// selection). `meanOver` is the batch's size, or the whole shard's when the batch is one
/// chunk of it (`--micro-batch`): the chunks' values and gradients then add up to the
/// shard's mean, each example's logit gradient exactly as without chunks.
public protocol LogitLoss: AnyObject {
    func evaluate(logits: Tensor, labels: [Int32], gradient: Tensor, keepingExampleLosses: Bool, meanOver: Int) -> LossValue
}

extension LogitLoss {
    public func evaluate(logits: Tensor, labels: [Int32], gradient: Tensor, keepingExampleLosses: Bool = false) -> LossValue {
        evaluate(logits: logits, labels: labels, gradient: gradient, keepingExampleLosses: keepingExampleLosses,
                 meanOver: logits.shape[0])
    }
}

public struct LossValue: Sendable {
    /// Mean loss over the batch (or the batch's share of its shard's mean).
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

extension LossValue {
    /// Adds the value of another chunk of the same shard (losses already divided by the
    /// shard's size).
    mutating func add(_ other: LossValue) {
        loss += other.loss
        correct += other.correct
        exampleLosses += other.exampleLosses
    }
}
