/// The passes a variant can make on one shard (SPEC §1, moves 1–4), and the shard's data.
///
/// `cleanPass` is move 1 (the only pass that updates BatchNorm's running statistics);
/// `perturbedPass` is moves 3–4: it writes `w + offset` into a second buffer, lets the model
/// read its weights from there while it backpropagates with frozen statistics, and switches
/// back to `w` (bit-exact, no copy). When a shard spans several
/// ranks (`group`), a pass can average its gradient over the group, so that a group
/// computes what one process holding its m examples would.
///
/// Both group averages and the step's allreduce run in buckets that start while the
/// backward pass is still going (`BucketedAllreduce`): a pass reports each layer's finished
/// parameters (`parametersDone`), which adds their weight-decay term, starts their group
/// bucket, or — for the pass a variant marks `yieldsDirection` — hands them to
/// `directionSink`, the step's own allreduce.
public final class ShardPasses {
    public let model: Sequential
    public let descentLoss: LogitLoss
    /// The ranks that share this shard's ε (nil: the shard lives in this rank alone).
    public let group: Communicator?
    /// `wd` when `0.5·wd·‖w‖²` is part of the loss (`--wd-in-ascent`), else 0.
    public let weightDecayInLoss: Float
    public let timer: PhaseTimer
    /// Scratch for a variant's ε (one pass to fill, no allocation per step).
    public let epsilon: FlatBuffer
    /// When set, the passes compute ‖g‖ and ‖ε‖ for the metrics.
    public var measuresNorms = false
    /// Receives every quantity of the shard (conformance runs).
    public var recorder: ShardRecorder?
    /// Set by the step for its last shard: receives the parameters of the direction pass as
    /// the backward pass finishes them, so that their allreduce can start at once.
    var directionSink: DirectionSink?
    /// Whether the latest direction pass went to `directionSink`.
    private(set) var streamedDirection = false
    /// Set by the step when a rank has several micro-shards: a perturbed direction pass adds
    /// its gradient straight into this buffer (the sum of the shards' directions) instead of
    /// zeroed gradients that the step would add up afterwards — two passes over every
    /// parameter less per micro-shard. Not used while a recorder wants each shard's gradient.
    var directionAccumulator: FlatBuffer?
    /// Whether the latest direction pass went into `directionAccumulator` (its returned
    /// gradient is then not the shard's direction).
    private(set) var accumulatedDirection = false
    /// The group average of a multi-rank shard, bucket by bucket.
    private let groupAllreduce: BucketedAllreduce?

    public internal(set) var images = Tensor(shape: [0])
    public internal(set) var labels: [Int32] = []

    /// Results of the latest passes, for the metrics.
    public private(set) var lossAtW = 0.0
    public private(set) var correctAtW = 0
    public private(set) var lossAtPerturbed = 0.0
    public private(set) var gradientNorm = 0.0
    public private(set) var epsilonNorm = 0.0

    /// w + offset during a perturbed pass (the model's values buffer then), else scratch.
    private var perturbedWeights: FlatBuffer
    private let logitGradient = Tensor(shape: [0])
    private let scratchLogitGradient = Tensor(shape: [0])

    public init(model: Sequential, descentLoss: LogitLoss, group: Communicator?, weightDecayInLoss: Float,
                timer: PhaseTimer, allreduce: AllreduceSettings = AllreduceSettings()) {
        self.model = model
        groupAllreduce = group.map { BucketedAllreduce(communicator: $0, parameters: model.store.parameters, settings: allreduce) }
        self.descentLoss = descentLoss
        self.group = group
        self.weightDecayInLoss = weightDecayInLoss
        self.timer = timer
        epsilon = FlatBuffer(count: model.store.count)
        perturbedWeights = FlatBuffer(count: model.store.count)
    }

    public var weights: FlatBuffer { model.store.values }
    public var gradient: FlatBuffer { model.store.gradients }
    public var parameters: [ParameterSlot] { model.store.parameters }

    /// Move 1: forward + backward at `w` in train mode, updating the running statistics.
    /// Backpropagates `objective` (default: the descent loss); the descent loss at `w` is
    /// always computed for the metrics. With `groupAverage`, the gradient is averaged over
    /// the shard's ranks (the ascent of a multi-rank shard needs it; plain SGD does not).
    /// `yieldsDirection`: this pass's gradient is the shard's direction (the variant returns it).
    @discardableResult
    public func cleanPass(objective: LogitLoss? = nil, groupAverage: Bool = true, yieldsDirection: Bool = false) -> FlatBuffer {
        let logits = timer.measure(.forward) { model.forward(images, mode: .train) }
        let ce = keepsExampleLosses ? descentLoss as? SoftmaxCrossEntropy : nil
        ce?.keepsExampleLosses = true
        let descent = descentLoss.evaluate(logits: logits, labels: labels, gradient: logitGradient)
        if let ce {
            exampleLossesAtW = ce.exampleLosses
            ce.keepsExampleLosses = false
        }
        var ascentValue: LossValue?
        if let objective {
            ascentValue = objective.evaluate(logits: logits, labels: labels, gradient: logitGradient)
        }
        backward(groupAverage: groupAverage, yieldsDirection: yieldsDirection, mayAccumulate: false)
        lossAtW = descent.loss + weightDecayTerm()
        correctAtW = descent.correct
        if measuresNorms { gradientNorm = gradientSumOfSquares().squareRoot() }
        if let recorder {
            if rankOne.isRecording { rankOne.materialize(into: gradient, parameters: parameters) }
            recorder.record("loss_at_w", value: lossAtW)
            if let ascentValue { recorder.record("ascent_loss_at_w", value: ascentValue.loss + weightDecayTerm()) }
            recorder.record("grad_at_w", buffer: gradient)
        }
        return gradient
    }

    /// Moves 3–4: forward + backward at `w + offset` with frozen running statistics, then
    /// `w` back exactly. Returns the gradient there (group-averaged if asked).
    @discardableResult
    public func perturbedPass(offset: FlatBuffer, point: PerturbedPoint = .ascent, groupAverage: Bool = false,
                              yieldsDirection: Bool = false) -> FlatBuffer {
        writePerturbedWeights(offset)
        let loss = passAtPerturbedWeights(groupAverage: groupAverage, yieldsDirection: yieldsDirection)
        if point == .ascent {
            lossAtPerturbed = loss
            if measuresNorms { epsilonNorm = offset.norm() }
        }
        if let recorder {
            recorder.record(point.offsetKey, buffer: offset)
            recorder.record(point.lossKey, value: loss)
            recorder.record(point.gradientKey, buffer: gradient)
        }
        return gradient
    }

    /// Moves 3–4 at the ascent point w + scale·g (SAM's ε for p = 2), written in one pass
    /// without ε itself; the same pass as `perturbedPass(offset:)` with ε = scale·g, which
    /// it falls back to when a recorder wants ε (AscentTests compares the two paths).
    /// `normOfAlong` is ‖g‖ when the caller has it (spares a pass over g on logged steps).
    @discardableResult
    public func perturbedPass(along g: FlatBuffer, scaledBy scale: Float, point: PerturbedPoint = .ascent,
                              groupAverage: Bool = false, yieldsDirection: Bool = false,
                              normOfAlong: Double? = nil) -> FlatBuffer {
        if recorder != nil {
            timer.measure(.ascent) {
                let e = epsilon.data, gp = g.data
                for i in 0..<g.count { e[i] = scale * gp[i] }
            }
            return perturbedPass(offset: epsilon, point: point, groupAverage: groupAverage, yieldsDirection: yieldsDirection)
        }
        // ‖ε‖ = |scale|·‖g‖, taken before the pass overwrites g.
        let offsetNorm = measuresNorms && point == .ascent ? Double(abs(scale)) * (normOfAlong ?? g.norm()) : 0
        timer.measure(.ascent) {
            let w = weights.data, gp = g.data, p = perturbedWeights.data
            for i in 0..<g.count { p[i] = w[i] + scale * gp[i] }
        }
        let loss = passAtPerturbedWeights(groupAverage: groupAverage, yieldsDirection: yieldsDirection)
        if point == .ascent {
            lossAtPerturbed = loss
            if measuresNorms { epsilonNorm = offsetNorm }
        }
        return gradient
    }

    /// Hands the latest pass's gradient to `buffer` by exchanging the two (no copy): the next
    /// pass writes into what `buffer` held. For a variant that keeps one pass's gradient
    /// while it makes another.
    public func keepGradient(in buffer: inout FlatBuffer) {
        model.store.exchangeGradients(with: &buffer)
    }

    /// Moves 1–4 for an ε along the clean gradient, ε = scale(‖g‖)·g (SAM with p = 2): the
    /// clean pass, then the perturbed pass at w + ε; returns the gradient there. A shard of one
    /// example that lives in this rank keeps its Linear weights' gradients as outer products
    /// (`RankOneGradients`); the numbers are those of `cleanPass` + `perturbedPass(along:)`
    /// up to rounding (the conformance case sam_m1 takes this path).
    public func perturbedPassAlongCleanGradient(yieldsDirection: Bool = false,
                                                scale: (_ gradientNorm: Double) -> Float) -> FlatBuffer {
        guard factorsOneExample, images.shape[0] == 1, group == nil, weightDecayInLoss == 0,
              !rankOne.factors.isEmpty else {
            let g = cleanPass()
            // A logged step's clean pass has taken ‖g‖ already (`gradientNorm`, the same sum).
            let norm = measuresNorms ? gradientNorm : timer.measure(.ascent) { g.norm() }
            return perturbedPass(along: g, scaledBy: scale(norm), yieldsDirection: yieldsDirection, normOfAlong: norm)
        }
        rankOne.beginRecording()
        defer { rankOne.phase = .off }
        let g = cleanPass()
        let norm = measuresNorms ? gradientNorm : timer.measure(.ascent) { gradientSumOfSquares().squareRoot() }
        let s = scale(norm)
        if let recorder {
            timer.measure(.ascent) { for i in 0..<g.count { epsilon[i] = s * g[i] } }
            recorder.record("epsilon", buffer: epsilon)
        }
        timer.measure(.ascent) {
            let w = weights.data, gp = g.data, p = perturbedWeights.data
            for range in rankOne.denseRanges { for i in range { p[i] = w[i] + s * gp[i] } }
        }
        rankOne.phase = .applying(scale: s, base: weights)
        lossAtPerturbed = passAtPerturbedWeights(groupAverage: false, yieldsDirection: yieldsDirection)
        if measuresNorms { epsilonNorm = Double(abs(s)) * norm }
        if let recorder {
            recorder.record("loss_at_perturbed", value: lossAtPerturbed)
            recorder.record("grad_at_perturbed", buffer: gradient)
        }
        return gradient
    }

    /// Whether one-example shards keep Linear gradients factored (tests compare both ways).
    public var factorsOneExample = true
    private var rankOne: RankOneGradients { model.store.rankOne }

    /// Σ g² of the latest clean gradient (its factored weights' parts from their factors).
    private func gradientSumOfSquares() -> Double {
        rankOne.isRecording ? rankOne.sumOfSquares(of: gradient) : gradient.sumOfSquares()
    }

    /// Each example's descent loss at `w + offset`, from a forward pass alone (frozen running
    /// statistics; ESAM's data selection). The mean is the shard's loss at the perturbed point.
    public func exampleLosses(at offset: FlatBuffer) -> [Double] {
        guard let ce = descentLoss as? SoftmaxCrossEntropy else { preconditionFailure("per-example losses need the cross-entropy") }
        writePerturbedWeights(offset)
        model.store.exchangeValues(with: &perturbedWeights)
        defer { model.store.exchangeValues(with: &perturbedWeights) }
        let logits = timer.measure(.forward) { model.forward(images, mode: .trainFrozenStatistics) }
        ce.keepsExampleLosses = true
        defer { ce.keepsExampleLosses = false }
        lossAtPerturbed = ce.evaluate(logits: logits, labels: labels, gradient: logitGradient).loss + weightDecayTerm()
        return ce.exampleLosses
    }

    /// The per-example losses of the latest clean pass (kept when `keepsExampleLosses`).
    public var keepsExampleLosses = false
    public private(set) var exampleLossesAtW: [Double] = []

    /// Moves 3–4 on a subset of the shard's examples (ESAM's selection, in `indices` order):
    /// the gradient at `w + offset` of their mean loss. The shard's loss at the perturbed
    /// point stays the one of all its examples when `exampleLosses(at:)` gave it.
    @discardableResult
    public func perturbedPass(offset: FlatBuffer, examples indices: [Int], yieldsDirection: Bool = false) -> FlatBuffer {
        let allImages = images, allLabels = labels, allLoss = lossAtPerturbed
        let perExample = allImages.count / max(allImages.shape[0], 1)
        var shape = allImages.shape
        shape[0] = indices.count
        subsetImages.resize(shape)
        for (row, i) in indices.enumerated() {
            (subsetImages.data + row * perExample).update(from: allImages.data + i * perExample, count: perExample)
        }
        images = subsetImages
        labels = indices.map { allLabels[$0] }
        defer {
            images = allImages
            labels = allLabels
            lossAtPerturbed = allLoss
        }
        return perturbedPass(offset: offset, yieldsDirection: yieldsDirection)
    }
    private let subsetImages = Tensor(shape: [0])

    /// `perturbedWeights` = w + offset (the model reads them during a perturbed pass).
    private func writePerturbedWeights(_ offset: FlatBuffer) {
        timer.measure(.ascent) {
            let w = weights.data, o = offset.data, p = perturbedWeights.data
            for i in 0..<offset.count { p[i] = w[i] + o[i] }
        }
    }

    /// Forward + backward with the model reading `perturbedWeights`; returns the loss there.
    private func passAtPerturbedWeights(groupAverage: Bool, yieldsDirection: Bool) -> Double {
        model.store.exchangeValues(with: &perturbedWeights)
        defer { model.store.exchangeValues(with: &perturbedWeights) }
        let logits = timer.measure(.forward) { model.forward(images, mode: .trainFrozenStatistics) }
        let value = descentLoss.evaluate(logits: logits, labels: labels, gradient: logitGradient)
        let loss = value.loss + weightDecayTerm()
        backward(groupAverage: groupAverage, yieldsDirection: yieldsDirection, mayAccumulate: true)
        return loss
    }

    /// `0.5·wd·‖w‖²` at the current weights (0 unless `--wd-in-ascent`).
    private func weightDecayTerm() -> Double {
        weightDecayInLoss == 0 ? 0 : 0.5 * Double(weightDecayInLoss) * weights.sumOfSquares()
    }

    /// Backpropagates `logitGradient` at the current weights. As each layer finishes, its
    /// parameters get their weight-decay term and go to the group average's buckets (a pass
    /// averaged over the shard's ranks) or, for the direction pass, to `directionSink`; then
    /// the started buckets advance. A group average is complete when this returns.
    private func backward(groupAverage: Bool, yieldsDirection: Bool, mayAccumulate: Bool) {
        let group = groupAverage ? groupAllreduce : nil
        // A direction that is also group-averaged is final only after the group's
        // allreduce: the step reduces it afterwards instead.
        let sink = yieldsDirection && group == nil ? directionSink : nil
        streamedDirection = sink != nil
        let accumulate = mayAccumulate && yieldsDirection && group == nil && recorder == nil
            && directionAccumulator != nil
        accumulatedDirection = accumulate
        if accumulate { model.store.exchangeGradients(with: &directionAccumulator!) }
        defer { if accumulate { model.store.exchangeGradients(with: &directionAccumulator!) } }
        group?.begin(gradient)
        let g = gradient.data, w = weights.data, wd = weightDecayInLoss
        let slots = parameters
        timer.measure(.backward) {
            model.backward(logitGradient, accumulate: accumulate) { finished in
                for index in finished {
                    if wd != 0 {
                        let slot = slots[index]
                        for i in slot.offset..<(slot.offset + slot.count) { g[i] += wd * w[i] }
                    }
                    group?.ready(slot: index)
                    sink?.parameterReady(index)
                }
                group?.progress()
                sink?.progress()
            }
        }
        if let group { timer.measure(.allreduce) { group.finish() } }
    }
}

/// Receives the direction pass's parameters as the backward pass finishes them (the step's
/// allreduce); `progress` runs after every layer.
protocol DirectionSink: AnyObject {
    func parameterReady(_ index: Int)
    func progress()
}

/// The points a pass can be made at besides `w`.
public enum PerturbedPoint: Sendable {
    case ascent    // w + ε
    case minimum   // BSAM's w − ε_min
    var offsetKey: String { self == .ascent ? "epsilon" : "epsilon_min" }
    var lossKey: String { self == .ascent ? "loss_at_perturbed" : "loss_at_min_point" }
    var gradientKey: String { self == .ascent ? "grad_at_perturbed" : "grad_at_min_point" }
}

/// Receives the quantities a shard computes, in the order of the passes (the conformance
/// command records them). Values are this rank's: for a shard that spans several ranks,
/// the shard's value is their mean over the ranks (for the quantities that are already
/// group-averaged, all ranks hold the same value).
public protocol ShardRecorder: AnyObject {
    func record(_ key: String, value: Double)
    func record(_ key: String, buffer: FlatBuffer)
}
