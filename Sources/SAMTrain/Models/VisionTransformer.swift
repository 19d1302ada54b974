/// Vision transformers (Dosovitskiy et al. 2021), exactly timm's `VisionTransformer` with a
/// class token, a learned position embedding, pre-norm blocks, LayerNorm eps 1e-6, exact
/// GELU, no dropout and the head on the class token (docs/algorithms.md §7):
///
///     patch_embed → [cls_token; tokens] + pos_embed → blocks.0 … blocks.(depth−1) → norm → token 0 → head
///
/// Tensors carry timm's `state_dict` names and shapes and are registered in its order
/// (`cls_token`, `pos_embed`, `patch_embed.proj.*`, `blocks.K.*`, `norm.*`, `head.*`), so `head`
/// is the last: the classifier head that fine-tuning starts fresh.
public enum VisionTransformer {
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
