/// What a parameter tensor is; ASAM's `weights` scope and SAM-ON select by it.
public enum ParameterRole: String, Codable, Sendable {
    case weight          // linear and convolution weights
    case bias            // linear and convolution biases; a ViT's cls_token and pos_embed (additive offsets)
    case normWeight      // BatchNorm and LayerNorm γ
    case normBias        // BatchNorm and LayerNorm β
}

/// One named tensor inside a flat buffer: a view given by offset and shape.
public struct ParameterSlot: Sendable {
    public let name: String
    public let shape: [Int]
    public let offset: Int
    public let count: Int
    public let role: ParameterRole
}

/// A model's state as flat buffers (llm.c style): every trainable tensor is a slice of
/// `values` (its gradient the same slice of `gradients`), and every non-trainable tensor
/// (BatchNorm running statistics) a slice of `buffers`.
///
/// Layers register their tensors while the model is built; `seal()` then allocates the
/// buffers once. A layer reads its weights through the pointers it asks for at run time.
public final class ParameterStore {
    public private(set) var parameters: [ParameterSlot] = []
    public private(set) var bufferSlots: [ParameterSlot] = []
    public private(set) var values = FlatBuffer(count: 0)
    public private(set) var gradients = FlatBuffer(count: 0)
    public private(set) var buffers = FlatBuffer(count: 0)
    public private(set) var isSealed = false
    private var parameterCount = 0
    private var bufferCount = 0
    private var bufferInitial: [(Int, Int, Float)] = []
    /// Linear weights whose one-example gradients can stay outer products (SAM, `--m 1`).
    public let rankOne = RankOneGradients()

    public init() {}

    public var count: Int { parameterCount }

    /// Registers a trainable tensor; returns its index in `parameters`.
    public func addParameter(_ name: String, shape: [Int], role: ParameterRole) -> Int {
        precondition(!isSealed, "parameters are registered before seal()")
        let n = shape.reduce(1, *)
        parameters.append(ParameterSlot(name: name, shape: shape, offset: parameterCount, count: n, role: role))
        parameterCount += n
        return parameters.count - 1
    }

    /// Registers a non-trainable tensor (running statistics) filled with `initial`.
    public func addBuffer(_ name: String, shape: [Int], initial: Float) -> Int {
        precondition(!isSealed, "buffers are registered before seal()")
        let n = shape.reduce(1, *)
        bufferSlots.append(ParameterSlot(name: name, shape: shape, offset: bufferCount, count: n, role: .weight))
        bufferInitial.append((bufferCount, n, initial))
        bufferCount += n
        return bufferSlots.count - 1
    }

    /// Allocates the flat buffers.
    public func seal() {
        guard !isSealed else { return }
        values = FlatBuffer(count: parameterCount)
        gradients = FlatBuffer(count: parameterCount)
        buffers = FlatBuffer(count: bufferCount)
        for (offset, n, v) in bufferInitial { (buffers.data + offset).update(repeating: v, count: n) }
        rankOne.seal(parameters: parameters, count: parameterCount)
        isSealed = true
    }

    /// Makes `other` the values buffer and hands back the previous one. A perturbed pass
    /// evaluates at w + ε written into a second buffer and switches back afterwards: w is
    /// restored exactly and without a copy.
    public func exchangeValues(with other: inout FlatBuffer) {
        precondition(other.count == values.count, "exchanging values of another size")
        swap(&values, &other)
    }

    /// Makes `other` the gradients buffer and hands back the previous one (the direction
    /// passes of micro-shards accumulate straight into the step's direction).
    public func exchangeGradients(with other: inout FlatBuffer) {
        precondition(other.count == gradients.count, "exchanging gradients of another size")
        swap(&gradients, &other)
    }

    /// Zeroes the gradients before a backward pass, except the slices that stay factored
    /// while a pass records them (`RankOnePhase.recording`).
    public func zeroGradients(keepingFactored: Bool = false) {
        guard keepingFactored else { return gradients.zero() }
        for range in rankOne.denseRanges { (gradients.data + range.lowerBound).update(repeating: 0, count: range.count) }
    }

    @inline(__always) public func value(_ index: Int) -> UnsafeMutablePointer<Float> {
        values.data + parameters[index].offset
    }

    @inline(__always) public func gradient(_ index: Int) -> UnsafeMutablePointer<Float> {
        gradients.data + parameters[index].offset
    }

    @inline(__always) public func buffer(_ index: Int) -> UnsafeMutablePointer<Float> {
        buffers.data + bufferSlots[index].offset
    }

    public func slot(named name: String) -> ParameterSlot? {
        parameters.first { $0.name == name }
    }
}

extension ParameterStore {
    /// PyTorch's default for Linear and Conv2d: kaiming_uniform(a = √5) on the weight, which
    /// is U(±1/√fan_in), and the same bound for the bias; the weight's elements are drawn
    /// first, in row-major order.
    public func initializeLikePyTorch(weight: Int, bias: Int?, fanIn: Int, using rng: inout SplitMix64) {
        let bound = 1 / Float(fanIn).squareRoot()
        for index in [weight] + (bias.map { [$0] } ?? []) {
            let p = value(index)
            for i in 0..<parameters[index].count { p[i] = rng.uniform(-bound, bound) }
        }
    }
}
