/// The lowering of a convolution to a matrix product: `im2col` lays out every k×k patch of
/// one image as a column, so that the convolution is W[Cout][Cin·k·k] × cols[Cin·k·k][OH·OW];
/// `col2im` adds the columns back into an image (the transpose, for the input gradient).
public struct ConvGeometry: Sendable, Equatable {
    public let channels: Int, height: Int, width: Int
    public let kernel: Int, stride: Int, padding: Int

    public var outputHeight: Int { (height + 2 * padding - kernel) / stride + 1 }
    public var outputWidth: Int { (width + 2 * padding - kernel) / stride + 1 }
    /// Rows of the column matrix: Cin·k·k.
    public var patchSize: Int { channels * kernel * kernel }
    /// Columns: OH·OW.
    public var outputPixels: Int { outputHeight * outputWidth }
}

/// cols[(c·k + ky)·k + kx][oy·OW + ox] = x[c][oy·s − p + ky][ox·s − p + kx], 0 outside.
public func im2col(_ g: ConvGeometry, image x: UnsafePointer<Float>, columns cols: UnsafeMutablePointer<Float>) {
    let (h, w, k, s, p) = (g.height, g.width, g.kernel, g.stride, g.padding)
    let (oh, ow) = (g.outputHeight, g.outputWidth)
    var row = cols
    for c in 0..<g.channels {
        let plane = x + c * h * w
        for ky in 0..<k {
            for kx in 0..<k {
                for oy in 0..<oh {
                    let iy = oy * s - p + ky
                    let out = row + oy * ow
                    if iy < 0 || iy >= h {
                        out.update(repeating: 0, count: ow)
                        continue
                    }
                    let line = plane + iy * w
                    if s == 1 {
                        // ix = ox − p + kx: a shifted copy with zeros at the borders.
                        let shift = kx - p
                        let lo = max(0, -shift), hi = min(ow, w - shift)
                        if lo > 0 { out.update(repeating: 0, count: lo) }
                        if hi > lo { (out + lo).update(from: line + lo + shift, count: hi - lo) }
                        if hi < ow { (out + max(hi, lo)).update(repeating: 0, count: ow - max(hi, lo)) }
                    } else {
                        for ox in 0..<ow {
                            let ix = ox * s - p + kx
                            out[ox] = ix >= 0 && ix < w ? line[ix] : 0
                        }
                    }
                }
                row += oh * ow
            }
        }
    }
}

/// The adjoint of `im2col`: x[c][iy][ix] += every column entry that was copied from it.
/// `x` must be zeroed by the caller when it is to hold only this image's gradient.
public func col2im(_ g: ConvGeometry, columns cols: UnsafePointer<Float>, image x: UnsafeMutablePointer<Float>) {
    let (h, w, k, s, p) = (g.height, g.width, g.kernel, g.stride, g.padding)
    let (oh, ow) = (g.outputHeight, g.outputWidth)
    var row = cols
    for c in 0..<g.channels {
        let plane = x + c * h * w
        for ky in 0..<k {
            for kx in 0..<k {
                for oy in 0..<oh {
                    let iy = oy * s - p + ky
                    guard iy >= 0 && iy < h else { continue }
                    let line = plane + iy * w
                    let src = row + oy * ow
                    if s == 1 {
                        let shift = kx - p
                        let lo = max(0, -shift), hi = min(ow, w - shift)
                        if hi > lo { for ox in lo..<hi { line[ox + shift] += src[ox] } }
                    } else {
                        for ox in 0..<ow {
                            let ix = ox * s - p + kx
                            if ix >= 0 && ix < w { line[ix] += src[ox] }
                        }
                    }
                }
                row += oh * ow
            }
        }
    }
}
