/// Stochastic gradient descent with PyTorch's semantics (dampening 0):
/// `d = u + wd·w`; `buf = d` on the first step, else `buf = μ·buf + d`;
/// Nesterov: `step = d + μ·buf`, else `step = buf`; `w −= lr·step`.
public final class SGD: Optimizer {
    public let momentum: Float
    public let nesterov: Bool
    public let weightDecay: Float
    public var stepCount = 0
    let momentumBuffer: FlatBuffer

    public init(count: Int, momentum: Float, nesterov: Bool, weightDecay: Float) {
        self.momentum = momentum
        self.nesterov = nesterov
        self.weightDecay = weightDecay
        momentumBuffer = FlatBuffer(count: momentum == 0 ? 0 : count)
    }

    public var state: [(name: String, buffer: FlatBuffer)] {
        momentum == 0 ? [] : [("momentum_buffer", momentumBuffer)]
    }

    public func step(parameters w: FlatBuffer, direction u: FlatBuffer, learningRate lr: Float) {
        stepCount += 1
        let n = w.count, wd = weightDecay, mu = momentum
        let w = w.data, u = u.data
        if mu == 0 {
            for i in 0..<n { w[i] -= lr * (u[i] + wd * w[i]) }
            return
        }
        let buf = momentumBuffer.data
        let first = stepCount == 1
        for i in 0..<n {
            let d = u[i] + wd * w[i]
            let b = first ? d : mu * buf[i] + d
            buf[i] = b
            w[i] -= lr * (nesterov ? d + mu * b : b)
        }
    }
}
