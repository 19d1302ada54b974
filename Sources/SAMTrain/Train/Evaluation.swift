/// Test-set evaluation (docs/algorithms.md §6.5): each rank evaluates a contiguous part of the test set in
/// eval mode; loss sums and correct counts are summed with one allreduce, so every test
/// example counts exactly once whatever the rank count.
public enum Evaluation {
    /// Images per forward pass: 100 keeps the activations of a wide ResNet within memory.
    public static let defaultChunk = 100

    public static func run(model: Sequential, dataset: Dataset, world: Communicator, chunk: Int = defaultChunk) -> (loss: Double, accuracy: Double) {
        let range = EvaluationSplit.range(count: dataset.count, rank: world.rank, worldSize: world.size)
        let loss = SoftmaxCrossEntropy(labelSmoothing: 0)
        let images = Tensor(shape: [chunk, dataset.channels, dataset.height, dataset.width])
        let gradient = Tensor(shape: [chunk, dataset.classes])
        var labels: [Int32] = []
        var sums = [0.0, 0.0, 0.0]
        var i = range.lowerBound
        while i < range.upperBound {
            let n = min(chunk, range.upperBound - i)
            dataset.gather(i..<(i + n), into: images, labels: &labels)   // never augmented
            let logits = model.forward(images, mode: .eval)
            let value = loss.evaluate(logits: logits, labels: labels, gradient: gradient)
            sums[0] += value.loss * Double(n)
            sums[1] += Double(value.correct)
            sums[2] += Double(n)
            i += n
        }
        let g = world.allreduceSum(sums)
        return (g[0] / max(g[2], 1), g[1] / max(g[2], 1))
    }

    /// Every test example's logits, N×classes in example order, on rank 0 (empty elsewhere):
    /// each rank computes its part as `run` does, and rank 0 gathers them.
    public static func logits(model: Sequential, dataset: Dataset, world: Communicator, chunk: Int = defaultChunk) -> [Float] {
        let classes = dataset.classes
        let range = EvaluationSplit.range(count: dataset.count, rank: world.rank, worldSize: world.size)
        // Gather takes one count from every rank: the largest part, padded.
        let part = EvaluationSplit.range(count: dataset.count, rank: 0, worldSize: world.size).count
        var mine = [Float](repeating: 0, count: part * classes)
        let images = Tensor(shape: [chunk, dataset.channels, dataset.height, dataset.width])
        var labels: [Int32] = []
        var i = range.lowerBound
        while i < range.upperBound {
            let n = min(chunk, range.upperBound - i)
            dataset.gather(i..<(i + n), into: images, labels: &labels)
            let out = model.forward(images, mode: .eval)
            for j in 0..<(n * classes) { mine[(i - range.lowerBound) * classes + j] = out.data[j] }
            i += n
        }
        let all = world.gather(mine)
        guard world.isCoordinator else { return [] }
        var logits: [Float] = []
        logits.reserveCapacity(dataset.count * classes)
        for r in 0..<world.size {
            let n = EvaluationSplit.range(count: dataset.count, rank: r, worldSize: world.size).count
            logits += all[(r * part * classes)..<((r * part + n) * classes)]
        }
        return logits
    }
}
