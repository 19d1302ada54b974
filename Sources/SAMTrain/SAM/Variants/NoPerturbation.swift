import ArgumentParser

/// Plain SGD/AdamW through the same frame: one clean pass, its gradient is the direction.
public final class NoPerturbation: SAMVariant {
    public let name = "none"
    public let perturbs = false
    public init() {}
    public func direction(of shard: Shard, with passes: ShardPasses, to target: DirectionTarget, context: StepContext) -> ShardDirection {
        passes.cleanPass(shard, direction: target)
    }

    public struct Options: VariantOptions {
        public static let name = "none"
        public static let summary = "the base optimizer alone"
        public var defaultRho: Float? { nil }
        public var passesPerStep: Double { 1 }
        public init() {}
        public func makeVariant(_ shared: AscentSettings, all: VariantSet) throws -> SAMVariant { NoPerturbation() }
    }
}
