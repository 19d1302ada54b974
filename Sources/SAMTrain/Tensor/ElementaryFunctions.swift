// erf and exp for float32 as straight-line arithmetic (no calls, no branches), so that a
// loop applying them to an array vectorizes: GELU and softmax call them for every element
// of the transformers' activations, where a libm call per element cost GELU ~13 ns each
// (docs/algorithms.md §7).

/// erf(x) to within 4·10⁻⁷ absolutely (against glibc's `erff`; tested): the rational
/// approximation of Eigen's and XLA's float erf, odd polynomial ÷ even polynomial, on x
/// clamped to [−4, 4] (beyond, erf is ±1 in float32).
@inline(__always)
func fastErf(_ a: Float) -> Float {
    let x = min(max(a, -4), 4)
    let x2 = x * x
    var p: Float = -2.72614225801306e-10
    p = p * x2 + 2.77068142495902e-08
    p = p * x2 - 2.10102402082508e-06
    p = p * x2 - 5.69250639462346e-05
    p = p * x2 - 7.34990630326855e-04
    p = p * x2 - 2.95459980854025e-03
    p = p * x2 - 1.60960333262415e-02
    var q: Float = -1.45660718464996e-05
    q = q * x2 - 2.13374055278905e-04
    q = q * x2 - 1.68282697438203e-03
    q = q * x2 - 7.37332916720468e-03
    q = q * x2 - 1.42647390514189e-02
    return x * p / q
}

/// eˣ to within a few ulp for x in [−87, 88] (clamped there): Cephes' `expf`, x = n·ln 2 + r
/// with n rounded by adding 1.5·2²³ (whose bit pattern then holds n, giving 2ⁿ's exponent
/// bits without a float-to-integer conversion that could trap), and a degree-7 polynomial in r.
@inline(__always)
func fastExp(_ a: Float) -> Float {
    let x = min(max(a, -87), 88)
    let shifted = x * 1.44269504088896341 + 12_582_912
    let n = shifted - 12_582_912
    let r = x - n * 0.693359375 + n * 2.12194440e-4
    var y: Float = 1.9875691500e-4
    y = y * r + 1.3981999507e-3
    y = y * r + 8.3334519073e-3
    y = y * r + 4.1665795894e-2
    y = y * r + 1.6666665459e-1
    y = y * r + 5.0000001201e-1
    y = y * (r * r) + r + 1
    return y * Float(bitPattern: (shifted.bitPattern &- 0x4B40_0000 &+ 127) << 23)
}
