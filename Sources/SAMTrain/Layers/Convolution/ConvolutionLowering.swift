import CKernels

/// How a convolution is lowered (`bench --convolution`).
public enum ConvolutionLowering: String, CaseIterable, Sendable {
    /// The direct kernels where the CPU has them; else, for stride 1, the padded grid
    /// where it is faster than im2col, and im2col for other strides.
    case automatic
    /// samtrain's direct kernels where the CPU has them (else as `paddedGrid`).
    case direct
    /// im2col / col2im (any stride).
    case general = "im2col"
    /// The padded-width grid (`PaddedGrid`) for stride 1; im2col for other strides.
    case paddedGrid = "padded-grid"
}

/// How a model's convolutions run, given to each `Conv2d` when the model is built.
public struct ConvolutionSettings: Sendable, Equatable {
    /// How the padded-grid path computes ∂L/∂input.
    public enum InputGradientMethod: Sendable {
        /// `convolution` when out ≤ in channels, else `fold` (measured on the CIFAR nets).
        case automatic
        /// ∂x = conv(∂y padded by k − 1 − p, W transposed and flipped): one GEMM with inner
        /// dimension out·kh·kw per tile and no column-matrix gradient (needs p ≤ k − 1).
        case convolution
        /// ∂col = Wᵀ·∂y (inner dimension out), folded run by run into a padded ∂x.
        case fold
    }

    public var lowering: ConvolutionLowering
    public var inputGradientMethod: InputGradientMethod
    /// Bytes of column matrix a tile aims at: about half of a core's L2 cache.
    public var targetTileBytes: Int
    /// Fewest columns a tile has, so that the GEMM's N dimension is not too small.
    public var minimumTileColumns: Int

    public init(lowering: ConvolutionLowering = .automatic, inputGradientMethod: InputGradientMethod = .automatic,
                targetTileBytes: Int = 256 * 1024, minimumTileColumns: Int = 256) {
        self.lowering = lowering
        self.inputGradientMethod = inputGradientMethod
        self.targetTileBytes = targetTileBytes
        self.minimumTileColumns = minimumTileColumns
    }
}

/// One way of computing a convolution over a batch, with the scratch tensors it needs. A
/// `Conv2d` makes one of the kind its settings choose for an input geometry (`lowering(for:)`).
///
/// Pointers: x is [n][C][H][W] of geometry `g`, weight [out][C·kh·kw], bias [out], y and ∂y
/// [n][out][OH][OW], ∂x like x. `backward` ADDS ∂L/∂W into `weightGradient` (nil: not wanted)
/// and overwrites `inputGradient` with ∂L/∂x (nil: not wanted); ∂L/∂bias is the layer's.
protocol LoweredConvolution: AnyObject {
    func forward(_ x: UnsafePointer<Float>, images n: Int, _ g: ConvGeometry,
                 weight: UnsafePointer<Float>, bias: UnsafePointer<Float>?, into y: UnsafeMutablePointer<Float>)
    func backward(_ x: UnsafePointer<Float>, _ dy: UnsafePointer<Float>, images n: Int, _ g: ConvGeometry,
                  weight: UnsafePointer<Float>, weightGradient: UnsafeMutablePointer<Float>?,
                  inputGradient: UnsafeMutablePointer<Float>?)
}

// MARK: the choice per geometry

extension ConvolutionSettings {
    /// The lowering a convolution of geometry `g` with `outChannels` outputs runs on (never
    /// `.automatic`): the direct kernels, else the padded grid, else im2col.
    func lowering(for g: ConvGeometry, outChannels: Int) -> ConvolutionLowering {
        if usesDirectKernels(g) { return .direct }
        if usesPaddedGrid(g, outChannels: outChannels) { return .paddedGrid }
        return .general
    }

    /// Whether this geometry goes through the padded grid rather than im2col (when the direct
    /// kernels do not take it). Automatically whenever the stride is 1 and the column matrix
    /// has at least as many rows as the output has channels: the grid replaces im2col's
    /// per-row copies (patch rows) with a compaction / expansion of the output (out rows),
    /// which only pays when patch ≥ out (not for a 1→32 3×3 stem). Measured: docs/performance.md,
    /// "Convolution lowerings: why each is chosen".
    func usesPaddedGrid(_ g: ConvGeometry, outChannels: Int) -> Bool {
        guard g.stride == 1 else { return false }
        switch lowering {
        case .general: return false
        case .paddedGrid, .direct: return true
        case .automatic: return g.patchSize >= outChannels
        }
    }

    /// Whether this geometry runs on the direct kernels: the process's kernel path is AVX2 or
    /// AVX-512, and a padded image is small enough for the kernels' 32-bit tap offsets.
    func usesDirectKernels(_ g: ConvGeometry) -> Bool {
        guard Conv2d.directKernelsAvailable,
              PaddedGrid(g).paddedCount(images: 1) < Int(Int32.max) else { return false }
        switch lowering {
        case .automatic, .direct: return true
        case .general, .paddedGrid: return false
        }
    }
}

extension Conv2d {
    /// Whether the process's kernel path has direct convolution kernels (AVX2 + FMA or
    /// AVX-512; the portable path lowers every convolution onto sgemm).
    public static var directKernelsAvailable: Bool { samtrain_direct_kernels_available(directKernelPath) != 0 }

    /// The kernel path the direct convolutions run (docs/algorithms.md §12.3).
    static var directKernelPath: Int32 { VectorKernels.active.path.code }
}

extension ConvGeometry {
    /// The geometry of ∂x as a convolution of ∂y (`outChannels` channels): ∂x = conv(∂y padded
    /// by k − 1 − p, W transposed and flipped), stride 1; nil when p > k − 1.
    func dataGradientGeometry(outChannels: Int) -> ConvGeometry? {
        let qy = kernelHeight - 1 - padding, qx = kernelWidth - 1 - padding
        guard qy >= 0, qy == qx else { return nil }
        let d = ConvGeometry(channels: outChannels, height: outputHeight, width: outputWidth,
                             kernelHeight: kernelHeight, kernelWidth: kernelWidth,
                             stride: 1, padding: qy)
        precondition(d.outputHeight == height && d.outputWidth == width)
        return d
    }
}

// MARK: tiles (im2col and the padded grid)

/// One tile of the batch: `images` images from `first`, output rows `rows` of each.
struct ConvolutionTile {
    var first: Int
    var images: Int
    var rows: Range<Int>
    var columns: Int
}

extension ConvolutionSettings {
    /// Target columns of a tile for this geometry.
    func tileColumns(_ g: ConvGeometry) -> Int {
        max(minimumTileColumns, targetTileBytes / (4 * g.patchSize))
    }

    /// Visits the batch's tiles in order: bands of rows of one image when a plane has more
    /// columns than a tile (balanced, so that the last band is not much shorter), else
    /// groups of whole images. A row has `rowWidth` columns: OW for im2col, PW for the grid.
    func forEachTile(_ g: ConvGeometry, rowWidth: Int, batch n: Int, _ body: (ConvolutionTile) -> Void) {
        let target = tileColumns(g), oh = g.outputHeight, plane = oh * rowWidth
        if plane > target {
            let most = max(1, target / rowWidth)
            let bands = (oh + most - 1) / most
            let bandRows = (oh + bands - 1) / bands
            for image in 0..<n {
                var r = 0
                while r < oh {
                    let rows = r..<min(oh, r + bandRows)
                    body(ConvolutionTile(first: image, images: 1, rows: rows, columns: rows.count * rowWidth))
                    r = rows.upperBound
                }
            }
        } else {
            let perTile = max(1, min(n, target / max(1, plane)))
            var start = 0
            while start < n {
                let b = min(perTile, n - start)
                body(ConvolutionTile(first: start, images: b, rows: 0..<oh, columns: b * plane))
                start += b
            }
        }
    }

    /// Largest tile's column count and image count (for sizing the scratch once per call).
    func largestTile(_ g: ConvGeometry, rowWidth: Int, batch n: Int) -> (columns: Int, images: Int) {
        var columns = 0, images = 0
        forEachTile(g, rowWidth: rowWidth, batch: n) { t in
            columns = max(columns, t.columns)
            images = max(images, t.images)
        }
        return (columns, images)
    }
}
