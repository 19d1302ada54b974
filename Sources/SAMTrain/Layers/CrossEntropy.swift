import Foundation

/// Softmax cross-entropy, mean over the batch, computed with log-sum-exp so that logits of
/// any size are safe. Label smoothing s puts 1 − s on the true class and s/(K−1) on each
/// other class (docs/algorithms.md §4.1).
public final class SoftmaxCrossEntropy: LogitLoss {
    public let labelSmoothing: Float

    public init(labelSmoothing: Float = 0) { self.labelSmoothing = labelSmoothing }

    public func evaluate(logits: Tensor, labels: [Int32], gradient: Tensor, keepingExampleLosses: Bool, meanOver: Int) -> LossValue {
        let n = logits.shape[0], k = logits.shape[1]
        precondition(labels.count == n)
        gradient.resize([n, k])
        let z = logits.data, dz = gradient.data
        let s = Double(labelSmoothing)
        let onTrue = 1 - s, offTrue = k > 1 ? s / Double(k - 1) : 0
        var total = 0.0
        var correct = 0
        var exampleLosses = [Double](repeating: 0, count: keepingExampleLosses ? n : 0)
        for r in 0..<n {
            let row = z + r * k, grow = dz + r * k
            let y = Int(labels[r])
            var maxValue = row[0], argmax = 0
            for j in 1..<k where row[j] > maxValue { maxValue = row[j]; argmax = j }
            if argmax == y { correct += 1 }
            var sum = 0.0
            for j in 0..<k { sum += exp(Double(row[j] - maxValue)) }
            let logSumExp = Double(maxValue) + log(sum)
            var loss = 0.0
            for j in 0..<k {
                let target = j == y ? onTrue : offTrue
                let logP = Double(row[j]) - logSumExp
                if target != 0 { loss -= target * logP }
                grow[j] = Float((exp(logP) - target) / Double(meanOver))
            }
            total += loss
            if keepingExampleLosses { exampleLosses[r] = loss }
        }
        return LossValue(loss: total / Double(meanOver), correct: correct, exampleLosses: exampleLosses)
    }
}
