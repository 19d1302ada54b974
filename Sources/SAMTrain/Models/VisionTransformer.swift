import ArgumentParser

/// Vision transformers (Dosovitskiy et al. 2021), exactly timm's `VisionTransformer` with a
/// class token, a learned position embedding, pre-norm blocks, LayerNorm eps 1e-6, exact
/// GELU, no dropout and the head on the class token (docs/algorithms.md §7):
///
///     patch_embed → [cls_token; tokens] + pos_embed → blocks.0 … blocks.(depth−1) → norm → token 0 → head
///
/// Tensors carry timm's `state_dict` names and shapes and are registered in its order
/// (`cls_token`, `pos_embed`, `patch_embed.proj.*`, `blocks.K.*`, `norm.*`, `head.*`), so `head`
/// is the last: the classifier head that fine-tuning starts fresh.
///
/// The family's flags reshape a preset: `--vit-width`, `--vit-depth`, `--vit-heads`,
/// `--patch-size`, `--vit-mlp-ratio`, each nil (the preset of `--model`) unless given.
public struct VisionTransformer: ModelFamily {
    /// Each name's shape.
    static let presets: [(name: String, configuration: Configuration)] = [("vit-t4", .tiny4), ("vit-s4", .small4)]
    public static let names = presets.map(\.name)
    public static let summary = "vision transformers"

    @Option(help: ArgumentHelp("A vision transformer's token width d (default: --model's preset, \(VisionTransformer.presetValues(\.width))).", valueName: "d"))
    public var vitWidth: Int?

    @Option(help: ArgumentHelp("A vision transformer's number of blocks (default: --model's preset, \(VisionTransformer.presetValues(\.depth))).", valueName: "n"))
    public var vitDepth: Int?

    @Option(help: ArgumentHelp("A vision transformer's attention heads, a divisor of the width (default: --model's preset, \(VisionTransformer.presetValues(\.heads))).", valueName: "h"))
    public var vitHeads: Int?

    @Option(help: ArgumentHelp("A vision transformer's patch side P, a divisor of the image height and width (default: --model's preset, \(VisionTransformer.presetValues(\.patch))).", valueName: "p"))
    public var patchSize: Int?

    @Option(help: ArgumentHelp("A vision transformer's MLP width ÷ d (default: --model's preset, \(VisionTransformer.presetValues(\.mlpRatio))).", valueName: "r"))
    public var vitMlpRatio: Int?

    public init() {}

    /// Each flag with its value and its largest one: far beyond any model that trains here,
    /// and small enough that no size computed from them overflows.
    var bounded: [(flag: String, value: Int?, limit: Int)] {
        [("--vit-width", vitWidth, 1 << 16), ("--vit-depth", vitDepth, 1 << 12), ("--vit-heads", vitHeads, 1 << 16),
         ("--patch-size", patchSize, 1 << 12), ("--vit-mlp-ratio", vitMlpRatio, 64)]
    }
    /// The most weights a ViT's blocks may hold (8 GB of float32 values).
    static let maximumBlockParameters = 1 << 31

    /// "vit-t4 192, vit-s4 384", or "4" when the presets agree.
    static func presetValues(_ value: KeyPath<Configuration, Int>) -> String {
        let values = presets.map { $0.configuration[keyPath: value] }
        return Set(values).count == 1 ? "\(values[0])" : zip(names, values).map { "\($0) \($1)" }.joined(separator: ", ")
    }

    /// The preset shape of `--model name` (nil: not a vision transformer).
    public static func preset(_ name: String) -> Configuration? { presets.first { $0.name == name }?.configuration }

    /// The shape of `--model name` with the flags given.
    public func configuration(name: String) -> Configuration {
        var c = Self.preset(name)!
        c.width = vitWidth ?? c.width
        c.depth = vitDepth ?? c.depth
        c.heads = vitHeads ?? c.heads
        c.patch = patchSize ?? c.patch
        c.mlpRatio = vitMlpRatio ?? c.mlpRatio
        return c
    }

    /// Each flag given is a whole number from 1 to its limit.
    public func validate() throws {
        for (flag, value, limit) in bounded {
            if let value, !(1...limit).contains(value) { throw SAMTrainError("\(flag) \(value): must be a whole number from 1 to \(limit)") }
        }
    }

    /// The heads divide the width, and the blocks fit in memory.
    public func validate(name: String) throws {
        let c = configuration(name: name)
        if c.width % c.heads != 0 { throw SAMTrainError("--model \(commandLine(name)): \(c.heads) heads do not divide the width \(c.width)") }
        // Each block holds (4 + 2r)·d² weights (qkv, proj, fc1, fc2).
        guard CheckedSize.product([c.depth, 4 + 2 * c.mlpRatio, c.width, c.width], limit: Self.maximumBlockParameters) != nil else {
            throw SAMTrainError("--model \(commandLine(name)): the blocks would hold more than \(Self.maximumBlockParameters) weights")
        }
    }

    /// One patch.
    public func minimumImageSide(name: String) -> Int { configuration(name: name).patch }

    public func mismatch(name: String, imageShape: [Int]) -> String? {
        configuration(name: name).mismatch(imageShape: imageShape, model: commandLine(name))
    }

    public func build(name: String, inputShape: [Int], classes: Int, convolution: ConvolutionSettings) -> Sequential {
        Self.build(configuration: configuration(name: name), inputShape: inputShape, classes: classes, convolution: convolution)
    }

    public func resolved(name: String) -> VisionTransformer {
        let c = configuration(name: name)
        var r = self
        (r.vitWidth, r.vitDepth, r.vitHeads, r.patchSize, r.vitMlpRatio) = (c.width, c.depth, c.heads, c.patch, c.mlpRatio)
        return r
    }

    public func description(name: String, inputShape: [Int]) -> [String: Any] {
        let c = configuration(name: name)
        return ["width": c.width, "depth": c.depth, "heads": c.heads, "patch": c.patch, "mlp_ratio": c.mlpRatio,
                "tokens": (inputShape[1] / c.patch) * (inputShape[2] / c.patch) + 1]
    }

    public func parameterCount(name: String, inputShape: [Int], classes: Int) -> Int? {
        configuration(name: name).parameterCount(inputShape: inputShape, classes: classes)
    }

    /// The shape of one vision transformer.
    public struct Configuration: Sendable, Equatable {
        /// Token width d.
        public var width: Int
        public var depth: Int
        public var heads: Int
        /// Side P of the square patches.
        public var patch: Int
        /// MLP width ÷ d.
        public var mlpRatio: Int

        public init(width: Int, depth: Int, heads: Int, patch: Int, mlpRatio: Int = 4) {
            self.width = width
            self.depth = depth
            self.heads = heads
            self.patch = patch
            self.mlpRatio = mlpRatio
        }

        /// `vit-t4`: ViT-Tiny (d 192, 12 blocks, 3 heads) on 4×4 patches.
        public static let tiny4 = Configuration(width: 192, depth: 12, heads: 3, patch: 4)
        /// `vit-s4`: ViT-Small (d 384, 12 blocks, 6 heads) on 4×4 patches.
        public static let small4 = Configuration(width: 384, depth: 12, heads: 6, patch: 4)

        /// timm's count for C×H×W inputs and `classes` outputs, in checked arithmetic
        /// (Int.max when it overflows): the class token and position embedding, the patch
        /// projection, per block two LayerNorms, qkv, proj, fc1 and fc2 with their biases, the
        /// last LayerNorm and the head.
        public func parameterCount(inputShape shape: [Int], classes: Int) -> Int {
            guard shape.count == 3, patch > 0 else { return Int.max }
            let d = width, hidden = CheckedSize.product([mlpRatio, width]) ?? Int.max
            let terms: [[Int]] = [
                [d], [shape[1] / patch * (shape[2] / patch) + 1, d],   // cls_token, pos_embed
                [shape[0], patch, patch, d], [d],                      // patch_embed.proj
                [depth, 4 * d + 3 * d + d + hidden + d],               // norms, biases
                [depth, 4, d, d], [depth, 2, hidden, d],               // qkv, proj; fc1, fc2
                [2 * d], [d, classes], [classes],                      // norm, head
            ]
            var total = 0
            for term in terms {
                guard let n = CheckedSize.product(term) else { return Int.max }
                let (sum, overflow) = total.addingReportingOverflow(n)
                if overflow { return Int.max }
                total = sum
            }
            return total
        }

        /// Why C×H×W images do not fit (nil: they do), for `--model name`.
        public func mismatch(imageShape shape: [Int], model name: String) -> String? {
            let text = shape.dropFirst().map(String.init).joined(separator: "×")
            if shape.count != 3 { return "--model \(name) takes C×H×W images" }
            if shape[1] % patch != 0 || shape[2] % patch != 0 {
                return "--model \(name): patch \(patch) does not divide the \(text) images (height and width must be multiples of \(patch))"
            }
            if width % heads != 0 { return "--model \(name): \(heads) heads do not divide the width \(width)" }
            return nil
        }
    }

    /// The model for C×H×W inputs and `classes` outputs. The patch embedding is one GEMM over
    /// gathered patches (`PatchEmbedding`), not a `Conv2d`, so `convolution` has nothing to set.
    static func build(configuration c: Configuration, inputShape: [Int], classes: Int,
                      convolution: ConvolutionSettings = .init()) -> Sequential {
        precondition(c.mismatch(imageShape: inputShape, model: "vit") == nil,
                     c.mismatch(imageShape: inputShape, model: "vit") ?? "")
        let store = ParameterStore()
        let tokens = (inputShape[1] / c.patch) * (inputShape[2] / c.patch)
        // timm's registration order: the embedding tensors first, then the patch embedding.
        let embedding = TokenEmbedding(store: store, tokens: tokens, width: c.width)
        let patches = PatchEmbedding(store: store, name: "patch_embed.proj", channels: inputShape[0],
                                     width: c.width, patch: c.patch)
        var layers: [Layer] = [patches, embedding]
        for k in 0..<c.depth {
            layers.append(TransformerBlock(store: store, name: "blocks.\(k)", width: c.width, heads: c.heads,
                                           mlpRatio: c.mlpRatio))
        }
        layers.append(ClassTokenHead(store: store, width: c.width, classes: classes))
        return Sequential(store: store, layers: layers, inputShape: inputShape, classes: classes)
    }
}
