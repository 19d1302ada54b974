/// The loss of a fixed data subset as a function of the parameters, evaluated data-parallel
/// (each rank takes a contiguous part; sums are all-reduced) with BatchNorm in eval mode, so
/// that it is a deterministic function of w: what Hessian, sharpness and line probes need.
public final class LossLandscape {
    public let model: Sequential
    public let world: Communicator
    let dataset: Dataset
    let range: Range<Int>
    let total: Int
    let loss = SoftmaxCrossEntropy(labelSmoothing: 0)
    let chunk = 500
    private let images = Tensor(shape: [0])
    private let logitGradient = Tensor(shape: [0])
    private var labels: [Int32] = []
    /// Σ of chunk gradients, then the mean.
    public let gradient: FlatBuffer

    /// Probes the first `subset` examples of `dataset` (all when nil).
    public init(model: Sequential, dataset: Dataset, subset: Int?, world: Communicator) {
        self.model = model
        self.world = world
        self.dataset = dataset
        total = min(subset ?? dataset.count, dataset.count)
        range = EvaluationSplit.range(count: total, rank: world.rank, worldSize: world.size)
        gradient = FlatBuffer(count: model.store.count)
    }

    public var weights: FlatBuffer { model.store.values }

    /// Mean loss over the subset at the current weights (and its gradient, when asked, in
    /// `gradient`). Collective.
    @discardableResult
    public func evaluate(withGradient: Bool, examples: Range<Int>? = nil, collective: Bool = true) -> Double {
        let part = examples ?? range
        var lossSum = 0.0
        if withGradient { gradient.zero() }
        var i = part.lowerBound
        while i < part.upperBound {
            let n = min(chunk, part.upperBound - i)
            dataset.gather(i..<(i + n), into: images, labels: &labels)
            let logits = model.forward(images, mode: .eval)
            let value = loss.evaluate(logits: logits, labels: labels, gradient: logitGradient)
            lossSum += value.loss * Double(n)
            if withGradient {
                model.backward(logitGradient)
                gradient.add(model.store.gradients, scaledBy: Float(n))
            }
            i += n
        }
        let count = collective ? total : part.count
        if collective {
            if withGradient { world.allreduceSum(gradient) }
            lossSum = world.allreduceSum([lossSum])[0]
        }
        if withGradient { gradient.scale(by: 1 / Float(max(count, 1))) }
        return lossSum / Double(max(count, 1))
    }

    /// The length of the finite-difference step ‖h·v‖ of `hessianVectorProduct`. Small,
    /// because ReLU and max-pool make the gradient piecewise smooth: a step that moves a
    /// pre-activation across zero adds a jump divided by 2h (at 1e-3, a trained mlp's dense
    /// Hessian came out with a spurious eigenvalue 4 × the true one); large enough that
    /// float32 rounding of the two gradients stays small against their difference.
    public var finiteDifferenceStep = 1e-4

    /// H·v by a central difference of gradients: (∇L(w + h·v) − ∇L(w − h·v)) / 2h, with
    /// h = step/‖v‖ (`finiteDifferenceStep` unless given). Leaves w exactly as it was.
    public func hessianVectorProduct(_ v: FlatBuffer, into out: FlatBuffer, step: Double? = nil) {
        let saved = FlatBuffer(count: weights.count)
        saved.copy(from: weights)
        let h = Float((step ?? finiteDifferenceStep) / max(v.norm(), 1e-30))
        weights.add(v, scaledBy: h)
        evaluate(withGradient: true)
        out.copy(from: gradient)
        weights.copy(from: saved)
        weights.add(v, scaledBy: -h)
        evaluate(withGradient: true)
        out.add(gradient, scaledBy: -1)
        out.scale(by: 1 / (2 * h))
        weights.copy(from: saved)
    }
}
