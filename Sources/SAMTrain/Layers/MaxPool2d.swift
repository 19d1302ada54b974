/// 2×2 max pooling with stride 2 (floor of odd sizes). The gradient goes to the first
/// maximum of each window in row-major order, as in PyTorch.
public final class MaxPool2d: Layer {
    private let output = Tensor(shape: [0])
    private let inputGradient = Tensor(shape: [0])
    private var argmax: [Int32] = []
    private var inputShape: [Int] = []

    public init() {}

    public func forward(_ input: Tensor, mode: PassMode) -> Tensor {
        let (n, c, h, w) = (input.shape[0], input.shape[1], input.shape[2], input.shape[3])
        let (oh, ow) = (h / 2, w / 2)
        inputShape = input.shape
        output.resize([n, c, oh, ow])
        if argmax.count < output.count { argmax = [Int32](repeating: 0, count: output.count) }
        let x = input.data, y = output.data
        argmax.withUnsafeMutableBufferPointer { arg in
            for plane in 0..<(n * c) {
                let xp = x + plane * h * w, base = plane * oh * ow
                for i in 0..<oh {
                    for j in 0..<ow {
                        let r0 = 2 * i * w + 2 * j
                        var best = r0, v = xp[r0]
                        for r in [r0 + 1, r0 + w, r0 + w + 1] where xp[r] > v { v = xp[r]; best = r }
                        y[base + i * ow + j] = v
                        arg[base + i * ow + j] = Int32(best)
                    }
                }
            }
        }
        return output
    }

    public func backward(_ gradOutput: Tensor, inputGradient needed: Bool) -> Tensor? {
        guard needed else { return nil }
        let (h, w) = (inputShape[2], inputShape[3])
        let (oh, ow) = (h / 2, w / 2)
        inputGradient.resize(inputShape)
        inputGradient.zero()
        let g = gradOutput.data, dx = inputGradient.data
        argmax.withUnsafeBufferPointer { arg in
            for plane in 0..<(inputShape[0] * inputShape[1]) {
                let base = plane * oh * ow, xbase = plane * h * w
                for o in 0..<(oh * ow) { dx[xbase + Int(arg[base + o])] += g[base + o] }
            }
        }
        return inputGradient
    }

    public func outputShape(for s: [Int]) -> [Int] { [s[0], s[1] / 2, s[2] / 2] }
}
