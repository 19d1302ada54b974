/// One member of the SAM family. The step frame (`SAMStep`) runs a variant once per shard;
/// the variant decides which passes to make and how to combine their gradients into the
/// shard's descent direction. A new variant is a new file that conforms to this.
public protocol SAMVariant: AnyObject {
    /// Name for logs (`sam`, `asam`, ...).
    var name: String { get }
    /// Forward+backward passes per shard (1 for plain SGD, 2 for SAM, 3 for BSAM).
    var passesPerStep: Int { get }
    /// Computes the shard's descent direction with the passes of `shard` and returns the
    /// buffer that holds it (it may be `shard`'s gradient buffer, valid until the next pass).
    /// When the direction is the gradient of the variant's last pass, that pass says so
    /// (`yieldsDirection: true`) and the step's allreduce starts during its backward pass.
    func direction(for shard: ShardPasses, context: StepContext) -> FlatBuffer
}

/// What a variant knows about the step it runs in.
public struct StepContext: Sendable {
    /// 0-based global step index.
    public var step: Int
    public var learningRate: Float
    /// The schedule's extreme rates (BSAM's ρ_min follows the rate between them).
    public var maximumLearningRate: Float
    public var minimumLearningRate: Float

    public init(step: Int, learningRate: Float, maximumLearningRate: Float, minimumLearningRate: Float) {
        self.step = step
        self.learningRate = learningRate
        self.maximumLearningRate = maximumLearningRate
        self.minimumLearningRate = minimumLearningRate
    }
}

/// Plain SGD/AdamW through the same frame: one clean pass, its gradient is the direction.
public final class NoPerturbation: SAMVariant {
    public let name = "none"
    public let passesPerStep = 1
    public init() {}
    public func direction(for shard: ShardPasses, context: StepContext) -> FlatBuffer {
        shard.cleanPass(yieldsDirection: true)
    }
}
