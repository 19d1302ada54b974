import CBLAS

/// y = x·Wᵀ + b, with W stored [out][in] as in PyTorch; the products go through sgemm, or
/// for a single example (micro-shards of m = 1) through sgemv and sger, which read W once
/// instead of packing it first. A single example's ∂W can stay the outer product of its
/// factors, and W a base plus such a product (`RankOneGradients`).
///
/// A token-wise Linear (`tokenwise`, the transformers' qkv, proj, fc1, fc2) maps the last axis
/// of [N, T, inputs] to [N, T, outputs]: one sgemm over all N·T rows. One example is then T
/// rows, its ∂W a sum of T outer products, so such a layer is never factored (docs/algorithms.md §7).
public final class Linear: Layer {
    /// How `initialize(using:)` draws the tensors.
    public enum Initialization: Sendable, Equatable {
        /// PyTorch's default: weight and bias uniform in ±1/√fan_in.
        case pytorch
        /// timm's ViT default: weight truncated normal (timm's absolute bounds ±2), bias 0.
        case truncatedNormal(std: Float)
    }

    public let inputs: Int
    public let outputs: Int
    /// Whether the layer maps the last axis of [N, T, inputs] (see above).
    public let tokenwise: Bool
    public let initialization: Initialization
    unowned let store: ParameterStore
    let weight: Int
    let bias: Int?
    private var input = Tensor(shape: [0])
    /// The mode of the latest forward pass, for its backward pass.
    private var mode = PassMode.train
    private let output = Tensor(shape: [0])
    private let inputGradient = Tensor(shape: [0])

    public init(store: ParameterStore, name: String, inputs: Int, outputs: Int, bias: Bool = true,
                tokenwise: Bool = false, initialization: Initialization = .pytorch) {
        self.store = store
        self.inputs = inputs
        self.outputs = outputs
        self.tokenwise = tokenwise
        self.initialization = initialization
        weight = store.addParameter("\(name).weight", shape: [outputs, inputs], role: .weight)
        self.bias = bias ? store.addParameter("\(name).bias", shape: [outputs], role: .bias) : nil
        // One example = one row only when the layer is not token-wise.
        if !tokenwise { store.rankOne.register(slot: weight, rows: outputs, columns: inputs) }
    }

    /// The weight's unperturbed values and the rank-one offset s·u·vᵀ on top of them, during a
    /// perturbed pass that leaves W factored.
    private func rankOneWeight() -> (base: UnsafeMutablePointer<Float>, scale: Float, u: FlatBuffer, v: FlatBuffer)? {
        guard case .applying(let scale, let base) = mode.rankOne, let f = store.rankOne.factor(of: weight) else { return nil }
        return (base.data + store.parameters[weight].offset, scale, f.u, f.v)
    }

    public var parameterIndices: [Int] { [weight] + (bias.map { [$0] } ?? []) }

    public func initialize(using rng: inout SplitMix64) {
        switch initialization {
        case .pytorch:
            store.initializeLikePyTorch(weight: weight, bias: bias, fanIn: inputs, using: &rng)
        case .truncatedNormal(let std):
            let w = store.value(weight)
            for i in 0..<(outputs * inputs) { w[i] = rng.truncatedNormal(std: std) }
            if let bias { store.value(bias).update(repeating: 0, count: outputs) }
        }
    }

    public func forward(_ x: Tensor, mode: PassMode) -> Tensor {
        // n: the rows of the products (examples, or examples × tokens when token-wise).
        let n: Int
        if tokenwise {
            precondition(x.shape.count >= 2 && x.shape.last == inputs, "token-wise Linear expects [..., \(inputs)], got shape \(x.shape)")
            n = x.count / inputs
            output.resize(Array(x.shape.dropLast()) + [outputs])
        } else {
            n = x.shape[0]
            precondition(x.count == n * inputs, "Linear expects \(inputs) inputs per example, got shape \(x.shape)")
            output.resize([n, outputs])
        }
        input = x
        self.mode = mode
        let y = output.data
        if let bias {
            let b = store.value(bias)
            for r in 0..<n { (y + r * outputs).update(from: b, count: outputs) }
        }
        if n == 1, let w = rankOneWeight() {
            // (W + s·u·vᵀ)·x = W·x + (s·v·x)·u
            cblas_sgemv(CblasRowMajor, CblasNoTrans, Int32(outputs), Int32(inputs), 1, w.base, Int32(inputs),
                        x.data, 1, bias == nil ? 0 : 1, y, 1)
            cblas_saxpy(Int32(outputs), w.scale * cblas_sdot(Int32(inputs), w.v.data, 1, x.data, 1), w.u.data, 1, y, 1)
            return output
        }
        if n == 1 {
            cblas_sgemv(CblasRowMajor, CblasNoTrans, Int32(outputs), Int32(inputs), 1, store.value(weight), Int32(inputs),
                        x.data, 1, bias == nil ? 0 : 1, y, 1)
            return output
        }
        precondition(rankOneWeight() == nil, "a factored weight is applied to one example at a time")
        // Rows are independent: each part multiplies its own.
        let w = store.value(weight), xs = x.data, beta: Float = bias == nil ? 0 : 1, (m, k) = (outputs, inputs)
        mode.parallelism.forEachPart(n) { rows, _ in
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(rows.count), Int32(m), Int32(k),
                        1, xs + rows.lowerBound * k, Int32(k), w, Int32(k), beta, y + rows.lowerBound * m, Int32(m))
        }
        return output
    }

    public func backward(_ gradOutput: Tensor, inputGradient needed: Bool) -> Tensor? {
        let n = gradOutput.count / outputs
        let g = gradOutput.data
        // ∂W += gᵀ·x ; ∂b += Σ_rows g
        if !mode.wantsGradient(weight) {
        } else if n == 1, mode.rankOne.isRecording, let f = store.rankOne.factor(of: weight) {
            f.u.data.update(from: g, count: outputs)
            f.v.data.update(from: input.data, count: inputs)
        } else if n == 1 {
            cblas_sger(CblasRowMajor, Int32(outputs), Int32(inputs), 1, g, 1, input.data, 1,
                       store.gradient(weight), Int32(inputs))
        } else {
            // Each part sums over every row for its own outputs (rows of ∂W): no sum crosses parts.
            let dw = store.gradient(weight), x = input.data, (m, k) = (outputs, inputs)
            mode.parallelism.forEachPart(outputs) { outs, _ in
                cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, Int32(outs.count), Int32(k), Int32(n),
                            1, g + outs.lowerBound, Int32(m), x, Int32(k), 1, dw + outs.lowerBound * k, Int32(k))
            }
        }
        if let bias, mode.wantsGradient(bias) {
            VectorKernels.active.addRows(g, rows: n, columns: outputs, to: store.gradient(bias))
        }
        guard needed else { return nil }
        inputGradient.resize(input.shape)
        if n == 1, let w = rankOneWeight() {
            // (W + s·u·vᵀ)ᵀ·g = Wᵀ·g + (s·u·g)·v
            cblas_sgemv(CblasRowMajor, CblasTrans, Int32(outputs), Int32(inputs), 1, w.base, Int32(inputs),
                        g, 1, 0, inputGradient.data, 1)
            cblas_saxpy(Int32(inputs), w.scale * cblas_sdot(Int32(outputs), w.u.data, 1, g, 1), w.v.data, 1,
                        inputGradient.data, 1)
            return inputGradient
        }
        if n == 1 {
            cblas_sgemv(CblasRowMajor, CblasTrans, Int32(outputs), Int32(inputs), 1, store.value(weight), Int32(inputs),
                        g, 1, 0, inputGradient.data, 1)
            return inputGradient
        }
        let w = store.value(weight), dx = inputGradient.data, (m, k) = (outputs, inputs)
        mode.parallelism.forEachPart(n) { rows, _ in
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(rows.count), Int32(k), Int32(m),
                        1, g + rows.lowerBound * m, Int32(m), w, Int32(k), 0, dx + rows.lowerBound * k, Int32(k))
        }
        return inputGradient
    }

    public func forwardFLOPsPerExample(inputShape: [Int]) -> Double {
        2 * Double(inputs * outputs) * Double(tokenwise ? inputShape.dropLast().reduce(1, *) : 1)
    }
    public func outputShape(for inputShape: [Int]) -> [Int] {
        tokenwise ? Array(inputShape.dropLast()) + [outputs] : [outputs]
    }
}

extension Linear: ShapeProfiled {
    func profileShape(inputShape: [Int]) -> String {
        let rows = tokenwise ? inputShape.dropLast().reduce(1, *) : 1
        return "\(inputs)→\(outputs)" + (rows > 1 ? " × \(rows) rows" : "")
    }
}
