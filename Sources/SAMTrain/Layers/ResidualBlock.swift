/// A residual block over the model's flat buffers: `y = post(main(a) + shortcut(s))`, where
/// `a = pre(x)` and the shortcut reads either `x` or `a`.
///
/// - He et al.'s basic block (post-activation): pre = [], main = conv-BN-ReLU-conv-BN,
///   shortcut = identity, option A or conv1×1+BN, post = ReLU.
/// - Zagoruyko & Komodakis' wide block (pre-activation): pre = BN-ReLU, main = conv-BN-ReLU-conv,
///   shortcut = identity of x, or a conv1×1 of `a` when the shape changes; no post.
///
/// Backward: ∂sum flows into both branches; where they meet (at `a` or at `x`) the two
/// gradients are added into the block's own tensors.
public final class ResidualBlock: LayerContainer {
    public enum ShortcutInput { case blockInput, preActivation }

    public let pre: [Layer]
    public let main: [Layer]
    /// Empty: the identity.
    public let shortcut: [Layer]
    public let shortcutInput: ShortcutInput
    public let post: [Layer]

    private let sum = Tensor(shape: [0])
    private let preGradient = Tensor(shape: [0])     // ∂L/∂a when both branches read a
    private let inputGradient = Tensor(shape: [0])   // ∂L/∂x when both branches meet at x
    private var inputShape: [Int] = []
    /// The forward pass's threads, for its backward pass.
    private var parallelism = Parallelism.serial
    /// The forward pass's profile, for its backward pass.
    private var profile: LayerProfile?

    public init(pre: [Layer] = [], main: [Layer], shortcut: [Layer] = [],
                shortcutInput: ShortcutInput = .blockInput, post: [Layer] = []) {
        precondition(!main.isEmpty, "a residual block has a main branch")
        self.pre = pre
        self.main = main
        self.shortcut = shortcut
        self.shortcutInput = shortcutInput
        self.post = post
        for branch in [pre, main, shortcut, post] { fuseNormalizationWithActivation(branch) }
    }

    public var sublayers: [Layer] {
        // Forward order: pre, main, shortcut, post.
        pre + main + shortcut + post
    }

    public func initialize(using rng: inout SplitMix64) {
        for layer in sublayers { layer.initialize(using: &rng) }
    }

    public func outputShape(for inputShape: [Int]) -> [Int] {
        let a = pre.outputShape(for: inputShape)
        let m = main.outputShape(for: a)
        let s = shortcut.outputShape(for: shortcutInput == .blockInput ? inputShape : a)
        precondition(m == s, "residual branches disagree: main \(m), shortcut \(s)")
        return post.outputShape(for: m)
    }

    public func forwardFLOPsPerExample(inputShape: [Int]) -> Double {
        let a = pre.outputShape(for: inputShape)
        let m = main.outputShape(for: a)
        return pre.forwardFLOPsPerExample(inputShape: inputShape) + main.forwardFLOPsPerExample(inputShape: a)
            + shortcut.forwardFLOPsPerExample(inputShape: shortcutInput == .blockInput ? inputShape : a)
            + post.forwardFLOPsPerExample(inputShape: m)
    }

    public func forward(_ input: Tensor, mode: PassMode) -> Tensor {
        inputShape = input.shape
        profile = mode.profile
        let a = pre.forward(input, mode: mode)
        let m = main.forward(a, mode: mode)
        let s = shortcut.forward(shortcutInput == .blockInput ? input : a, mode: mode)
        precondition(m.shape == s.shape, "residual branches disagree: main \(m.shape), shortcut \(s.shape)")
        sum.resize(m.shape)
        sum.setSum(m, s, parallelism: mode.parallelism)
        parallelism = mode.parallelism
        return post.forward(sum, mode: mode)
    }

    public func backward(_ gradOutput: Tensor, inputGradient wantsInput: Bool) -> Tensor? {
        let dSum = post.backward(gradOutput, inputGradient: true, profile: profile)!
        switch shortcutInput {
        case .preActivation:
            // Both branches read a: ∂a = main'ᵀ∂sum + shortcut'ᵀ∂sum, then through pre.
            let fromMain = main.backward(dSum, inputGradient: true, profile: profile)!
            let fromShortcut = shortcut.backward(dSum, inputGradient: true, profile: profile)!
            preGradient.resize(fromMain.shape)
            preGradient.setSum(fromMain, fromShortcut, parallelism: parallelism)
            return pre.backward(preGradient, inputGradient: wantsInput, profile: profile)
        case .blockInput:
            // The branches meet at x: the shortcut's gradient (computed first: an identity
            // shortcut passes ∂sum itself) is added to what comes back through main and pre.
            let fromShortcut = shortcut.backward(dSum, inputGradient: wantsInput, profile: profile)
            let fromMain = main.backward(dSum, inputGradient: wantsInput || !pre.isEmpty, profile: profile)
            let throughPre = fromMain.flatMap { pre.isEmpty ? $0 : pre.backward($0, inputGradient: wantsInput, profile: profile) }
            guard wantsInput, let throughPre, let fromShortcut else { return nil }
            inputGradient.resize(inputShape)
            inputGradient.setSum(throughPre, fromShortcut, parallelism: parallelism)
            return inputGradient
        }
    }
}
