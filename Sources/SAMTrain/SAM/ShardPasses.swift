/// The passes a variant can make on one shard (docs/algorithms.md §1, moves 1–4).
///
/// `cleanPass` is move 1 (the only pass that updates BatchNorm's running statistics);
/// `perturbedPass` is moves 3–4: it writes `w + offset` into a second buffer, lets the model
/// read its weights from there while it backpropagates with frozen statistics, and switches
/// back to `w` (bit-exact, no copy). When a shard spans several ranks (`group`), a pass can
/// average its gradient over the group, so that a group computes what one process holding
/// its m examples would.
///
/// The shard is an argument of every pass. The pass whose gradient is the shard's direction
/// is given a `DirectionTarget` (the step's sum of its shards' directions to add into, the
/// allreduce to hand each finished parameter to) and returns what it did (`ShardDirection`).
/// Both group averages and the step's allreduce run in buckets that start while the
/// backward pass is still going (`BucketedAllreduce`).
///
/// With `microBatch` K, every pass runs over the shard in chunks of K examples (memory, not
/// maths; docs/algorithms.md §6.8): each chunk's loss gradient is that of the shard's mean,
/// the chunks' parameter gradients add up in the gradient buffer, and only the last chunk's
/// backward pass hands parameters on (group average, allreduce, weight decay), when they are
/// complete. Layers keep activations of K examples, not of the shard.
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
    /// Whether one-example shards keep Linear gradients factored (tests compare both ways).
    public var factorsOneExample = true
    /// Examples per chunk of a pass (nil: the whole shard at once).
    public let microBatch: Int?
    /// The group average of a multi-rank shard, bucket by bucket.
    private let groupAllreduce: BucketedAllreduce?

    /// Results of the latest passes, for the metrics.
    public private(set) var lossAtW = 0.0
    public private(set) var correctAtW = 0
    public private(set) var lossAtPerturbed = 0.0
    public private(set) var gradientNorm = 0.0
    public private(set) var epsilonNorm = 0.0

    /// w + offset during a perturbed pass (the model's values buffer then), else scratch.
    private var perturbedWeights: FlatBuffer
    private let logitGradient = Tensor(shape: [0])
    private let subsetImages = Tensor(shape: [0])
    private let chunkImages = Tensor(shape: [0])

    public init(model: Sequential, descentLoss: LogitLoss, group: Communicator?, weightDecayInLoss: Float,
                timer: PhaseTimer, allreduce: AllreduceSettings = AllreduceSettings(), microBatch: Int? = nil) {
        precondition(microBatch.map { $0 > 0 } ?? true, "a micro-batch holds at least one example")
        self.model = model
        self.microBatch = microBatch
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
    private var rankOne: RankOneGradients { model.store.rankOne }

    // MARK: Move 1, the clean pass

    /// Move 1: forward + backward at `w` in train mode, updating the running statistics.
    /// Backpropagates `objective` (default: the descent loss); the descent loss at `w` is
    /// always computed for the metrics. With `groupAverage`, the gradient is averaged over
    /// the shard's ranks (the ascent of a multi-rank shard needs it; plain SGD does not).
    @discardableResult
    public func cleanPass(_ shard: Shard, objective: LogitLoss? = nil, groupAverage: Bool = true) -> FlatBuffer {
        clean(shard, objective: objective, groupAverage: groupAverage, mode: .train, target: nil).direction.buffer!
    }

    /// The clean pass whose gradient is the shard's direction (the base optimizer alone).
    public func cleanPass(_ shard: Shard, direction target: DirectionTarget) -> ShardDirection {
        clean(shard, objective: nil, groupAverage: true, mode: .train, target: target).direction
    }

    /// The clean pass of ESAM's ascent: only the `gradients` it asks for (the others stay 0),
    /// and each example's descent loss at `w`.
    public func cleanPass(_ shard: Shard, gradients: GradientSelection) -> (gradient: FlatBuffer, exampleLosses: [Double]) {
        var mode = PassMode.train
        mode.gradients = gradients
        let pass = clean(shard, objective: nil, groupAverage: true, mode: mode, target: nil, keepingExampleLosses: true)
        return (pass.direction.buffer!, pass.exampleLosses)
    }

    private func clean(_ shard: Shard, objective: LogitLoss?, groupAverage: Bool, mode: PassMode, target: DirectionTarget?,
                       keepingExampleLosses: Bool = false) -> (direction: ShardDirection, exampleLosses: [Double]) {
        // Every variant starts with this pass: a shard's perturbed results start unset.
        lossAtPerturbed = 0
        epsilonNorm = 0
        let (descent, ascentValue, direction) = forwardBackward(
            shard, mode: mode, objective: objective, keepingExampleLosses: keepingExampleLosses,
            groupAverage: groupAverage, target: target, mayAccumulate: false)
        lossAtW = descent.loss + weightDecayTerm()
        correctAtW = descent.correct
        if measuresNorms { gradientNorm = gradientSumOfSquares(recording: mode.rankOne.isRecording).squareRoot() }
        if let recorder {
            if mode.rankOne.isRecording { rankOne.materialize(into: gradient, parameters: parameters) }
            recorder.record("loss_at_w", value: lossAtW)
            if let ascentValue { recorder.record("ascent_loss_at_w", value: ascentValue.loss + weightDecayTerm()) }
            recorder.record("grad_at_w", buffer: gradient)
        }
        return (direction, descent.exampleLosses)
    }

    // MARK: Moves 3–4, the perturbed passes

    /// Moves 3–4: forward + backward at `w + offset` with frozen running statistics, then
    /// `w` back exactly. Returns the gradient there (group-averaged if asked).
    @discardableResult
    public func perturbedPass(_ shard: Shard, offset: FlatBuffer, point: PerturbedPoint = .ascent,
                              groupAverage: Bool = false) -> FlatBuffer {
        perturbed(shard, offset: offset, point: point, groupAverage: groupAverage, target: nil).buffer!
    }

    /// The perturbed pass whose gradient is the shard's direction.
    public func perturbedPass(_ shard: Shard, offset: FlatBuffer, direction target: DirectionTarget) -> ShardDirection {
        perturbed(shard, offset: offset, point: .ascent, groupAverage: false, target: target)
    }

    private func perturbed(_ shard: Shard, offset: FlatBuffer, point: PerturbedPoint, groupAverage: Bool,
                           target: DirectionTarget?) -> ShardDirection {
        writePerturbedWeights(offset)
        let (loss, direction) = passAtPerturbedWeights(shard, mode: .trainFrozenStatistics, groupAverage: groupAverage, target: target)
        if point == .ascent {
            lossAtPerturbed = loss
            if measuresNorms { epsilonNorm = offset.norm() }
        }
        if let recorder {
            recorder.record(point.offsetKey, buffer: offset)
            recorder.record(point.lossKey, value: loss)
            recorder.record(point.gradientKey, buffer: gradient)
        }
        return direction
    }

    /// Moves 3–4 at the ascent point w + scale·g (SAM's ε for p = 2), written in one pass
    /// without ε itself; the same pass as `perturbedPass(offset:)` with ε = scale·g, which
    /// it falls back to when a recorder wants ε (AscentTests compares the two paths).
    /// `normOfAlong` is ‖g‖ when the caller has it (spares a pass over g on logged steps).
    @discardableResult
    public func perturbedPass(_ shard: Shard, along g: FlatBuffer, scaledBy scale: Float, point: PerturbedPoint = .ascent,
                              groupAverage: Bool = false, normOfAlong: Double? = nil) -> FlatBuffer {
        perturbed(shard, along: g, scaledBy: scale, point: point, groupAverage: groupAverage, normOfAlong: normOfAlong, target: nil).buffer!
    }

    /// The perturbed pass along `g` whose gradient is the shard's direction.
    public func perturbedPass(_ shard: Shard, along g: FlatBuffer, scaledBy scale: Float, normOfAlong: Double? = nil,
                              direction target: DirectionTarget) -> ShardDirection {
        perturbed(shard, along: g, scaledBy: scale, point: .ascent, groupAverage: false, normOfAlong: normOfAlong, target: target)
    }

    private func perturbed(_ shard: Shard, along g: FlatBuffer, scaledBy scale: Float, point: PerturbedPoint,
                           groupAverage: Bool, normOfAlong: Double?, target: DirectionTarget?) -> ShardDirection {
        if recorder != nil {
            timer.measure(.ascent) {
                let e = epsilon.data, gp = g.data
                for i in 0..<g.count { e[i] = scale * gp[i] }
            }
            return perturbed(shard, offset: epsilon, point: point, groupAverage: groupAverage, target: target)
        }
        // ‖ε‖ = |scale|·‖g‖, taken before the pass overwrites g.
        let offsetNorm = measuresNorms && point == .ascent ? Double(abs(scale)) * (normOfAlong ?? g.norm()) : 0
        timer.measure(.ascent) {
            let w = weights.data, gp = g.data, p = perturbedWeights.data
            for i in 0..<g.count { p[i] = w[i] + scale * gp[i] }
        }
        let (loss, direction) = passAtPerturbedWeights(shard, mode: .trainFrozenStatistics, groupAverage: groupAverage, target: target)
        if point == .ascent {
            lossAtPerturbed = loss
            if measuresNorms { epsilonNorm = offsetNorm }
        }
        return direction
    }

    /// Hands the latest pass's gradient to `buffer` by exchanging the two (no copy): the next
    /// pass writes into what `buffer` held. For a variant that keeps one pass's gradient
    /// while it makes another.
    public func keepGradient(in buffer: inout FlatBuffer) {
        model.store.exchangeGradients(with: &buffer)
    }

    /// Moves 1–4 for an ε along the clean gradient, ε = scale(‖g‖)·g (SAM with p = 2): the
    /// clean pass, then the perturbed pass at w + ε, whose gradient is the shard's direction.
    /// A shard of one example that lives in this rank keeps its Linear weights' gradients as
    /// outer products (`RankOneGradients`); the numbers are those of `cleanPass` +
    /// `perturbedPass(along:)` up to rounding (the conformance case sam_m1 takes this path).
    public func perturbedPassAlongCleanGradient(_ shard: Shard, direction target: DirectionTarget,
                                                scale: (_ gradientNorm: Double) -> Float) -> ShardDirection {
        guard factorsOneExample, shard.images.shape[0] == 1, group == nil, weightDecayInLoss == 0,
              !rankOne.factors.isEmpty else {
            let g = cleanPass(shard)
            // A logged step's clean pass has taken ‖g‖ already (`gradientNorm`, the same sum).
            let norm = measuresNorms ? gradientNorm : timer.measure(.ascent) { g.norm() }
            return perturbedPass(shard, along: g, scaledBy: scale(norm), normOfAlong: norm, direction: target)
        }
        rankOne.resetFactors()
        var recording = PassMode.train
        recording.rankOne = .recording
        let g = clean(shard, objective: nil, groupAverage: true, mode: recording, target: nil).direction.buffer!
        let norm = measuresNorms ? gradientNorm : timer.measure(.ascent) { gradientSumOfSquares(recording: true).squareRoot() }
        let s = scale(norm)
        if let recorder {
            timer.measure(.ascent) { for i in 0..<g.count { epsilon[i] = s * g[i] } }
            recorder.record("epsilon", buffer: epsilon)
        }
        timer.measure(.ascent) {
            let w = weights.data, gp = g.data, p = perturbedWeights.data
            for range in rankOne.denseRanges { for i in range { p[i] = w[i] + s * gp[i] } }
        }
        var applying = PassMode.trainFrozenStatistics
        applying.rankOne = .applying(scale: s, base: weights)
        let (loss, direction) = passAtPerturbedWeights(shard, mode: applying, groupAverage: false, target: target)
        lossAtPerturbed = loss
        if measuresNorms { epsilonNorm = Double(abs(s)) * norm }
        if let recorder {
            recorder.record("loss_at_perturbed", value: lossAtPerturbed)
            recorder.record("grad_at_perturbed", buffer: gradient)
        }
        return direction
    }

    /// Σ g² of the latest clean gradient (its factored weights' parts from their factors
    /// when the pass recorded them).
    private func gradientSumOfSquares(recording: Bool) -> Double {
        recording ? rankOne.sumOfSquares(of: gradient) : gradient.sumOfSquares()
    }

    // MARK: ESAM's passes on the examples

    /// Each example's descent loss at `w + offset`, from a forward pass alone (frozen running
    /// statistics; ESAM's data selection). The mean is the shard's loss at the perturbed point.
    public func exampleLosses(_ shard: Shard, at offset: FlatBuffer) -> [Double] {
        writePerturbedWeights(offset)
        model.store.exchangeValues(with: &perturbedWeights)
        defer { model.store.exchangeValues(with: &perturbedWeights) }
        var value = LossValue(loss: 0, correct: 0)
        for range in chunks(of: shard) {
            let piece = chunk(shard, range)
            let logits = timer.measure(.forward) { model.forward(piece.images, mode: .trainFrozenStatistics) }
            value.add(descentLoss.evaluate(logits: logits, labels: piece.labels, gradient: logitGradient,
                                           keepingExampleLosses: true, meanOver: shard.count))
        }
        lossAtPerturbed = value.loss + weightDecayTerm()
        return value.exampleLosses
    }

    /// Moves 3–4 on a subset of the shard's examples (ESAM's selection, in `indices` order):
    /// the gradient at `w + offset` of their mean loss, the shard's direction. The shard's
    /// loss at the perturbed point stays the one of all its examples (`exampleLosses(at:)`).
    public func perturbedPass(_ shard: Shard, offset: FlatBuffer, examples indices: [Int],
                              direction target: DirectionTarget) -> ShardDirection {
        let all = shard.images, allLoss = lossAtPerturbed
        let perExample = all.count / max(all.shape[0], 1)
        var shape = all.shape
        shape[0] = indices.count
        subsetImages.resize(shape)
        for (row, i) in indices.enumerated() {
            (subsetImages.data + row * perExample).update(from: all.data + i * perExample, count: perExample)
        }
        let subset = Shard(images: subsetImages, labels: indices.map { shard.labels[$0] })
        defer { lossAtPerturbed = allLoss }
        return perturbed(subset, offset: offset, point: .ascent, groupAverage: false, target: target)
    }

    // MARK: The pass itself

    /// `perturbedWeights` = w + offset (the model reads them during a perturbed pass).
    private func writePerturbedWeights(_ offset: FlatBuffer) {
        timer.measure(.ascent) {
            let w = weights.data, o = offset.data, p = perturbedWeights.data
            for i in 0..<offset.count { p[i] = w[i] + o[i] }
        }
    }

    /// Forward + backward with the model reading `perturbedWeights`; returns the loss there.
    private func passAtPerturbedWeights(_ shard: Shard, mode: PassMode, groupAverage: Bool,
                                        target: DirectionTarget?) -> (loss: Double, direction: ShardDirection) {
        model.store.exchangeValues(with: &perturbedWeights)
        defer { model.store.exchangeValues(with: &perturbedWeights) }
        let (value, _, direction) = forwardBackward(shard, mode: mode, objective: nil, keepingExampleLosses: false,
                                                    groupAverage: groupAverage, target: target, mayAccumulate: true)
        return (value.loss + weightDecayTerm(), direction)
    }

    /// `0.5·wd·‖w‖²` at the current weights (0 unless `--wd-in-ascent`).
    private func weightDecayTerm() -> Double {
        weightDecayInLoss == 0 ? 0 : 0.5 * Double(weightDecayInLoss) * weights.sumOfSquares()
    }

    /// Forward, loss and backward over the shard, chunk by chunk (one chunk without
    /// `microBatch`); backpropagates the descent loss, or `objective` when given (the descent
    /// loss is still evaluated, for the metrics). As each layer of the last chunk's backward
    /// pass finishes, its parameters get their weight-decay term and go to the group
    /// average's buckets (a pass averaged over the shard's ranks) or, for the direction pass,
    /// to the target's sink; then the started buckets advance. A group average is complete
    /// when this returns. Returns the losses and where the gradient went.
    private func forwardBackward(_ shard: Shard, mode: PassMode, objective: LogitLoss?, keepingExampleLosses: Bool,
                                 groupAverage: Bool, target: DirectionTarget?, mayAccumulate: Bool)
        -> (descent: LossValue, ascent: LossValue?, direction: ShardDirection) {
        let group = groupAverage ? groupAllreduce : nil
        // A direction that is also group-averaged is final only after the group's
        // allreduce: it is returned, and the step reduces it afterwards.
        let sink = group == nil ? target?.sink : nil
        // A perturbed direction pass adds its gradient straight into the step's sum of the
        // shards' directions (two passes over every parameter less per micro-shard), unless a
        // recorder wants each shard's gradient.
        var accumulator = mayAccumulate && group == nil && recorder == nil ? target?.accumulator : nil
        if accumulator != nil { model.store.exchangeGradients(with: &accumulator!) }
        defer { if accumulator != nil { model.store.exchangeGradients(with: &accumulator!) } }
        let accumulated = accumulator != nil
        group?.begin(gradient)
        let g = gradient.data, w = weights.data, wd = weightDecayInLoss
        let slots = parameters
        var descent = LossValue(loss: 0, correct: 0)
        var ascent: LossValue? = objective.map { _ in LossValue(loss: 0, correct: 0) }
        let ranges = chunks(of: shard)
        for (c, range) in ranges.enumerated() {
            let piece = chunk(shard, range)
            let logits = timer.measure(.forward) { model.forward(piece.images, mode: mode) }
            descent.add(descentLoss.evaluate(logits: logits, labels: piece.labels, gradient: logitGradient,
                                             keepingExampleLosses: keepingExampleLosses, meanOver: shard.count))
            if let objective {
                ascent!.add(objective.evaluate(logits: logits, labels: piece.labels, gradient: logitGradient,
                                               keepingExampleLosses: false, meanOver: shard.count))
            }
            let last = c == ranges.count - 1
            timer.measure(.backward) {
                // Later chunks add to the earlier ones' gradients.
                model.backward(logitGradient, accumulate: accumulated || c > 0) { finished in
                    guard last else { return }
                    for index in finished {
                        if wd != 0 {
                            let slot = slots[index]
                            for i in slot.offset..<(slot.offset + slot.count) { g[i] += wd * w[i] }
                        }
                        group?.ready(slot: index)
                        sink?.parameterReady(index, accumulated: accumulated)
                    }
                    group?.progress()
                    sink?.progress()
                }
            }
        }
        if let group { timer.measure(.allreduce) { group.finish() } }
        return (descent, ascent, ShardDirection(buffer: accumulated ? nil : gradient, streamed: sink != nil))
    }

    /// The shard's chunks of `microBatch` examples (a last, smaller one only for ESAM's
    /// selection, whose size the rules do not fix), or the whole shard.
    private func chunks(of shard: Shard) -> [Range<Int>] {
        guard let k = microBatch, k < shard.count else { return [0..<shard.count] }
        return stride(from: 0, to: shard.count, by: k).map { $0..<min($0 + k, shard.count) }
    }

    /// Examples `range` of the shard as a batch: the shard itself when that is all of it,
    /// else a copy (the previous chunk's backward pass is done with the buffer by then).
    private func chunk(_ shard: Shard, _ range: Range<Int>) -> Shard {
        if range == 0..<shard.count { return shard }
        let perExample = shard.images.count / max(shard.count, 1)
        var shape = shard.images.shape
        shape[0] = range.count
        chunkImages.resize(shape)
        chunkImages.data.update(from: shard.images.data + range.lowerBound * perExample, count: range.count * perExample)
        return Shard(images: chunkImages, labels: Array(shard.labels[range]))
    }
}

/// One shard of a step's batch: a rank's slice, a micro-shard of it, or ESAM's selection.
public struct Shard {
    /// [n, C, H, W] (or [n, features]).
    public let images: Tensor
    public let labels: [Int32]
    public init(images: Tensor, labels: [Int32]) {
        self.images = images
        self.labels = labels
    }
    public var count: Int { labels.count }
}

/// What the pass that yields a shard's direction does with its gradient, as the step asks:
/// add it into the sum of the rank's shard directions, hand each parameter to the step's
/// allreduce as the backward pass finishes it, both, or neither (return it).
public struct DirectionTarget {
    /// The sum of the rank's shard directions to add the gradient into.
    public var accumulator: FlatBuffer?
    /// The step's allreduce, for the rank's last shard.
    var sink: DirectionSink?
}

/// Where a shard's direction is once its variant has made its passes.
public struct ShardDirection {
    /// The buffer holding it (a pass's gradient, valid until the next pass, or the variant's
    /// own); nil when the pass added it into the target's accumulator.
    public let buffer: FlatBuffer?
    /// Whether each of its parameters went to the step's allreduce as the backward pass
    /// finished it.
    public let streamed: Bool

    /// A direction the variant computed from its passes' gradients.
    public static func computed(_ buffer: FlatBuffer) -> ShardDirection {
        ShardDirection(buffer: buffer, streamed: false)
    }
}

/// Receives the direction pass's parameters as the backward pass finishes them (the step's
/// allreduce); `progress` runs after every layer.
protocol DirectionSink: AnyObject {
    /// Parameter `index` of the direction is final: in the pass's gradient, or already added
    /// into the target's accumulator.
    func parameterReady(_ index: Int, accumulated: Bool)
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
