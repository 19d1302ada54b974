import CBLAS

/// A stride-1 convolution lowered to sgemm on the padded-width grid (`PaddedGrid`): the
/// tile's images are zero-padded once, each column-matrix row is one memcpy, the GEMM
/// computes W + 2p columns per output row and a compaction keeps the valid ones. ∂x is a
/// second grid convolution of ∂y, or a fold of Wᵀ·∂y (`ConvolutionSettings.InputGradientMethod`).
/// Tiles as im2col's (`ConvolutionSettings.forEachTile`), rows PW = W + 2p columns wide.
final class PaddedGridConvolution: LoweredConvolution {
    private let outChannels: Int
    private let settings: ConvolutionSettings
    private let columns = Tensor(shape: [0])         // grid im2col of a tile, later its gradient
    private let matrix = Tensor(shape: [0])          // GEMM output / ∂L/∂output of a tile on the grid
    private let padded = Tensor(shape: [0])          // zero-padded input images of a tile
    private let paddedGradient = Tensor(shape: [0])  // padded ∂L/∂input of a tile (fold)
    private let flippedWeight = Tensor(shape: [0])   // W transposed and flipped (∂x by convolution)

    init(outChannels: Int, settings: ConvolutionSettings) {
        self.outChannels = outChannels
        self.settings = settings
    }

    func forward(_ x: UnsafePointer<Float>, images n: Int, _ g: ConvGeometry,
                 weight w: UnsafePointer<Float>, bias: UnsafePointer<Float>?, into y: UnsafeMutablePointer<Float>) {
        gridConvolve(x, images: n, g, weight: w, outChannels: outChannels, bias: bias, into: y)
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
        let most = settings.largestTile(g, rowWidth: grid.paddedWidth, batch: n)
        columns.resize([k * most.columns])
        matrix.resize([m * most.columns])
        padded.resize([grid.paddedCount(images: most.images)])
        let col = columns.data, out = matrix.data, pad = padded.data
        settings.forEachTile(g, rowWidth: grid.paddedWidth, batch: n) { t in
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

    /// Whether ∂x is a convolution (else a fold); see `InputGradientMethod`. The convolution
    /// wins where out ≤ in, the fold where out > in (docs/performance.md, "Convolution
    /// lowerings: why each is chosen").
    private func inputGradientByConvolution(inChannels: Int) -> Bool {
        switch settings.inputGradientMethod {
        case .automatic: return outChannels <= inChannels
        case .convolution: return true
        case .fold: return false
        }
    }

    /// ∂W: per tile, ∂Y expanded to grid columns (zero junk columns, which therefore
    /// contribute nothing), ∂W += ∂Y_grid · col_gridᵀ.
    /// ∂x: a second stride-1 convolution, of ∂Y padded by k − 1 − p with the transposed,
    /// flipped kernel (`gridConvolve`), whose GEMM has inner dimension out·kh·kw instead of
    /// `out` and no column-matrix gradient to zero and fold. When p > k − 1 it is instead
    /// ∂col_grid = Wᵀ · ∂Y_grid, added run by run into a padded ∂x of the tile's images, whose
    /// interior is copied to ∂x after the images' last rows.
    func backward(_ x: UnsafePointer<Float>, _ gradOutput: UnsafePointer<Float>, images n: Int, _ g: ConvGeometry,
                  weight w: UnsafePointer<Float>, weightGradient dw: UnsafeMutablePointer<Float>?,
                  inputGradient: UnsafeMutablePointer<Float>?) {
        let k = g.patchSize, cout = outChannels, plane = g.outputPlane
        let oh = g.outputHeight
        let wantsInput = inputGradient != nil
        let dataGeometry = wantsInput && inputGradientByConvolution(inChannels: g.channels)
            ? g.dataGradientGeometry(outChannels: cout) : nil
        let fold = wantsInput && dataGeometry == nil
        let grid = PaddedGrid(g)
        let most = settings.largestTile(g, rowWidth: grid.paddedWidth, batch: n)
        columns.resize([k * most.columns])
        matrix.resize([cout * most.columns])
        padded.resize([grid.paddedCount(images: most.images)])
        if fold { paddedGradient.resize([grid.paddedCount(images: most.images)]) }
        let col = columns.data, dy = matrix.data, pad = padded.data
        let dpad = paddedGradient.data
        settings.forEachTile(g, rowWidth: grid.paddedWidth, batch: n) { t in
            if t.rows.lowerBound == 0 {
                grid.pad(x + t.first * g.inputSize, images: t.images, into: pad)
                if fold { dpad.update(repeating: 0, count: grid.paddedCount(images: t.images)) }
            }
            grid.im2col(pad, images: t.images, rows: t.rows, into: col)
            grid.expand(gradOutput + t.first * cout * plane, channels: cout, images: t.images,
                        rows: t.rows, into: dy)
            // ∂W[out][patch] += ∂Y[out][cols] · colᵀ[cols][patch]
            if let dw {
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans,
                            Int32(cout), Int32(k), Int32(t.columns),
                            1, dy, Int32(t.columns), col, Int32(t.columns),
                            1, dw, Int32(k))
            }
            guard fold, let inputGradient else { return }
            // ∂col[patch][cols] = Wᵀ[patch][out] · ∂Y[out][cols]
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans,
                        Int32(k), Int32(t.columns), Int32(cout),
                        1, w, Int32(k), dy, Int32(t.columns),
                        0, col, Int32(t.columns))
            grid.col2im(col, images: t.images, rows: t.rows, into: dpad)
            if t.rows.upperBound == oh {
                grid.unpad(dpad, images: t.images, into: inputGradient + t.first * g.inputSize)
            }
        }
        guard let dataGeometry, let inputGradient else { return }
        gridConvolve(gradOutput, images: n, dataGeometry, weight: flipWeight(w, g), outChannels: g.channels,
                     bias: nil, into: inputGradient)
    }

    /// W transposed and flipped, the kernel of ∂x as a convolution of ∂y:
    /// flipped[c][co][ky][kx] = W[co][c][kh − 1 − ky][kw − 1 − kx].
    private func flipWeight(_ w: UnsafePointer<Float>, _ g: ConvGeometry) -> UnsafeMutablePointer<Float> {
        let taps = g.kernelHeight * g.kernelWidth, cin = g.channels, cout = outChannels
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
}
