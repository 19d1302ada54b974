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
    /// Whether Hessian-vector products hold the ReLU and max-pool pattern of w fixed at
    /// w ± h·v (`ActivationPattern`). Without it the central difference adds, for every
    /// unit that h·v moves across zero, a jump divided by 2h, whatever h: on the cnn, λ_max
    /// then came out anywhere between 0 and 200 depending on h.
    public var freezesActivationPatterns = true
    private enum PatternUse { case none, record, replay }
    private var patternUse = PatternUse.none
    /// One pattern per chunk of examples and piecewise-linear layer, and the digest of the
    /// weights they were recorded at.
    private var patterns: [[ActivationPattern]] = []
    private var patternWeights: UInt64?

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
        var i = part.lowerBound, c = 0
        defer { if patternUse != .none { model.setLivePatterns() } }
        while i < part.upperBound {
            let n = min(chunk, part.upperBound - i)
            dataset.gather(i..<(i + n), into: images, labels: &labels)
            switch patternUse {
            case .none: break
            case .record:
                if patterns.count <= c { patterns.append((0..<model.piecewiseLinearLayerCount).map { _ in ActivationPattern() }) }
                model.setPatternMode({ .record($0) }, patterns: patterns[c])
            case .replay:
                model.setPatternMode({ .replay($0) }, patterns: patterns[c])
            }
            c += 1
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

    /// The length of the finite-difference step ‖h·v‖ of `hessianVectorProduct`. With the
    /// activation pattern frozen the loss is smooth along v, and λ_max of the trained cnn is
    /// the same to 4 digits for steps from 1e-4 to 1e-2 (1e-1 is off by 15 %).
    public var finiteDifferenceStep = 1e-3

    /// H·v by a central difference of gradients: (∇L(w + h·v) − ∇L(w − h·v)) / 2h, with
    /// h = step/‖v‖ (`finiteDifferenceStep` unless given). Leaves w exactly as it was.
    public func hessianVectorProduct(_ v: FlatBuffer, into out: FlatBuffer, step: Double? = nil) {
        if freezesActivationPatterns && model.piecewiseLinearLayerCount > 0 {
            let digest = weights.digest()
            if digest != patternWeights {
                patternUse = .record
                evaluate(withGradient: false)
                patternWeights = digest
            }
            patternUse = .replay
        }
        defer { patternUse = .none }
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
