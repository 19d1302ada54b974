/// One member of the SAM family at run time. The step frame (`SAMStep`) runs a variant once
/// per shard; the variant decides which passes to make and how to combine their gradients
/// into the shard's descent direction. What a variant is called, its flags, defaults and cost
/// are declared beside it by its `VariantOptions` (see `VariantRegistry`).
public protocol SAMVariant: AnyObject {
    /// Name for logs (`sam`, `asam`, ...).
    var name: String { get }
    /// Computes `shard`'s descent direction with `passes`. When the direction is the gradient
    /// of the variant's last pass, that pass is given `target` (it adds the gradient into the
    /// step's sum or starts the step's allreduce during its backward pass) and its result is
    /// returned; otherwise the variant returns `.computed(buffer)`.
    func direction(of shard: Shard, with passes: ShardPasses, to target: DirectionTarget,
                   context: StepContext) -> ShardDirection
    /// Prepares the state the variant keeps across steps for `slots` shard slots of
    /// `parameters` values each (docs/algorithms.md §2.11: one state per shard slot); called once by the step.
    func prepareState(slots: Int, parameters: Int)
    /// That state, by name (`looksam_gv.slot0`): checkpoints save it and restore it in place.
    var state: [(name: String, buffer: FlatBuffer)] { get }
    /// Refuses a model the variant cannot work on (SAM-ON without normalization layers).
    func check(model: Sequential) throws
    /// Whether the variant perturbs at all (false: the base optimizer alone).
    var perturbs: Bool { get }
}

extension SAMVariant {
    public func check(model: Sequential) throws {}
    public func prepareState(slots: Int, parameters: Int) {}
    public var state: [(name: String, buffer: FlatBuffer)] { [] }
    public var perturbs: Bool { true }
}

/// A variant's state of one kind, one buffer per shard slot, allocated by `prepareState`.
public final class SlotState {
    public let name: String
    public private(set) var slots: [FlatBuffer] = []
    public init(_ name: String) { self.name = name }
    public func prepare(slots n: Int, parameters: Int) {
        slots = (0..<n).map { _ in FlatBuffer(count: parameters) }
    }
    public subscript(slot: Int) -> FlatBuffer { slots[slot] }
    public var named: [(name: String, buffer: FlatBuffer)] {
        slots.enumerated().map { ("\(name).slot\($0.offset)", $0.element) }
    }
}

/// What a variant knows about the step it runs in.
public struct StepContext: Sendable {
    /// 0-based global step index.
    public var step: Int
    public var learningRate: Float
    /// The schedule's extreme rates (BSAM's ρ_min and GSAM's ρ_t follow the rate between them).
    public var maximumLearningRate: Float
    public var minimumLearningRate: Float
    /// The shard slot on this rank (0 unless a rank runs micro-shards): whose state to use.
    public var slot = 0
    /// The run's seed (ESAM's draws are keyed by seed, step and tensor).
    public var seed: UInt64 = 0
    /// Steps of the whole run (`--sam-from` is a fraction of them; 0: unknown, no schedule).
    public var totalSteps = 0

    public init(step: Int, learningRate: Float, maximumLearningRate: Float, minimumLearningRate: Float,
                seed: UInt64 = 0, totalSteps: Int = 0) {
        self.step = step
        self.learningRate = learningRate
        self.maximumLearningRate = maximumLearningRate
        self.minimumLearningRate = minimumLearningRate
        self.seed = seed
        self.totalSteps = totalSteps
    }

    /// A radius that follows the learning rate linearly: `high` at the largest rate, `low` at
    /// the smallest (BSAM's ρ_min,t, GSAM's ρ_t); `high` under a constant rate.
    public func radius(from low: Float, to high: Float) -> Float {
        let span = maximumLearningRate - minimumLearningRate
        guard span > 0 else { return high }
        return low + (high - low) * (learningRate - minimumLearningRate) / span
    }
}
