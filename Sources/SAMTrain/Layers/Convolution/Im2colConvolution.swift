import CBLAS

/// A convolution of any stride lowered to OpenBLAS sgemm through im2col.
///
/// The batch is cut into tiles whose column matrix [in·kh·kw][columns] stays in the core's
/// cache (its writes by im2col and reads by the GEMM would otherwise go to memory): several
/// whole images when a feature map is small, or a band of output rows of one image when it
/// is large. A band's GEMM writes straight into the NCHW output (the band of each channel is
/// contiguous, the rows of C are one plane apart) and reads ∂L/∂output in place; a tile of
/// several images goes through `matrix` ([out][images·OH·OW]) and is scattered to NCHW.
/// The backward pass redoes each tile's im2col rather than keeping the whole batch's column
/// matrices, which would cost hundreds of MB and their memory traffic.
final class Im2colConvolution: LoweredConvolution {
    private let outChannels: Int
    private let settings: ConvolutionSettings
    private let columns = Tensor(shape: [0])  // im2col of a tile, later its gradient
    private let matrix = Tensor(shape: [0])   // GEMM output / gathered ∂L/∂output of a tile

    init(outChannels: Int, settings: ConvolutionSettings) {
        self.outChannels = outChannels
        self.settings = settings
    }

    func forward(_ x: UnsafePointer<Float>, images n: Int, _ g: ConvGeometry,
                 weight w: UnsafePointer<Float>, bias: UnsafePointer<Float>?, into y: UnsafeMutablePointer<Float>) {
        let plane = g.outputPlane, k = g.patchSize, cout = outChannels, ow = g.outputWidth
        let most = settings.largestTile(g, rowWidth: ow, batch: n).columns
        columns.resize([k * most])
        matrix.resize([cout * most])
        settings.forEachTile(g, rowWidth: ow, batch: n) { t in
            im2col(x + t.first * g.inputSize, images: t.images, geometry: g, rows: t.rows, into: columns.data)
            if t.images == 1 {
                // A band: C's rows are the band of each output channel, one plane apart.
                let c = y + t.first * cout * plane + t.rows.lowerBound * ow
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
                    let d = y + ((t.first + i) * cout + co) * plane
                    for j in 0..<plane { d[j] = s[j] + beta }
                }
            }
        }
    }

    /// Tile by tile: ∂W += ∂Y · colᵀ and ∂x = col2im(Wᵀ · ∂Y).
    func backward(_ x: UnsafePointer<Float>, _ gradOutput: UnsafePointer<Float>, images n: Int, _ g: ConvGeometry,
                  weight w: UnsafePointer<Float>, weightGradient dw: UnsafeMutablePointer<Float>?,
                  inputGradient: UnsafeMutablePointer<Float>?) {
        let plane = g.outputPlane, k = g.patchSize, cout = outChannels, ow = g.outputWidth
        let most = settings.largestTile(g, rowWidth: ow, batch: n).columns
        columns.resize([k * most])
        matrix.resize([cout * most])
        settings.forEachTile(g, rowWidth: ow, batch: n) { t in
            // ∂Y of the tile as [out][columns]: in place for a band, gathered for images.
            let dy: UnsafePointer<Float>, ldy: Int
            if t.images == 1 {
                dy = gradOutput + t.first * cout * plane + t.rows.lowerBound * ow
                ldy = plane
            } else {
                for i in 0..<t.images {
                    for co in 0..<cout {
                        (matrix.data + co * t.columns + i * plane)
                            .update(from: gradOutput + ((t.first + i) * cout + co) * plane, count: plane)
                    }
                }
                dy = UnsafePointer(matrix.data)
                ldy = t.columns
            }
            if let dw {
                im2col(x + t.first * g.inputSize, images: t.images, geometry: g, rows: t.rows, into: columns.data)
                // ∂W[out][patch] += ∂Y[out][cols] · colᵀ[cols][patch]
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans,
                            Int32(cout), Int32(k), Int32(t.columns),
                            1, dy, Int32(ldy), columns.data, Int32(t.columns),
                            1, dw, Int32(k))
            }
            guard let inputGradient else { return }
            // ∂col[patch][cols] = Wᵀ[patch][out] · ∂Y[out][cols]
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans,
                        Int32(k), Int32(t.columns), Int32(cout),
                        1, w, Int32(k), dy, Int32(ldy),
                        0, columns.data, Int32(t.columns))
            let dx = inputGradient + t.first * g.inputSize
            if t.images == 1 {
                // Bands of one image overlap in the input: zero it at its first band, then add.
                if t.rows.lowerBound == 0 { dx.update(repeating: 0, count: g.inputSize) }
                col2im(columns.data, images: 1, geometry: g, rows: t.rows, into: dx)
            } else {
                col2im(columns.data, images: t.images, geometry: g, into: dx)
            }
        }
    }
}
