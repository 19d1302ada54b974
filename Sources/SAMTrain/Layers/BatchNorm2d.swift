/// Batch normalization over the channels of NCHW input (PyTorch's BatchNorm2d); a 2-D input
/// [N, C] is normalized per feature (BatchNorm1d semantics).
///
/// Train mode normalizes with the batch's mean and biased variance; when the mode says so it
/// also folds the batch into the running statistics with momentum 0.1 and the UNBIASED
/// variance, as PyTorch does. Eval mode normalizes with the running statistics.
/// Statistics are computed in two passes with Double accumulation.
///
/// The layer keeps a reference to its input for the backward pass (x̂ is recomputed from it
/// rather than stored): the input must not be changed between `forward` and `backward`.
public final class BatchNorm2d: Layer {
    public let channels: Int
    public let momentum: Float
    public let epsilon: Float
    public let weightIndex: Int
    public let biasIndex: Int
    public let runningMeanIndex: Int
    public let runningVarianceIndex: Int
    private let store: ParameterStore

    private var input: Tensor?
    private var usedBatchStatistics = true
    private let output = Tensor(shape: [0])
    private let inputGradient = Tensor(shape: [0])
    /// The ReLU after it, whose max(0, ·) this layer applies (see ReLU); nil: none.
    public internal(set) weak var fusedActivation: ReLU?
    /// Whether the last forward pass clamped its output (its backward then masks ∂y by y > 0).
    private var clamped = false
    /// Per channel, the mean and 1/√(var + eps) used by the last forward pass.
    private var mean: [Float]
    private var inverseStd: [Float]
    /// The threads of the last forward pass, for its backward pass: both cut the channels.
    private var parallelism = Parallelism.serial

    public init(store: ParameterStore, name: String, channels: Int,
                momentum: Float = 0.1, epsilon: Float = 1e-5) {
        precondition(channels > 0)
        self.store = store
        self.channels = channels
        self.momentum = momentum
        self.epsilon = epsilon
        weightIndex = store.addParameter("\(name).weight", shape: [channels], role: .normWeight)
        biasIndex = store.addParameter("\(name).bias", shape: [channels], role: .normBias)
        runningMeanIndex = store.addBuffer("\(name).running_mean", shape: [channels], initial: 0)
        runningVarianceIndex = store.addBuffer("\(name).running_var", shape: [channels], initial: 1)
        mean = Array(repeating: 0, count: channels)
        inverseStd = Array(repeating: 1, count: channels)
    }

    /// γ = 1, β = 0. The running statistics keep their registered 0 / 1 (draws no numbers).
    public func initialize(using rng: inout SplitMix64) {
        store.value(weightIndex).update(repeating: 1, count: channels)
        store.value(biasIndex).update(repeating: 0, count: channels)
    }

    public func outputShape(for inputShape: [Int]) -> [Int] { inputShape }
    public var parameterIndices: [Int] { [weightIndex, biasIndex] }

    /// (N, C, spatial size) of an [N, C, ...] input.
    private func dimensions(_ shape: [Int]) -> (Int, Int) {
        precondition(shape.count >= 2 && shape[1] == channels,
                     "BatchNorm expects [N, \(channels), ...], got \(shape)")
        return (shape[0], shape.dropFirst(2).reduce(1, *))
    }

    public func forward(_ input: Tensor, mode: PassMode) -> Tensor {
        let (n, plane) = dimensions(input.shape)
        self.input = input
        usedBatchStatistics = mode.training
        output.resize(input.shape)
        let c = channels, x = input.data, y = output.data
        let gamma = store.value(weightIndex), beta = store.value(biasIndex)
        let runningMean = store.buffer(runningMeanIndex), runningVar = store.buffer(runningVarianceIndex)
        let m = n * plane
        let clamp = fusedActivation.map { !$0.patternMode.isReplay } ?? false
        clamped = clamp
        parallelism = mode.parallelism
        let eps = epsilon, momentum = momentum
        precondition(!mode.training || m > 1 || !mode.updatesRunningStatistics,
                     "BatchNorm needs more than one value per channel in train mode")
        // Channels are independent: each part normalizes its own, as one thread would.
        mean.withUnsafeMutableBufferPointer { mean in inverseStd.withUnsafeMutableBufferPointer { inverseStd in
            parallelism.forEachPart(c) { channels, _ in
                for ch in channels {
                    if mode.training {
                        var sum = 0.0
                        for i in 0..<n { sum += Double(laneSum(x + (i * c + ch) * plane, plane)) }
                        let mu = sum / Double(m)
                        let muF = Float(mu)
                        var squares = 0.0
                        for i in 0..<n { squares += Double(laneSquaredDeviations(x + (i * c + ch) * plane, plane, muF)) }
                        let variance = squares / Double(m)
                        mean[ch] = muF
                        inverseStd[ch] = Float(1 / (variance + Double(eps)).squareRoot())
                        if mode.updatesRunningStatistics {
                            let unbiased = squares / Double(m - 1)
                            runningMean[ch] = (1 - momentum) * runningMean[ch] + momentum * muF
                            runningVar[ch] = (1 - momentum) * runningVar[ch] + momentum * Float(unbiased)
                        }
                    } else {
                        mean[ch] = runningMean[ch]
                        inverseStd[ch] = 1 / (runningVar[ch] + eps).squareRoot()
                    }
                    // y = γ·(x − μ)·σ⁻¹ + β = scale·x + shift (then max(0, y) for a fused ReLU)
                    let scale = gamma[ch] * inverseStd[ch]
                    let shift = beta[ch] - scale * mean[ch]
                    for i in 0..<n {
                        let p = x + (i * c + ch) * plane, q = y + (i * c + ch) * plane
                        if clamp {
                            for j in 0..<plane { q[j] = max(scale * p[j] + shift, 0) }
                        } else {
                            for j in 0..<plane { q[j] = scale * p[j] + shift }
                        }
                    }
                }
            }
        } }
        return output
    }

    /// With batch statistics: ∂x = γσ⁻¹·(∂y − mean(∂y) − x̂·mean(∂y·x̂)), since μ and σ
    /// depend on x. With running statistics the normalization is affine: ∂x = γσ⁻¹·∂y.
    public func backward(_ gradOutput: Tensor, inputGradient wantsInput: Bool) -> Tensor? {
        guard let input else { preconditionFailure("backward before forward") }
        let (n, plane) = dimensions(input.shape)
        precondition(gradOutput.count == input.count, "gradient shape mismatch")
        if wantsInput { inputGradient.resize(input.shape) }
        let c = channels, x = input.data, dy = gradOutput.data, dx = inputGradient.data
        let gamma = store.value(weightIndex)
        let dGamma = store.gradient(weightIndex), dBeta = store.gradient(biasIndex)
        let m = Double(n * plane)
        let y = output.data, masked = clamped, batchStatistics = usedBatchStatistics
        mean.withUnsafeBufferPointer { mean in inverseStd.withUnsafeBufferPointer { inverseStd in
            parallelism.forEachPart(c) { channels, _ in
                for ch in channels {
                    let mu = mean[ch], inv = inverseStd[ch]
                    var sumDy = 0.0, sumDyXhat = 0.0
                    for i in 0..<n {
                        let offset = (i * c + ch) * plane
                        let (s, t) = masked ? laneMaskedSumAndDot(dy + offset, y + offset, x + offset, plane, mu)
                                            : laneSumAndDot(dy + offset, x + offset, plane, mu)
                        sumDy += Double(s)
                        sumDyXhat += Double(t)
                    }
                    sumDyXhat *= Double(inv)
                    dGamma[ch] += Float(sumDyXhat)
                    dBeta[ch] += Float(sumDy)
                    guard wantsInput else { continue }
                    let k = gamma[ch] * inv
                    if batchStatistics {
                        let meanDy = Float(sumDy / m), meanDyXhat = Float(sumDyXhat / m)
                        for i in 0..<n {
                            let p = x + (i * c + ch) * plane, g = dy + (i * c + ch) * plane
                            let d = dx + (i * c + ch) * plane, q = y + (i * c + ch) * plane
                            if masked {
                                for j in 0..<plane {
                                    let xhat = (p[j] - mu) * inv, gj = g[j]
                                    d[j] = k * ((q[j] > 0 ? gj : 0) - meanDy - xhat * meanDyXhat)
                                }
                            } else {
                                for j in 0..<plane {
                                    let xhat = (p[j] - mu) * inv
                                    d[j] = k * (g[j] - meanDy - xhat * meanDyXhat)
                                }
                            }
                        }
                    } else {
                        for i in 0..<n {
                            let g = dy + (i * c + ch) * plane, d = dx + (i * c + ch) * plane, q = y + (i * c + ch) * plane
                            if masked {
                                for j in 0..<plane { let gj = g[j]; d[j] = k * (q[j] > 0 ? gj : 0) }
                            } else {
                                for j in 0..<plane { d[j] = k * g[j] }
                            }
                        }
                    }
                }
            }
        } }
        return wantsInput ? inputGradient : nil
    }
}

// Float reductions: a plain loop does not vectorize (the compiler may not reassociate a
// Float sum), so these keep sixteen partial sums in a SIMD register.

/// Σ p[j].
@inline(__always)
func laneSum(_ p: UnsafePointer<Float>, _ count: Int) -> Float {
    let raw = UnsafeRawPointer(p)
    var acc = SIMD16<Float>()
    var j = 0
    while j + 16 <= count {
        acc += raw.loadUnaligned(fromByteOffset: 4 * j, as: SIMD16<Float>.self)
        j += 16
    }
    var s = acc.sum()
    while j < count { s += p[j]; j += 1 }
    return s
}

/// Σ (p[j] − mean)².
@inline(__always)
func laneSquaredDeviations(_ p: UnsafePointer<Float>, _ count: Int, _ mean: Float) -> Float {
    let raw = UnsafeRawPointer(p)
    var acc = SIMD16<Float>()
    let m = SIMD16<Float>(repeating: mean)
    var j = 0
    while j + 16 <= count {
        let d = raw.loadUnaligned(fromByteOffset: 4 * j, as: SIMD16<Float>.self) - m
        acc += d * d
        j += 16
    }
    var s = acc.sum()
    while j < count { let d = p[j] - mean; s += d * d; j += 1 }
    return s
}

/// (Σ g'[j], Σ g'[j]·(x[j] − mean)) with g' = g where y > 0, else 0 (a fused ReLU's mask).
@inline(__always)
func laneMaskedSumAndDot(_ g: UnsafePointer<Float>, _ y: UnsafePointer<Float>, _ x: UnsafePointer<Float>, _ count: Int,
                         _ mean: Float) -> (Float, Float) {
    let rg = UnsafeRawPointer(g), ry = UnsafeRawPointer(y), rx = UnsafeRawPointer(x)
    var accG = SIMD16<Float>(), accD = SIMD16<Float>()
    let m = SIMD16<Float>(repeating: mean), zero = SIMD16<Float>()
    var j = 0
    while j + 16 <= count {
        let gv = rg.loadUnaligned(fromByteOffset: 4 * j, as: SIMD16<Float>.self)
        let kept = zero.replacing(with: gv, where: ry.loadUnaligned(fromByteOffset: 4 * j, as: SIMD16<Float>.self) .> zero)
        accG += kept
        accD += kept * (rx.loadUnaligned(fromByteOffset: 4 * j, as: SIMD16<Float>.self) - m)
        j += 16
    }
    var s = accG.sum(), t = accD.sum()
    while j < count { let gj = y[j] > 0 ? g[j] : 0; s += gj; t += gj * (x[j] - mean); j += 1 }
    return (s, t)
}

/// (Σ g[j], Σ g[j]·(x[j] − mean)).
@inline(__always)
func laneSumAndDot(_ g: UnsafePointer<Float>, _ x: UnsafePointer<Float>, _ count: Int,
                   _ mean: Float) -> (Float, Float) {
    let rg = UnsafeRawPointer(g), rx = UnsafeRawPointer(x)
    var accG = SIMD16<Float>(), accD = SIMD16<Float>()
    let m = SIMD16<Float>(repeating: mean)
    var j = 0
    while j + 16 <= count {
        let gv = rg.loadUnaligned(fromByteOffset: 4 * j, as: SIMD16<Float>.self)
        accG += gv
        accD += gv * (rx.loadUnaligned(fromByteOffset: 4 * j, as: SIMD16<Float>.self) - m)
        j += 16
    }
    var s = accG.sum(), t = accD.sum()
    while j < count { s += g[j]; t += g[j] * (x[j] - mean); j += 1 }
    return (s, t)
}

/// Lets each BatchNorm2d directly followed by a ReLU in `layers` apply that ReLU itself
/// (see ReLU). Results are bit-identical: the same max and the same mask, one pass less.
public func fuseNormalizationWithActivation(_ layers: [Layer]) {
    for (a, b) in zip(layers, layers.dropFirst()) {
        if let norm = a as? BatchNorm2d, let relu = b as? ReLU {
            norm.fusedActivation = relu
            relu.fusedIntoNormalization = true
        }
    }
}
