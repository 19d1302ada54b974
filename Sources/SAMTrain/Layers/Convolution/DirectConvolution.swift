import CKernels

/// A convolution of any stride on samtrain's own AVX-512 or AVX2 + FMA kernels
/// (`Sources/CKernels`), where the CPU has them (checked at run time): the kernels read the
/// zero-padded image in place, so there is no column matrix and no GEMM packing. On AVX-512 a
/// stride-1 convolution runs with vectors along the output rows of the padded-width grid; other
/// strides and AVX2 broadcast the image into tiles of positions × channels (docs/algorithms.md
/// §12.3). ∂x of a stride-1 convolution is the same kernel run on ∂y; other strides (and
/// p > k − 1) take ∂x from `Im2colConvolution`.
final class DirectConvolution: LoweredConvolution {
    private let outChannels: Int
    private let settings: ConvolutionSettings
    private let padded = Tensor(shape: [0])          // one zero-padded image
    private let packedWeight = Tensor(shape: [0])    // W (or ∂x's kernel) packed for the kernel that runs it
    private let packedGradient = Tensor(shape: [0])  // an image's ∂Y on the grid
    private let chunkBuffer = Tensor(shape: [0])     // the forward kernel's scratch (the row kernel's grid)
    private let flippedWeight = Tensor(shape: [0])   // ∂x's kernel, W transposed and flipped, [in][out·taps]
    private var tapOffsets: [ConvGeometry: [Int32]] = [:]
    /// The geometry whose zero border `padded` holds.
    private var paddedLayout: ConvGeometry?
    /// ∂x where it is not a stride-1 convolution of ∂y.
    private lazy var general = Im2colConvolution(outChannels: outChannels, settings: settings)

    init(outChannels: Int, settings: ConvolutionSettings) {
        self.outChannels = outChannels
        self.settings = settings
    }

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
            // The row kernels read up to a tile of grid positions past the last tap.
            let count = PaddedGrid(g).paddedCount(images: 1) + Int(samtrain_rows_tile_positions()) + 16
            padded.resize([count])
            fillZero(padded.data, count)
            paddedLayout = g
        }
        return padded.data
    }

    /// y = conv(x, weight [m][patch]) + bias, image by image: copy the image into the padded
    /// buffer (it stays in cache), then one kernel call writes its NCHW output.
    func forward(_ x: UnsafePointer<Float>, images n: Int, _ g: ConvGeometry,
                 weight w: UnsafePointer<Float>, bias: UnsafePointer<Float>?, into y: UnsafeMutablePointer<Float>) {
        convolve(x, images: n, g, weight: w, outChannels: outChannels, bias: bias, into: y)
    }

    /// Whether geometry `g` runs on the AVX-512 row kernels (stride 1) rather than the tiles
    /// of positions × channels.
    private func usesRowKernels(_ g: ConvGeometry) -> Bool {
        g.stride == 1 && VectorKernels.active.path == .avx512
    }

    /// y = conv(x, weight [m][patch]) + bias for images of geometry `g`, packing the weights
    /// for the kernel that runs them.
    private func convolve(_ x: UnsafePointer<Float>, images n: Int, _ g: ConvGeometry,
                          weight w: UnsafePointer<Float>, outChannels m: Int,
                          bias: UnsafePointer<Float>?, into y: UnsafeMutablePointer<Float>) {
        let grid = PaddedGrid(g), k = g.patchSize
        let rows = usesRowKernels(g)
        packedWeight.resize([(m + 15) / 16 * 16 * k])
        if rows {
            samtrain_rows_pack(w, Int32(m), Int32(k), packedWeight.data)
            chunkBuffer.resize([samtrain_rows_grid_count(Int32(m), Int32(g.outputHeight), Int32(grid.paddedWidth))])
        } else {
            samtrain_direct_pack(w, Int32(m), Int32(k), packedWeight.data)
            chunkBuffer.resize([samtrain_direct_forward_buffer_count()])
        }
        let pad = preparePadded(g), packed = packedWeight.data
        let taps = offsets(g)
        taps.withUnsafeBufferPointer { taps in
            for i in 0..<n {
                grid.copyInterior(x + i * g.inputSize, images: 1, into: pad)
                let out = y + i * m * g.outputPlane
                if rows {
                    samtrain_rows_conv_forward(pad, taps.baseAddress, Int32(k), packed, Int32(m), Int32(g.outputHeight),
                                               Int32(g.outputWidth), Int32(grid.paddedWidth), bias, out, chunkBuffer.data)
                } else {
                    samtrain_direct_conv_forward(Conv2d.directKernelPath, pad, taps.baseAddress, Int32(k), packed, Int32(m),
                                                 Int32(g.outputHeight), Int32(g.outputWidth), Int32(g.stride),
                                                 Int32(grid.paddedWidth), bias, out, chunkBuffer.data)
                }
            }
        }
    }

    /// Image by image: ∂W += ∂Y · (padded taps)ᵀ from the image's packed ∂Y (3 × 3 stride 1 on
    /// AVX-512: along rows, docs/algorithms.md §12.3). ∂x of a stride-1
    /// convolution is the convolution of ∂y padded by k − 1 − p with the flipped kernel;
    /// other strides (and p > k − 1) take it from im2col's path.
    func backward(_ x: UnsafePointer<Float>, _ gradOutput: UnsafePointer<Float>, images n: Int, _ g: ConvGeometry,
                  weight w: UnsafePointer<Float>, weightGradient dw: UnsafeMutablePointer<Float>?,
                  inputGradient: UnsafeMutablePointer<Float>?) {
        let k = g.patchSize, cout = outChannels, plane = g.outputPlane
        let grid = PaddedGrid(g)
        packedGradient.resize([(cout + 15) / 16 * 16 * plane])
        let pad = preparePadded(g)
        let taps = offsets(g)
        if let dw {
            // 3 × 3 stride 1 on AVX-512: the kernel that reuses each image value along a row.
            let rowWeightGradient = usesRowKernels(g) && g.kernelHeight == 3 && g.kernelWidth == 3
            taps.withUnsafeBufferPointer { taps in
                for i in 0..<n {
                    grid.copyInterior(x + i * g.inputSize, images: 1, into: pad)
                    samtrain_direct_pack(gradOutput + i * cout * plane, Int32(cout), Int32(plane),
                                         packedGradient.data)
                    if rowWeightGradient {
                        samtrain_rows_conv_weight_gradient_3x3(pad, Int32(g.channels), Int32(grid.paddedHeight),
                                                               Int32(grid.paddedWidth), packedGradient.data, Int32(cout),
                                                               Int32(g.outputHeight), Int32(g.outputWidth), dw)
                    } else {
                        samtrain_direct_conv_weight_gradient(Conv2d.directKernelPath, pad, taps.baseAddress, Int32(k),
                                                             packedGradient.data, Int32(cout), Int32(g.outputHeight),
                                                             Int32(g.outputWidth), Int32(g.stride), Int32(grid.paddedWidth), dw)
                    }
                }
            }
        }
        guard let inputGradient else { return }
        if g.stride == 1, let dataGeometry = g.dataGradientGeometry(outChannels: cout) {
            let taps = g.kernelHeight * g.kernelWidth, cin = g.channels
            flippedWeight.resize([cin * cout * taps])
            samtrain_flip_weights(w, Int32(cout), Int32(cin), Int32(taps), flippedWeight.data)
            convolve(gradOutput, images: n, dataGeometry, weight: flippedWeight.data, outChannels: cin,
                     bias: nil, into: inputGradient)
        } else {
            general.backward(x, gradOutput, images: n, g, weight: w, weightGradient: nil, inputGradient: inputGradient)
        }
    }
}
