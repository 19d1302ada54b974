import CBLAS
import CKernels

/// 2-D convolution (PyTorch's Conv2d: weight [out][in][kh][kw], NCHW activations),
/// lowered to OpenBLAS sgemm through im2col.
///
/// The batch is cut into tiles whose column matrix [in·kh·kw][columns] stays in the core's
/// cache (its writes by im2col and reads by the GEMM would otherwise go to memory): several
/// whole images when a feature map is small, or a band of output rows of one image when it
/// is large. A band's GEMM writes straight into the NCHW output (the band of each channel is
/// contiguous, the rows of C are one plane apart) and reads ∂L/∂output in place; a tile of
/// several images goes through `matrix` ([out][images·OH·OW]) and is scattered to NCHW.
/// The backward pass redoes each tile's im2col rather than keeping the whole batch's column
/// matrices, which would cost hundreds of MB and their memory traffic.
///
/// Stride-1 convolutions (chosen per geometry, see `usesPaddedGrid`) use the padded-width
/// grid instead (`PaddedGrid`): the tile's images are zero-padded once, each column-matrix
/// row is one memcpy, the GEMM computes W + 2p columns per output row and a compaction keeps
/// the valid ones; ∂x is a second grid convolution of ∂y (or a fold, see
/// `InputGradientMethod`). The general path above serves the other strides.
///
/// Where the CPU has AVX2 and FMA (checked at run time), convolutions run on samtrain's own
/// kernels instead (`Sources/CKernels`, see `Lowering.direct`): the kernel broadcasts its
/// operand straight from the zero-padded image, so there is no column matrix, no GEMM
/// packing, and no output position is computed twice or wasted on padding, for any stride.
/// ∂x of a stride-1 convolution is the same kernel run on ∂y; other strides take ∂x from
/// the im2col path's Wᵀ·∂Y and col2im.
///
/// The layer keeps a reference to its input for the backward pass: the input must not be
/// changed between `forward` and `backward`.
public final class Conv2d: Layer {
    public let inChannels: Int
    public let outChannels: Int
    public let kernelSize: Int
    public let stride: Int
    public let padding: Int
    public let hasBias: Bool
    public let weightIndex: Int
    public let biasIndex: Int?
    private let store: ParameterStore

    /// Bytes of column matrix a tile aims at: about half of a core's L2 cache.
    nonisolated(unsafe) public static var targetTileBytes = 256 * 1024
    /// Fewest columns a tile has, so that the GEMM's N dimension is not too small.
    nonisolated(unsafe) public static var minimumTileColumns = 256

    private var input: Tensor?
    /// The mode of the latest forward pass, for its backward pass.
    private var mode = PassMode.train
    private var geometry: ConvGeometry?
    private let output = Tensor(shape: [0])
    private let inputGradient = Tensor(shape: [0])
    private let columns = Tensor(shape: [0])       // im2col of a chunk, later its gradient
    private let matrix = Tensor(shape: [0])        // GEMM output / gathered ∂L/∂output of a chunk
    private let padded = Tensor(shape: [0])        // padded-grid path: zero-padded input images
    private let paddedGradient = Tensor(shape: [0])  // padded-grid path: padded ∂L/∂input
    private let flippedWeight = Tensor(shape: [0])   // padded-grid path: W transposed and flipped
    private let packedWeight = Tensor(shape: [0])    // direct path: W as [⌈out/16⌉][patch][16]
    private let packedGradient = Tensor(shape: [0])  // direct path: an image's ∂Y on the grid
    private let chunkBuffer = Tensor(shape: [0])     // direct path: the forward kernel's scratch
    private var tapOffsets: [ConvGeometry: [Int32]] = [:]  // direct path, per geometry
    /// The geometry whose zero border `padded` holds (direct path), nil after other uses.
    private var paddedLayout: ConvGeometry?

    public init(store: ParameterStore, name: String, inChannels: Int, outChannels: Int,
                kernelSize: Int, stride: Int = 1, padding: Int = 0, bias: Bool = true) {
        precondition(inChannels > 0 && outChannels > 0 && kernelSize > 0 && stride > 0 && padding >= 0)
        self.store = store
        self.inChannels = inChannels
        self.outChannels = outChannels
        self.kernelSize = kernelSize
        self.stride = stride
        self.padding = padding
        self.hasBias = bias
        weightIndex = store.addParameter("\(name).weight",
                                         shape: [outChannels, inChannels, kernelSize, kernelSize],
                                         role: .weight)
        biasIndex = bias ? store.addParameter("\(name).bias", shape: [outChannels], role: .bias) : nil
    }

    private var fanIn: Int { inChannels * kernelSize * kernelSize }
    public var parameterIndices: [Int] { [weightIndex] + (biasIndex.map { [$0] } ?? []) }

    public func initialize(using rng: inout SplitMix64) {
        store.initializeLikePyTorch(weight: weightIndex, bias: biasIndex, fanIn: fanIn, using: &rng)
    }

    private func makeGeometry(_ shape: [Int]) -> ConvGeometry {
        precondition(shape.count == 3 && shape[0] == inChannels,
                     "Conv2d expects [\(inChannels), H, W], got \(shape)")
        return ConvGeometry(channels: inChannels, height: shape[1], width: shape[2],
                            kernelHeight: kernelSize, kernelWidth: kernelSize,
                            stride: stride, padding: padding)
    }

    public func outputShape(for inputShape: [Int]) -> [Int] {
        let g = makeGeometry(inputShape)
        return [outChannels, g.outputHeight, g.outputWidth]
    }

    public func forwardFLOPsPerExample(inputShape: [Int]) -> Double {
        let g = makeGeometry(inputShape)
        return 2 * Double(outChannels * g.patchSize * g.outputPlane)
    }

    /// One tile of the batch: `images` images from `first`, output rows `rows` of each.
    private struct Tile {
        var first: Int
        var images: Int
        var rows: Range<Int>
        var columns: Int
    }

    /// How a convolution is lowered to a GEMM.
    public enum Lowering: String, CaseIterable, Sendable {
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

    nonisolated(unsafe) public static var lowering: Lowering = .automatic

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

    nonisolated(unsafe) public static var inputGradientMethod: InputGradientMethod = .automatic

    /// Whether this geometry goes through the padded grid. Automatically whenever the stride
    /// is 1 and the column matrix has at least as many rows as the output has channels: the
    /// grid replaces im2col's per-row copies (patch rows) with a compaction / expansion of
    /// the output (out rows), which only pays when patch ≥ out (not for a 1→32 3×3 stem).
    /// Measured per layer at batch 64 (forward + backward, best of 7): 16→16 at 32×32
    /// 38 → 24 ms, 32→32 at 16×16 27 → 20 ms, 64→64 at 8×8 (25 % junk columns) 20 → 18 ms,
    /// 32→32 at 28×28 93 → 69 ms, 64→64 at 14×14 66 → 58 ms; 1→32 at 28×28 5.0 → 5.4 ms.
    func usesPaddedGrid(_ g: ConvGeometry) -> Bool {
        guard g.stride == 1 else { return false }
        switch Self.lowering {
        case .general: return false
        case .paddedGrid, .direct: return true
        case .automatic: return g.patchSize >= outChannels
        }
    }

    /// Whether this CPU runs the direct kernels (AVX2 and FMA).
    public static var directKernelsAvailable: Bool { samtrain_direct_kernels_available() != 0 }

    /// Whether this geometry runs on the direct kernels: a CPU with AVX2 + FMA, and a padded
    /// image small enough for the kernels' 32-bit tap offsets.
    func usesDirectKernels(_ g: ConvGeometry) -> Bool {
        guard Self.directKernelsAvailable,
              PaddedGrid(g).paddedCount(images: 1) < Int(Int32.max) else { return false }
        switch Self.lowering {
        case .automatic, .direct: return true
        case .general, .paddedGrid: return false
        }
    }

    /// Whether the padded-grid ∂x is a convolution (else a fold); see `InputGradientMethod`.
    /// The convolution wins where out ≤ in (16→16 at 32×32: 19.1 → 15.8 ms backward), the
    /// fold where out > in (32→64 at 14×14: 22.2 → 20.1 ms).
    private func inputGradientByConvolution() -> Bool {
        switch Self.inputGradientMethod {
        case .automatic: return outChannels <= inChannels
        case .convolution: return true
        case .fold: return false
        }
    }

    /// Target columns of a tile for this geometry.
    private func tileColumns(_ g: ConvGeometry) -> Int {
        max(Self.minimumTileColumns, Self.targetTileBytes / (4 * g.patchSize))
    }

    /// Visits the batch's tiles in order: bands of rows of one image when a plane has more
    /// columns than a tile (balanced, so that the last band is not much shorter), else
    /// groups of whole images. A row has `rowWidth` columns: OW for im2col, PW for the grid.
    private func forEachTile(_ g: ConvGeometry, rowWidth: Int, batch n: Int, _ body: (Tile) -> Void) {
        let target = tileColumns(g), oh = g.outputHeight, plane = oh * rowWidth
        if plane > target {
            let most = max(1, target / rowWidth)
            let bands = (oh + most - 1) / most
            let bandRows = (oh + bands - 1) / bands
            for image in 0..<n {
                var r = 0
                while r < oh {
                    let rows = r..<min(oh, r + bandRows)
                    body(Tile(first: image, images: 1, rows: rows, columns: rows.count * rowWidth))
                    r = rows.upperBound
                }
            }
        } else {
            let perTile = max(1, min(n, target / max(1, plane)))
            var start = 0
            while start < n {
                let b = min(perTile, n - start)
                body(Tile(first: start, images: b, rows: 0..<oh, columns: b * plane))
                start += b
            }
        }
    }

    /// Largest tile's column count and image count (for sizing the scratch once per call).
    private func largestTile(_ g: ConvGeometry, rowWidth: Int, batch n: Int) -> (columns: Int, images: Int) {
        var columns = 0, images = 0
        forEachTile(g, rowWidth: rowWidth, batch: n) { t in
            columns = max(columns, t.columns)
            images = max(images, t.images)
        }
        return (columns, images)
    }

    public func forward(_ input: Tensor, mode: PassMode) -> Tensor {
        let n = input.shape[0]
        let g = makeGeometry(Array(input.shape.dropFirst()))
        self.input = input
        self.mode = mode
        geometry = g
        let plane = g.outputPlane, k = g.patchSize, cout = outChannels, ow = g.outputWidth
        output.resize([n, cout, g.outputHeight, ow])
        let w = store.value(weightIndex)
        let bias = biasIndex.map { store.value($0) }
        if usesDirectKernels(g) {
            directConvolve(input.data, images: n, g, weight: w, outChannels: cout, bias: bias, into: output.data)
            return output
        }
        if usesPaddedGrid(g) {
            forwardPaddedGrid(input, g, w: w, bias: bias)
            return output
        }
        let most = largestTile(g, rowWidth: ow, batch: n).columns
        columns.resize([k * most])
        matrix.resize([cout * most])
        forEachTile(g, rowWidth: ow, batch: n) { t in
            im2col(input.data + t.first * g.inputSize, images: t.images, geometry: g, rows: t.rows, into: columns.data)
            if t.images == 1 {
                // A band: C's rows are the band of each output channel, one plane apart.
                let c = output.data + t.first * cout * plane + t.rows.lowerBound * ow
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans,
                            Int32(cout), Int32(t.columns), Int32(k),
                            1, w, Int32(k), columns.data, Int32(t.columns),
                            0, c, Int32(plane))
                if let bias {
                    for co in 0..<cout {
                        let d = c + co * plane, beta = bias[co]
                        for j in 0..<t.columns { d[j] += beta }
                    }
                }
                return
            }
            let length = t.columns
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans,
                        Int32(cout), Int32(length), Int32(k),
                        1, w, Int32(k), columns.data, Int32(length),
                        0, matrix.data, Int32(length))
            // [out][b·plane] → [b][out][plane], adding the bias on the way
            for co in 0..<cout {
                let beta = bias?[co] ?? 0
                let src = matrix.data + co * length
                for i in 0..<t.images {
                    let s = src + i * plane
                    let d = output.data + ((t.first + i) * cout + co) * plane
                    for j in 0..<plane { d[j] = s[j] + beta }
                }
            }
        }
        return output
    }

    public func backward(_ gradOutput: Tensor, inputGradient wantsInput: Bool) -> Tensor? {
        guard let input, let g = geometry else { preconditionFailure("backward before forward") }
        let n = input.shape[0], plane = g.outputPlane, cout = outChannels
        precondition(gradOutput.count == n * cout * plane, "gradient shape mismatch")
        if wantsInput { inputGradient.resize(input.shape) }
        if let biasIndex, mode.wantsGradient(biasIndex) {
            let db = store.gradient(biasIndex)
            for co in 0..<cout {
                var sum = 0.0
                for i in 0..<n { sum += Double(laneSum(gradOutput.data + (i * cout + co) * plane, plane)) }
                db[co] += Float(sum)
            }
        }
        if usesDirectKernels(g) {
            backwardDirect(input, gradOutput, g, inputGradient: wantsInput)
            return wantsInput ? inputGradient : nil
        }
        if usesPaddedGrid(g) {
            backwardPaddedGrid(input, gradOutput, g, inputGradient: wantsInput)
            return wantsInput ? inputGradient : nil
        }
        backwardGeneral(input, gradOutput, g, weightGradient: mode.wantsGradient(weightIndex), inputGradient: wantsInput)
        return wantsInput ? inputGradient : nil
    }

    /// Backward through im2col, tile by tile: ∂W += ∂Y · colᵀ (when `weightGradient`) and
    /// ∂x = col2im(Wᵀ · ∂Y) (when `inputGradient`).
    private func backwardGeneral(_ input: Tensor, _ gradOutput: Tensor, _ g: ConvGeometry,
                                 weightGradient: Bool, inputGradient wantsInput: Bool) {
        let plane = g.outputPlane, k = g.patchSize, cout = outChannels, ow = g.outputWidth
        let n = input.shape[0], w = store.value(weightIndex), dw = store.gradient(weightIndex)
        let most = largestTile(g, rowWidth: ow, batch: n).columns
        columns.resize([k * most])
        matrix.resize([cout * most])
        forEachTile(g, rowWidth: ow, batch: n) { t in
            // ∂Y of the tile as [out][columns]: in place for a band, gathered for images.
            let dy: UnsafeMutablePointer<Float>, ldy: Int
            if t.images == 1 {
                dy = gradOutput.data + t.first * cout * plane + t.rows.lowerBound * ow
                ldy = plane
            } else {
                for i in 0..<t.images {
                    for co in 0..<cout {
                        (matrix.data + co * t.columns + i * plane)
                            .update(from: gradOutput.data + ((t.first + i) * cout + co) * plane, count: plane)
                    }
                }
                dy = matrix.data
                ldy = t.columns
            }
            if weightGradient {
                im2col(input.data + t.first * g.inputSize, images: t.images, geometry: g, rows: t.rows, into: columns.data)
                // ∂W[out][patch] += ∂Y[out][cols] · colᵀ[cols][patch]
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans,
                            Int32(cout), Int32(k), Int32(t.columns),
                            1, dy, Int32(ldy), columns.data, Int32(t.columns),
                            1, dw, Int32(k))
            }
            guard wantsInput else { return }
            // ∂col[patch][cols] = Wᵀ[patch][out] · ∂Y[out][cols]
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans,
                        Int32(k), Int32(t.columns), Int32(cout),
                        1, w, Int32(k), dy, Int32(ldy),
                        0, columns.data, Int32(t.columns))
            let dx = inputGradient.data + t.first * g.inputSize
            if t.images == 1 {
                // Bands of one image overlap in the input: zero it at its first band, then add.
                if t.rows.lowerBound == 0 { dx.update(repeating: 0, count: g.inputSize) }
                col2im(columns.data, images: 1, geometry: g, rows: t.rows, into: dx)
            } else {
                col2im(columns.data, images: t.images, geometry: g, into: dx)
            }
        }
    }

    // MARK: padded-width grid (stride 1)

    /// Forward through the padded grid.
    private func forwardPaddedGrid(_ input: Tensor, _ g: ConvGeometry,
                                   w: UnsafeMutablePointer<Float>, bias: UnsafeMutablePointer<Float>?) {
        gridConvolve(input.data, images: input.shape[0], g, weight: w, outChannels: outChannels,
                     bias: bias, into: output.data)
    }

    /// y = conv(x, weight) + bias for a stride-1 geometry through the padded grid: per tile,
    /// pad the images once (a band's image at its first band), one memcpy per column-matrix
    /// row and image, the GEMM into `matrix` ([out][grid columns]), then compaction of the
    /// valid columns into NCHW plus the bias. Uses `columns`, `matrix` and `padded`.
    private func gridConvolve(_ x: UnsafePointer<Float>, images n: Int, _ g: ConvGeometry,
                              weight w: UnsafePointer<Float>, outChannels m: Int,
                              bias: UnsafePointer<Float>?, into y: UnsafeMutablePointer<Float>) {
        let k = g.patchSize, plane = g.outputPlane
        let grid = PaddedGrid(g)
        let most = largestTile(g, rowWidth: grid.paddedWidth, batch: n)
        columns.resize([k * most.columns])
        matrix.resize([m * most.columns])
        padded.resize([grid.paddedCount(images: most.images)])
        let col = columns.data, out = matrix.data, pad = padded.data
        paddedLayout = nil
        forEachTile(g, rowWidth: grid.paddedWidth, batch: n) { t in
            if t.rows.lowerBound == 0 {
                grid.pad(x + t.first * g.inputSize, images: t.images, into: pad)
            }
            grid.im2col(pad, images: t.images, rows: t.rows, into: col)
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans,
                        Int32(m), Int32(t.columns), Int32(k),
                        1, w, Int32(k), col, Int32(t.columns),
                        0, out, Int32(t.columns))
            grid.compact(out, channels: m, images: t.images, rows: t.rows, bias: bias,
                         into: y + t.first * m * plane)
        }
    }

    /// The geometry of ∂x as a convolution of ∂y: ∂x = conv(∂y padded by k − 1 − p, W
    /// transposed and flipped), stride 1; nil when p > k − 1.
    private func dataGradientGeometry(_ g: ConvGeometry) -> ConvGeometry? {
        let qy = g.kernelHeight - 1 - g.padding, qx = g.kernelWidth - 1 - g.padding
        guard qy >= 0, qy == qx else { return nil }
        let d = ConvGeometry(channels: outChannels, height: g.outputHeight, width: g.outputWidth,
                             kernelHeight: g.kernelHeight, kernelWidth: g.kernelWidth,
                             stride: 1, padding: qy)
        precondition(d.outputHeight == g.height && d.outputWidth == g.width)
        return d
    }

    /// Backward through the padded grid. ∂W: per tile, ∂Y expanded to grid columns (zero
    /// junk columns, which therefore contribute nothing), ∂W += ∂Y_grid · col_gridᵀ.
    /// ∂x: a second stride-1 convolution, of ∂Y padded by k − 1 − p with the transposed,
    /// flipped kernel (`gridConvolve`), whose GEMM has inner dimension out·kh·kw instead of
    /// `out` and no column-matrix gradient to zero and fold. When p > k − 1 it is instead
    /// ∂col_grid = Wᵀ · ∂Y_grid, added run by run into a padded ∂x of the tile's images, whose
    /// interior is copied to ∂x after the images' last rows.
    private func backwardPaddedGrid(_ input: Tensor, _ gradOutput: Tensor, _ g: ConvGeometry,
                                    inputGradient wantsInput: Bool) {
        let n = input.shape[0], k = g.patchSize, cout = outChannels, plane = g.outputPlane
        let oh = g.outputHeight
        let dataGeometry = wantsInput && inputGradientByConvolution() ? dataGradientGeometry(g) : nil
        let fold = wantsInput && dataGeometry == nil
        let grid = PaddedGrid(g)
        let most = largestTile(g, rowWidth: grid.paddedWidth, batch: n)
        columns.resize([k * most.columns])
        matrix.resize([cout * most.columns])
        padded.resize([grid.paddedCount(images: most.images)])
        if fold { paddedGradient.resize([grid.paddedCount(images: most.images)]) }
        let w = store.value(weightIndex), dw = store.gradient(weightIndex)
        let weightWanted = mode.wantsGradient(weightIndex)
        let x = input.data, col = columns.data, dy = matrix.data, pad = padded.data
        paddedLayout = nil
        let dpad = paddedGradient.data
        forEachTile(g, rowWidth: grid.paddedWidth, batch: n) { t in
            if t.rows.lowerBound == 0 {
                grid.pad(x + t.first * g.inputSize, images: t.images, into: pad)
                if fold { dpad.update(repeating: 0, count: grid.paddedCount(images: t.images)) }
            }
            grid.im2col(pad, images: t.images, rows: t.rows, into: col)
            grid.expand(gradOutput.data + t.first * cout * plane, channels: cout, images: t.images,
                        rows: t.rows, into: dy)
            // ∂W[out][patch] += ∂Y[out][cols] · colᵀ[cols][patch]
            if weightWanted {
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans,
                            Int32(cout), Int32(k), Int32(t.columns),
                            1, dy, Int32(t.columns), col, Int32(t.columns),
                            1, dw, Int32(k))
            }
            guard fold else { return }
            // ∂col[patch][cols] = Wᵀ[patch][out] · ∂Y[out][cols]
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans,
                        Int32(k), Int32(t.columns), Int32(cout),
                        1, w, Int32(k), dy, Int32(t.columns),
                        0, col, Int32(t.columns))
            grid.col2im(col, images: t.images, rows: t.rows, into: dpad)
            if t.rows.upperBound == oh {
                grid.unpad(dpad, images: t.images, into: inputGradient.data + t.first * g.inputSize)
            }
        }
        guard let dataGeometry else { return }
        gridConvolve(gradOutput.data, images: n, dataGeometry, weight: flipWeight(g), outChannels: inChannels,
                     bias: nil, into: inputGradient.data)
    }

    /// W transposed and flipped, the kernel of ∂x as a convolution of ∂y:
    /// flipped[c][co][ky][kx] = W[co][c][kh − 1 − ky][kw − 1 − kx].
    private func flipWeight(_ g: ConvGeometry) -> UnsafeMutablePointer<Float> {
        let w = store.value(weightIndex)
        let taps = g.kernelHeight * g.kernelWidth, cin = inChannels, cout = outChannels
        flippedWeight.resize([cin * cout * taps])
        let f = flippedWeight.data
        for co in 0..<cout {
            for c in 0..<cin {
                let src = w + (co * cin + c) * taps, dst = f + (c * cout + co) * taps
                for t in 0..<taps { dst[taps - 1 - t] = src[t] }
            }
        }
        return f
    }

    // MARK: direct kernels (AVX2 + FMA)

    /// Offsets of the kernel taps (c, ky, kx) in a padded image: c·PH·PW + ky·PW + kx.
    private func offsets(_ g: ConvGeometry) -> [Int32] {
        if let known = tapOffsets[g] { return known }
        let grid = PaddedGrid(g)
        precondition(grid.paddedCount(images: 1) < Int(Int32.max), "padded image too large for 32-bit offsets")
        var offsets: [Int32] = []
        offsets.reserveCapacity(g.patchSize)
        for c in 0..<g.channels {
            for ky in 0..<g.kernelHeight {
                for kx in 0..<g.kernelWidth {
                    offsets.append(Int32(c * grid.paddedPlane + ky * grid.paddedWidth + kx))
                }
            }
        }
        tapOffsets[g] = offsets
        return offsets
    }

    /// `padded` laid out for one image of `g` with a zero border: zeroed only when it last
    /// held another geometry, so that each image then costs a copy of its interior.
    private func preparePadded(_ g: ConvGeometry) -> UnsafeMutablePointer<Float> {
        if paddedLayout != g {
            let count = PaddedGrid(g).paddedCount(images: 1)
            padded.resize([count])
            fillZero(padded.data, count)
            paddedLayout = g
        }
        return padded.data
    }

    /// y = conv(x, weight [m][patch]) + bias, image by image: copy the image into the padded
    /// buffer (it stays in cache), then one kernel call writes its NCHW output.
    private func directConvolve(_ x: UnsafePointer<Float>, images n: Int, _ g: ConvGeometry,
                                weight w: UnsafePointer<Float>, outChannels m: Int,
                                bias: UnsafePointer<Float>?, into y: UnsafeMutablePointer<Float>) {
        packedWeight.resize([(m + 15) / 16 * 16 * g.patchSize])
        samtrain_direct_pack(w, Int32(m), Int32(g.patchSize), packedWeight.data)
        directConvolve(x, images: n, g, packed: packedWeight.data, outChannels: m, bias: bias, into: y)
    }

    /// As above, with the weights already packed (`samtrain_direct_pack` or its flipped form).
    private func directConvolve(_ x: UnsafePointer<Float>, images n: Int, _ g: ConvGeometry,
                                packed: UnsafePointer<Float>, outChannels m: Int,
                                bias: UnsafePointer<Float>?, into y: UnsafeMutablePointer<Float>) {
        let grid = PaddedGrid(g), k = g.patchSize
        let pad = preparePadded(g)
        chunkBuffer.resize([samtrain_direct_forward_buffer_count()])
        let taps = offsets(g)
        taps.withUnsafeBufferPointer { taps in
            for i in 0..<n {
                grid.copyInterior(x + i * g.inputSize, images: 1, into: pad)
                samtrain_direct_conv_forward(pad, taps.baseAddress, Int32(k), packed, Int32(m),
                                             Int32(g.outputHeight), Int32(g.outputWidth), Int32(g.stride),
                                             Int32(grid.paddedWidth), bias, y + i * m * g.outputPlane,
                                             chunkBuffer.data)
            }
        }
    }

    /// Backward on the direct kernels, image by image: ∂W += ∂Y · (padded taps)ᵀ from the
    /// image's packed ∂Y. ∂x of a stride-1 convolution is the convolution of ∂y padded by
    /// k − 1 − p with the flipped kernel; other strides (and p > k − 1) take it from im2col's
    /// path.
    private func backwardDirect(_ input: Tensor, _ gradOutput: Tensor, _ g: ConvGeometry,
                                inputGradient wantsInput: Bool) {
        let n = input.shape[0], k = g.patchSize, cout = outChannels, plane = g.outputPlane
        let grid = PaddedGrid(g)
        packedGradient.resize([(cout + 15) / 16 * 16 * plane])
        let pad = preparePadded(g), dw = store.gradient(weightIndex)
        let taps = offsets(g)
        taps.withUnsafeBufferPointer { taps in
            for i in 0..<n where mode.wantsGradient(weightIndex) {
                grid.copyInterior(input.data + i * g.inputSize, images: 1, into: pad)
                samtrain_direct_pack(gradOutput.data + i * cout * plane, Int32(cout), Int32(plane),
                                     packedGradient.data)
                samtrain_direct_conv_weight_gradient(pad, taps.baseAddress, Int32(k), packedGradient.data,
                                                     Int32(cout), Int32(g.outputHeight), Int32(g.outputWidth),
                                                     Int32(g.stride), Int32(grid.paddedWidth), dw)
            }
        }
        guard wantsInput else { return }
        if g.stride == 1, let dataGeometry = dataGradientGeometry(g) {
            let taps = g.kernelHeight * g.kernelWidth
            packedWeight.resize([(inChannels + 15) / 16 * 16 * cout * taps])
            samtrain_direct_pack_flipped_weights(store.value(weightIndex), Int32(cout), Int32(inChannels), Int32(taps),
                                                 packedWeight.data)
            directConvolve(gradOutput.data, images: n, dataGeometry, packed: packedWeight.data, outChannels: inChannels,
                           bias: nil, into: inputGradient.data)
        } else {
            backwardGeneral(input, gradOutput, g, weightGradient: false, inputGradient: true)
        }
    }
}
