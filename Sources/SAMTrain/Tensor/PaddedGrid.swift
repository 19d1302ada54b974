/// The "padded-width grid" lowering of a stride-1 convolution.
///
/// Each image channel is copied once into a zero-padded plane of PH × PW = (H + 2p) × (W + 2p)
/// floats. The output is then computed on a grid of PW columns per output row instead of OW
/// (the last PW − OW = kw − 1 columns of each grid row are junk): output (y, x) of the grid is
/// grid column (y − y0)·PW + x of a band starting at output row y0, and for every kernel tap
/// (c, ky, kx) the column-matrix row over the band is ONE contiguous run of band·PW floats of
/// the padded plane, starting at padded[c][(y0 + ky)·PW + kx]. So the grid im2col is one
/// memcpy per (image, channel, ky, kx) instead of one short copy per output row.
///
/// Blocks (image, channel) of a padded buffer follow each other, PH·PW floats apart; a run of
/// the last band reads up to kw − 1 floats past its block (only into junk columns), so a
/// padded buffer has `slack` zero floats after its last block.
///
/// Backward: the grid of ∂Y has zero junk columns, so junk columns of the column matrix do
/// not contribute to ∂W, and the junk columns of ∂col = Wᵀ·∂Y are exactly zero: adding each
/// run back into a padded ∂X puts every valid entry at its input position (x + kx ≤ PW − 1,
/// within its padded row) and adds only zeros elsewhere (into padding, or into the next
/// row's or block's first kx floats, or into the slack).
struct PaddedGrid {
    let geometry: ConvGeometry

    /// The grid lowering (`im2col`, `col2im`, `compact`, `expand`) needs stride 1; padding
    /// (`pad`, `unpad`) serves any stride, as the direct kernels use it.
    init(_ g: ConvGeometry) {
        geometry = g
    }

    var paddedWidth: Int { geometry.width + 2 * geometry.padding }
    var paddedHeight: Int { geometry.height + 2 * geometry.padding }
    /// Floats of one padded (image, channel) block.
    var paddedPlane: Int { paddedWidth * paddedHeight }
    /// Floats a padded buffer has after its last block.
    var slack: Int { max(0, geometry.kernelWidth - 1) }
    /// Floats of a padded buffer of `images` images.
    func paddedCount(images: Int) -> Int { images * geometry.channels * paddedPlane + slack }
    /// Grid columns of one whole image.
    var imageColumns: Int { geometry.outputHeight * paddedWidth }

    /// Copies `images` NCHW images into `padded` (`paddedCount(images:)` floats), writing
    /// the zero border and slack too.
    func pad(_ x: UnsafePointer<Float>, images: Int, into padded: UnsafeMutablePointer<Float>) {
        let g = geometry, p = g.padding, w = g.width, h = g.height, pw = paddedWidth
        let blocks = images &* g.channels
        for block in 0..<blocks {
            let src = x + block &* (h &* w)
            let dst = padded + block &* paddedPlane
            // top border and the left padding of the first row
            fillZero(dst, p &* pw &+ p)
            var d = dst + (p &* pw &+ p)
            var s = src
            for _ in 0..<h {
                copyShort(d, s, w)
                // right padding of this row + left padding of the next
                fillZero(d + w, 2 &* p)
                d += pw
                s += w
            }
            // the rest of the bottom border
            let written = (p &+ h) &* pw &+ p
            fillZero(dst + written, paddedPlane &- written)
        }
        fillZero(padded + blocks &* paddedPlane, slack)
    }

    /// Copies `images` NCHW images into the interior of `padded`, whose border and slack are
    /// zero already (a buffer that `pad` or a zero fill prepared for this geometry and that
    /// only `copyInterior` has written since): one short copy per row, no fills.
    func copyInterior(_ x: UnsafePointer<Float>, images: Int, into padded: UnsafeMutablePointer<Float>) {
        let g = geometry, p = g.padding, w = g.width, h = g.height, pw = paddedWidth
        for block in 0..<(images &* g.channels) {
            var s = x + block &* (h &* w)
            var d = padded + (block &* paddedPlane &+ p &* pw &+ p)
            for _ in 0..<h {
                copyShort(d, s, w)
                d += pw
                s += w
            }
        }
    }

    /// The grid column matrix [patchSize][images · band · PW] of output rows `rows` of
    /// `images` padded images (band of one image, or all rows of several images).
    func im2col(_ padded: UnsafePointer<Float>, images: Int, rows: Range<Int>,
                into col: UnsafeMutablePointer<Float>) {
        precondition(geometry.stride == 1, "the padded grid is for stride-1 convolutions")
        let g = geometry, pw = paddedWidth, run = rows.count &* pw
        let rowLength = images &* run
        var dst = col
        for c in 0..<g.channels {
            for ky in 0..<g.kernelHeight {
                for kx in 0..<g.kernelWidth {
                    let offset = (rows.lowerBound &+ ky) &* pw &+ kx
                    for b in 0..<images {
                        let src = padded + ((b &* g.channels &+ c) &* paddedPlane &+ offset)
                        (dst + b &* run).update(from: src, count: run)
                    }
                    dst += rowLength
                }
            }
        }
    }

    /// The adjoint of `im2col`: adds each run of the grid column-matrix gradient into the
    /// padded gradient `paddedGradient` (which the caller zeroes before the first tile).
    func col2im(_ col: UnsafePointer<Float>, images: Int, rows: Range<Int>,
                into paddedGradient: UnsafeMutablePointer<Float>) {
        let g = geometry, pw = paddedWidth, run = rows.count &* pw
        let rowLength = images &* run
        var src = col
        for c in 0..<g.channels {
            for ky in 0..<g.kernelHeight {
                for kx in 0..<g.kernelWidth {
                    let offset = (rows.lowerBound &+ ky) &* pw &+ kx
                    for b in 0..<images {
                        let dst = paddedGradient + ((b &* g.channels &+ c) &* paddedPlane &+ offset)
                        addRun(dst, src + b &* run, run)
                    }
                    src += rowLength
                }
            }
        }
    }

    /// Copies the interior of `images` padded images into NCHW `x`.
    func unpad(_ padded: UnsafePointer<Float>, images: Int, into x: UnsafeMutablePointer<Float>) {
        let g = geometry, p = g.padding, w = g.width, h = g.height, pw = paddedWidth
        for block in 0..<(images &* g.channels) {
            var s = padded + (block &* paddedPlane &+ p &* pw &+ p)
            var d = x + block &* (h &* w)
            for _ in 0..<h {
                copyShort(d, s, w)
                d += w
                s += pw
            }
        }
    }

    /// Grid matrix [out][images · band · PW] → NCHW output rows `rows` of `images` images
    /// (`planeStride` floats per output channel plane), adding `bias[co]`.
    func compact(_ grid: UnsafePointer<Float>, channels: Int, images: Int, rows: Range<Int>,
                 bias: UnsafePointer<Float>?, into y: UnsafeMutablePointer<Float>) {
        let g = geometry, pw = paddedWidth, ow = g.outputWidth, plane = g.outputPlane
        let band = rows.count, rowLength = images &* band &* pw
        for co in 0..<channels {
            let beta = bias?[co] ?? 0
            for b in 0..<images {
                var s = grid + (co &* rowLength &+ b &* band &* pw)
                var d = y + ((b &* channels &+ co) &* plane &+ rows.lowerBound &* ow)
                if bias == nil {
                    for _ in 0..<band { copyShort(d, s, ow); d += ow; s += pw }
                } else {
                    for _ in 0..<band { copyAddShort(d, s, ow, beta); d += ow; s += pw }
                }
            }
        }
    }

    /// NCHW ∂Y rows `rows` of `images` images → grid matrix [out][images · band · PW] with
    /// zero junk columns.
    func expand(_ y: UnsafePointer<Float>, channels: Int, images: Int, rows: Range<Int>,
                into grid: UnsafeMutablePointer<Float>) {
        let g = geometry, pw = paddedWidth, ow = g.outputWidth, plane = g.outputPlane
        let band = rows.count, rowLength = images &* band &* pw, junk = pw &- ow
        for co in 0..<channels {
            for b in 0..<images {
                var d = grid + (co &* rowLength &+ b &* band &* pw)
                var s = y + ((b &* channels &+ co) &* plane &+ rows.lowerBound &* ow)
                for _ in 0..<band {
                    copyShort(d, s, ow)
                    fillZero(d + ow, junk)
                    d += pw
                    s += ow
                }
            }
        }
    }
}

@inline(__always)
func copyAddShort(_ dst: UnsafeMutablePointer<Float>, _ src: UnsafePointer<Float>, _ count: Int,
                  _ beta: Float) {
    let d = UnsafeMutableRawPointer(dst), s = UnsafeRawPointer(src)
    let b8 = SIMD8<Float>(repeating: beta)
    var i = 0
    while i &+ 8 <= count {
        d.storeBytes(of: s.loadUnaligned(fromByteOffset: 4 &* i, as: SIMD8<Float>.self) + b8,
                     toByteOffset: 4 &* i, as: SIMD8<Float>.self)
        i &+= 8
    }
    while i < count { dst[i] = src[i] + beta; i &+= 1 }
}

/// dst[i] += src[i] for i < count, eight lanes at a time.
@inline(__always)
func addRun(_ dst: UnsafeMutablePointer<Float>, _ src: UnsafePointer<Float>, _ count: Int) {
    let d = UnsafeMutableRawPointer(dst), s = UnsafeRawPointer(src)
    var i = 0
    while i &+ 16 <= count {
        let a0 = d.loadUnaligned(fromByteOffset: 4 &* i, as: SIMD8<Float>.self)
        let b0 = s.loadUnaligned(fromByteOffset: 4 &* i, as: SIMD8<Float>.self)
        let a1 = d.loadUnaligned(fromByteOffset: 4 &* i &+ 32, as: SIMD8<Float>.self)
        let b1 = s.loadUnaligned(fromByteOffset: 4 &* i &+ 32, as: SIMD8<Float>.self)
        d.storeBytes(of: a0 + b0, toByteOffset: 4 &* i, as: SIMD8<Float>.self)
        d.storeBytes(of: a1 + b1, toByteOffset: 4 &* i &+ 32, as: SIMD8<Float>.self)
        i &+= 16
    }
    while i &+ 8 <= count {
        let a = d.loadUnaligned(fromByteOffset: 4 &* i, as: SIMD8<Float>.self)
        let b = s.loadUnaligned(fromByteOffset: 4 &* i, as: SIMD8<Float>.self)
        d.storeBytes(of: a + b, toByteOffset: 4 &* i, as: SIMD8<Float>.self)
        i &+= 8
    }
    while i < count { dst[i] += src[i]; i &+= 1 }
}
