/// 2×2 max pooling with stride 2 over NCHW (PyTorch's MaxPool2d(2): odd trailing rows and
/// columns are dropped). The forward pass records which of the four inputs won, the first
/// maximum in row-major window order, and the backward pass routes the gradient there.
/// Replaying an `ActivationPattern`, the recorded inputs win instead.
public final class MaxPool2d: PiecewiseLinearLayer {
    public var patternMode = PatternMode.live
    private var inputShape: [Int] = []
    private let output = Tensor(shape: [0])
    private let inputGradient = Tensor(shape: [0])
    /// Offset of the winning input within its channel plane, one per output element.
    private var winners = UnsafeMutablePointer<Int32>.allocate(capacity: 1)
    private var winnerCapacity = 1
    /// The threads of the last forward pass, for its backward pass.
    private var parallelism = Parallelism.serial

    public init() {}

    deinit { winners.deallocate() }

    public func outputShape(for inputShape: [Int]) -> [Int] {
        precondition(inputShape.count == 3, "MaxPool2d expects [C, H, W]")
        return [inputShape[0], inputShape[1] / 2, inputShape[2] / 2]
    }

    public func forward(_ input: Tensor, mode: PassMode) -> Tensor {
        precondition(input.shape.count == 4, "MaxPool2d expects [N, C, H, W], got \(input.shape)")
        inputShape = input.shape
        let planes = input.shape[0] * input.shape[1]
        let h = input.shape[2], w = input.shape[3], oh = h / 2, ow = w / 2
        output.resize([input.shape[0], input.shape[1], oh, ow])
        if output.count > winnerCapacity {
            winners.deallocate()
            winnerCapacity = output.count
            winners = .allocate(capacity: winnerCapacity)
        }
        parallelism = mode.parallelism
        let xs = input.data, ys = output.data, winners = winners
        parallelism.forEachPart(planes) { part, _ in
            for p in part {
                let x = xs + p * h * w
                let y = ys + p * oh * ow
                let win = winners + p * oh * ow
                for i in 0..<oh {
                    for j in 0..<ow {
                        let top = 2 * i * w + 2 * j
                        // strict > keeps the first maximum in row-major order (selects, no branches)
                        var best = top, v = x[top]
                        let a = x[top + 1], b = x[top + w], d = x[top + w + 1]
                        if a > v { v = a; best = top + 1 }
                        if b > v { v = b; best = top + w }
                        if d > v { v = d; best = top + w + 1 }
                        y[i * ow + j] = v
                        win[i * ow + j] = Int32(best)
                    }
                }
            }
        }
        switch patternMode {
        case .live: break
        case .record(let pattern):
            pattern.winners = Array(UnsafeBufferPointer(start: winners, count: output.count))
        case .replay(let pattern):
            precondition(pattern.winners.count == output.count, "replayed pattern of another shape")
            pattern.winners.withUnsafeBufferPointer { p in
                winners.update(from: p.baseAddress!, count: output.count)
                for q in 0..<planes {
                    let x = input.data + q * h * w, y = output.data + q * oh * ow
                    for k in 0..<(oh * ow) { y[k] = x[Int(p[q * oh * ow + k])] }
                }
            }
        }
        return output
    }

    public func backward(_ gradOutput: Tensor, inputGradient wantsInput: Bool) -> Tensor? {
        guard wantsInput else { return nil }
        precondition(gradOutput.count == output.count, "gradient shape mismatch")
        inputGradient.resize(inputShape)
        inputGradient.zero()
        let planes = inputShape[0] * inputShape[1]
        let inPlane = inputShape[2] * inputShape[3]
        let outPlane = output.shape[2] * output.shape[3]
        let dx = inputGradient.data, dy = gradOutput.data, winners = winners
        parallelism.forEachPart(planes) { part, _ in
            for p in part {
                let d = dx + p * inPlane
                let g = dy + p * outPlane
                let win = winners + p * outPlane
                for k in 0..<outPlane { d[Int(win[k])] += g[k] }
            }
        }
        return inputGradient
    }
}
