/// The shape of a 2-D convolution over one image; shared by im2col, col2im and Conv2d.
public struct ConvGeometry: Sendable, Hashable {
    public var channels: Int
    public var height: Int
    public var width: Int
    public var kernelHeight: Int
    public var kernelWidth: Int
    public var stride: Int
    public var padding: Int

    public init(channels: Int, height: Int, width: Int, kernelHeight: Int, kernelWidth: Int,
                stride: Int, padding: Int) {
        self.channels = channels
        self.height = height
        self.width = width
        self.kernelHeight = kernelHeight
        self.kernelWidth = kernelWidth
        self.stride = stride
        self.padding = padding
    }

    public var outputHeight: Int { (height + 2 * padding - kernelHeight) / stride + 1 }
    public var outputWidth: Int { (width + 2 * padding - kernelWidth) / stride + 1 }
    /// Rows of the column matrix: one per (channel, kernel row, kernel column).
    public var patchSize: Int { channels * kernelHeight * kernelWidth }
    public var inputSize: Int { channels * height * width }
    public var outputPlane: Int { outputHeight * outputWidth }

    /// Output columns `ow` whose input column `ow·stride − padding + kx` lies inside the image.
    @inline(__always)
    func validColumns(kx: Int) -> Range<Int> {
        let ow = outputWidth
        // smallest ow with ow·s ≥ p − kx, and largest with ow·s ≤ W − 1 + p − kx
        let lo = max(0, (padding - kx + stride - 1) / stride)
        let hiInclusive = (width - 1 + padding - kx)
        let hi = hiInclusive < 0 ? 0 : min(ow, hiInclusive / stride + 1)
        return lo..<max(lo, hi)
    }
}

/// Unfolds a chunk of `images` NCHW images into the column matrix of shape
/// [patchSize][images · outputPlane], so that one GEMM `W[out][patch] × col` convolves the
/// whole chunk: the GEMM's N dimension is large and its operands contiguous.
///
/// col[(c·kh + ky)·kw + kx][b·OH·OW + oh·OW + ow] = x[b][c][oh·s − p + ky][ow·s − p + kx], 0 outside.
///
/// `rows` restricts the output rows unfolded (a band of one large image, so that the column
/// matrix stays in cache); the matrix then has `images · rows.count · OW` columns.
public func im2col(_ x: UnsafePointer<Float>, images: Int, geometry g: ConvGeometry,
                   rows: Range<Int>? = nil, into col: UnsafeMutablePointer<Float>) {
    let ow = g.outputWidth
    let band = rows ?? 0..<g.outputHeight
    let plane = band.count * ow
    let rowLength = images * plane
    let s = g.stride, p = g.padding, h = g.height, w = g.width
    var row = 0
    for c in 0..<g.channels {
        for ky in 0..<g.kernelHeight {
            for kx in 0..<g.kernelWidth {
                let cols = g.validColumns(kx: kx)
                let firstInput = cols.lowerBound * s - p + kx
                for b in 0..<images {
                    let src = x + (b * g.channels + c) * h * w
                    var dst = col + row * rowLength + b * plane
                    for y in band {
                        let iy = y * s - p + ky
                        if iy < 0 || iy >= h || cols.isEmpty {
                            fillZero(dst, ow)
                        } else {
                            let srcRow = src + iy * w + firstInput
                            fillZero(dst, cols.lowerBound)
                            if s == 1 {
                                copyShort(dst + cols.lowerBound, srcRow, cols.count)
                            } else {
                                for i in 0..<cols.count { dst[cols.lowerBound + i] = srcRow[i * s] }
                            }
                            fillZero(dst + cols.upperBound, ow - cols.upperBound)
                        }
                        dst += ow
                    }
                }
                row += 1
            }
        }
    }
}

/// The adjoint of `im2col`: folds a column-matrix gradient back into image gradients,
/// summing the overlapping patches. Overwrites `dx` (`images · inputSize` floats); with
/// `rows` (a band of output rows, as `im2col`'s) it adds into `dx` instead, since the
/// patches of neighbouring bands overlap.
public func col2im(_ col: UnsafePointer<Float>, images: Int, geometry g: ConvGeometry,
                   rows: Range<Int>? = nil, into dx: UnsafeMutablePointer<Float>) {
    if rows == nil { dx.update(repeating: 0, count: images * g.inputSize) }
    let ow = g.outputWidth
    let band = rows ?? 0..<g.outputHeight
    let plane = band.count * ow
    let rowLength = images * plane
    let s = g.stride, p = g.padding, h = g.height, w = g.width
    var row = 0
    for c in 0..<g.channels {
        for ky in 0..<g.kernelHeight {
            for kx in 0..<g.kernelWidth {
                let cols = g.validColumns(kx: kx)
                let firstInput = cols.lowerBound * s - p + kx
                if !cols.isEmpty {
                    for b in 0..<images {
                        let dst = dx + (b * g.channels + c) * h * w
                        var src = UnsafePointer(col + row * rowLength + b * plane) + cols.lowerBound
                        for y in band {
                            let iy = y * s - p + ky
                            if iy >= 0 && iy < h {
                                let dstRow = dst + iy * w + firstInput
                                if s == 1 {
                                    for i in 0..<cols.count { dstRow[i] += src[i] }
                                } else {
                                    for i in 0..<cols.count { dstRow[i * s] += src[i] }
                                }
                            }
                            src += ow
                        }
                    }
                }
                row += 1
            }
        }
    }
}

// Rows of 14 or 28 floats are too short for memcpy / memset calls (which a plain loop
// would become): copy them eight lanes at a time inline.

@inline(__always)
func copyShort(_ dst: UnsafeMutablePointer<Float>, _ src: UnsafePointer<Float>, _ count: Int) {
    let d = UnsafeMutableRawPointer(dst), s = UnsafeRawPointer(src)
    var i = 0
    while i + 8 <= count {
        d.storeBytes(of: s.loadUnaligned(fromByteOffset: 4 * i, as: SIMD8<Float>.self),
                     toByteOffset: 4 * i, as: SIMD8<Float>.self)
        i += 8
    }
    if i + 4 <= count {
        d.storeBytes(of: s.loadUnaligned(fromByteOffset: 4 * i, as: SIMD4<Float>.self),
                     toByteOffset: 4 * i, as: SIMD4<Float>.self)
        i += 4
    }
    while i < count { dst[i] = src[i]; i += 1 }
}

@inline(__always)
func fillZero(_ dst: UnsafeMutablePointer<Float>, _ count: Int) {
    let d = UnsafeMutableRawPointer(dst)
    var i = 0
    while i + 8 <= count {
        d.storeBytes(of: SIMD8<Float>(), toByteOffset: 4 * i, as: SIMD8<Float>.self)
        i += 8
    }
    while i < count { dst[i] = 0; i += 1 }
}
