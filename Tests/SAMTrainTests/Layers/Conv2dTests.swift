import XCTest
@testable import SAMTrain

final class Conv2dLayerTests: XCTestCase {
    /// The direct kernels run on this machine's CPU (else the `.direct` cases above test the
    /// fallback only).
    func testDirectKernelsAreAvailable() throws {
        let g = ConvGeometry(channels: 16, height: 8, width: 8, kernelHeight: 3, kernelWidth: 3, stride: 1, padding: 1)
        guard ConvolutionSettings(lowering: .direct).usesDirectKernels(g) else {
            throw XCTSkip("this CPU has no AVX2 + FMA: the direct kernels fall back to the padded grid")
        }
    }

    /// im2col everywhere; the padded grid wherever the stride is 1, with ∂x by a
    /// convolution (falling back to the fold when p > k − 1) or by the fold; and the direct
    /// kernels (any stride; ∂x from im2col's path where the stride is not 1 or p > k − 1).
    private let lowerings: [(ConvolutionLowering, ConvolutionSettings.InputGradientMethod)] =
        [(.general, .automatic), (.paddedGrid, .convolution), (.paddedGrid, .fold), (.direct, .automatic)]

    /// How a test case cuts the batch into tiles.
    enum Tiling: CustomStringConvertible {
        case whole              // one tile of all the images
        case images(Int)        // tiles of this many whole images (the last may be smaller)
        case bands(Int)         // bands of at most this many output rows of one image

        var description: String {
            switch self {
            case .whole: "whole"
            case .images(let b): "images(\(b))"
            case .bands(let r): "bands(\(r))"
            }
        }
    }

    /// The settings of this lowering, with the tile size set so that `tiling` happens for this
    /// geometry: a tile's columns are counted in output rows of OW (im2col) or PW = W + 2p
    /// (padded grid) columns.
    private func settings(_ tiling: Tiling, lowering configuration: (ConvolutionLowering, ConvolutionSettings.InputGradientMethod),
                          k: Int, stride: Int, padding: Int, h: Int, w: Int) -> ConvolutionSettings {
        let lowering = configuration.0
        let oh = (h + 2 * padding - k) / stride + 1, ow = (w + 2 * padding - k) / stride + 1
        let rowWidth = (lowering == .paddedGrid && stride == 1) ? w + 2 * padding : ow
        let columns: Int
        switch tiling {
        case .whole: columns = 1 << 20
        case .images(let b): columns = b * oh * rowWidth
        case .bands(let r): columns = r * rowWidth
        }
        // Tiles of exactly `columns` columns: bands of rows when a plane is larger, else groups
        // of whole images.
        return ConvolutionSettings(lowering: lowering, inputGradientMethod: configuration.1,
                                   targetTileBytes: 0, minimumTileColumns: columns)
    }

    private func makeConv(_ cin: Int, _ cout: Int, k: Int, stride: Int, padding: Int, bias: Bool,
                          seed: UInt64 = 3, settings: ConvolutionSettings = .init()) -> (Conv2d, ParameterStore) {
        let store = ParameterStore()
        let conv = Conv2d(store: store, name: "conv", inChannels: cin, outChannels: cout,
                          kernelSize: k, stride: stride, padding: padding, bias: bias, settings: settings)
        store.seal()
        var rng = SplitMix64(seed: seed)
        conv.initialize(using: &rng)
        if bias {  // PyTorch's bias init is small; make it visible in the comparison
            for i in 0..<cout { store.value(conv.biasIndex!)[i] = rng.uniform(-1, 1) }
        }
        return (conv, store)
    }

    /// Direct 7-loop convolution, in Double.
    private func naiveConv(_ x: Tensor, _ conv: Conv2d, _ store: ParameterStore) -> [Float] {
        let n = x.shape[0], cin = x.shape[1], h = x.shape[2], w = x.shape[3]
        let k = conv.kernelSize, s = conv.stride, p = conv.padding, cout = conv.outChannels
        let oh = (h + 2 * p - k) / s + 1, ow = (w + 2 * p - k) / s + 1
        let wt = store.value(conv.weightIndex)
        var y = [Float](repeating: 0, count: n * cout * oh * ow)
        for b in 0..<n { for co in 0..<cout { for i in 0..<oh { for j in 0..<ow {
            var acc = Double(conv.biasIndex.map { store.value($0)[co] } ?? 0)
            for ci in 0..<cin { for ky in 0..<k { for kx in 0..<k {
                let iy = i * s - p + ky, ix = j * s - p + kx
                guard iy >= 0, iy < h, ix >= 0, ix < w else { continue }
                acc += Double(wt[((co * cin + ci) * k + ky) * k + kx]) * Double(x[((b * cin + ci) * h + iy) * w + ix])
            } } }
            y[((b * cout + co) * oh + i) * ow + j] = Float(acc)
        } } } }
        return y
    }

    /// The exact gradients of the direct convolution, in Double: (∂x, ∂weight, ∂bias).
    private func naiveBackward(_ x: Tensor, _ dy: Tensor, _ conv: Conv2d,
                               _ store: ParameterStore) -> ([Float], [Float], [Float]) {
        let n = x.shape[0], cin = x.shape[1], h = x.shape[2], w = x.shape[3]
        let k = conv.kernelSize, s = conv.stride, p = conv.padding, cout = conv.outChannels
        let oh = (h + 2 * p - k) / s + 1, ow = (w + 2 * p - k) / s + 1
        let wt = store.value(conv.weightIndex)
        var dx = [Double](repeating: 0, count: x.count)
        var dw = [Double](repeating: 0, count: cout * cin * k * k)
        var db = [Double](repeating: 0, count: cout)
        for b in 0..<n { for co in 0..<cout { for i in 0..<oh { for j in 0..<ow {
            let g = Double(dy[((b * cout + co) * oh + i) * ow + j])
            db[co] += g
            for ci in 0..<cin { for ky in 0..<k { for kx in 0..<k {
                let iy = i * s - p + ky, ix = j * s - p + kx
                guard iy >= 0, iy < h, ix >= 0, ix < w else { continue }
                let wi = ((co * cin + ci) * k + ky) * k + kx, xi = ((b * cin + ci) * h + iy) * w + ix
                dw[wi] += g * Double(x[xi])
                dx[xi] += g * Double(wt[wi])
            } } }
        } } } }
        return (dx.map(Float.init), dw.map(Float.init), db.map(Float.init))
    }

    private func assertClose(_ a: [Float], _ b: [Float], _ message: String, tolerance: Float = 1e-5,
                             file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(a.count, b.count, message, file: file, line: line)
        let maxError = zip(a, b).map { abs($0 - $1) / max(1, abs($1)) }.max() ?? 0
        XCTAssertLessThan(maxError, tolerance, message, file: file, line: line)
    }

    typealias Case = (cin: Int, cout: Int, k: Int, s: Int, p: Int, bias: Bool, h: Int, w: Int, n: Int,
                      tiling: Tiling)

    /// Stride 1 cases exercise the padded grid (under `.paddedGrid`) as well as im2col.
    private let cases: [Case] = [
        (1, 4, 3, 1, 1, false, 8, 8, 2, .whole),
        (3, 5, 3, 1, 1, true, 7, 5, 3, .whole),
        (3, 5, 3, 2, 0, true, 9, 6, 3, .whole),
        (2, 3, 3, 2, 1, true, 8, 7, 5, .images(2)),   // several tiles of 2 images + remainder
        (3, 5, 3, 1, 1, true, 7, 5, 3, .bands(2)),    // bands of 2 rows, the last of 1
        (2, 3, 3, 2, 1, false, 9, 8, 2, .bands(1)),   // bands of 1 row, stride 2
        (4, 2, 1, 1, 0, true, 5, 4, 2, .whole),
        (2, 3, 5, 1, 2, false, 6, 6, 2, .whole),
        // padded grid: 3×3 pad 1
        (3, 5, 3, 1, 1, false, 6, 5, 2, .bands(1)),   // bands of 1 row
        (2, 3, 3, 1, 1, true, 5, 6, 7, .images(3)),   // tiles of 3, 3, 1 images
        (2, 4, 3, 1, 1, false, 9, 7, 2, .bands(4)),   // bands of 3, 3, 3 rows (balanced)
        (2, 3, 3, 1, 1, true, 4, 4, 5, .images(2)),   // 4×4 maps: the junk is a third of a row
        // 5×5 pad 2
        (2, 3, 5, 1, 2, true, 7, 6, 3, .bands(3)),    // bands of 3, 3, 1 rows
        (2, 3, 5, 1, 2, false, 6, 6, 5, .images(2)),
        (2, 2, 5, 1, 2, true, 5, 5, 2, .bands(1)),
        // 3×3 pad 0
        (3, 4, 3, 1, 0, true, 7, 6, 3, .bands(2)),    // 5 output rows: 2, 2, 1
        (3, 4, 3, 1, 0, false, 6, 5, 5, .images(2)),
        (2, 3, 3, 1, 0, true, 5, 5, 2, .whole),
        // 1×1 pad 0 (no junk columns)
        (4, 3, 1, 1, 0, false, 5, 4, 3, .bands(1)),
        (4, 3, 1, 1, 0, true, 5, 4, 5, .images(2)),
        // 3×3 pad 2 (output larger than input), 5×5 pad 1
        (3, 2, 3, 1, 2, true, 5, 5, 2, .bands(2)),
        (2, 3, 5, 1, 1, false, 7, 6, 3, .images(2)),
        // direct kernels: more than one block of 16 output channels, a partial last block,
        // patches that are not a multiple of the kernels' 6 taps, grids of 6k ± 1 columns
        (5, 33, 3, 1, 1, true, 6, 7, 3, .whole),
        (20, 16, 3, 1, 1, false, 5, 4, 2, .whole),
        (17, 18, 3, 1, 0, true, 7, 9, 2, .whole),
        (16, 32, 5, 1, 2, false, 4, 5, 2, .whole),
        // direct kernels at stride 2 (∂x through im2col's path): 3×3 and the 1×1 shortcut,
        // outputs of 6k ± 1 positions, and 13 × 13 = 169 positions, past one chunk of 120
        (16, 32, 3, 2, 1, true, 9, 8, 2, .whole),
        (5, 20, 1, 2, 0, false, 7, 7, 2, .whole),
        (3, 17, 3, 2, 0, true, 11, 9, 2, .whole),
        (2, 18, 3, 1, 1, true, 13, 13, 2, .whole),
        // p > k − 1: ∂x by folding the column-matrix gradient rather than by a convolution
        (2, 3, 1, 1, 1, true, 4, 5, 3, .bands(2)),
        (2, 2, 3, 1, 3, false, 4, 4, 3, .images(2)),
        (2, 2, 3, 1, 3, true, 4, 3, 2, .bands(1)),
    ]

    func testForwardMatchesDirectConvolution() {
        for lowering in lowerings {
            for c in cases {
                let s = settings(c.tiling, lowering: lowering, k: c.k, stride: c.s, padding: c.p, h: c.h, w: c.w)
                let (conv, store) = makeConv(c.cin, c.cout, k: c.k, stride: c.s, padding: c.p, bias: c.bias, settings: s)
                var rng = SplitMix64(seed: 11)
                let x = GradientCheck.randomTensor([c.n, c.cin, c.h, c.w], &rng)
                let y = conv(x)
                let expected = naiveConv(x, conv, store)
                XCTAssertEqual(y.shape, [c.n, c.cout] + conv.outputShape(for: [c.cin, c.h, c.w]).dropFirst())
                XCTAssertEqual(y.count, expected.count)
                let maxError = zip(y.array, expected).map { abs($0 - $1) }.max()!
                XCTAssertLessThan(maxError, 1e-5, "\(lowering) \(c)")
            }
        }
    }

    /// ∂x, ∂W and ∂b against the direct convolution's exact gradients, for every case and
    /// lowering, twice in a row (the second forward/backward reuses the layer's scratch).
    func testBackwardMatchesDirectConvolution() {
        for lowering in lowerings {
            for c in cases {
                let s = settings(c.tiling, lowering: lowering, k: c.k, stride: c.s, padding: c.p, h: c.h, w: c.w)
                let (conv, store) = makeConv(c.cin, c.cout, k: c.k, stride: c.s, padding: c.p, bias: c.bias, settings: s)
                for round in 0..<2 {
                    var rng = SplitMix64(seed: 17 + UInt64(round))
                    let x = GradientCheck.randomTensor([c.n, c.cin, c.h, c.w], &rng)
                    let y = conv(x)
                    let dy = GradientCheck.randomTensor(y.shape, &rng)
                    store.gradients.zero()
                    let dx = conv.backward(dy, inputGradient: true)!
                    let (edx, edw, edb) = naiveBackward(x, dy, conv, store)
                    assertClose(dx.array, edx, "∂x \(lowering) \(c) round \(round)")
                    let dw = store.gradient(conv.weightIndex)
                    assertClose(Array(UnsafeBufferPointer(start: dw, count: edw.count)), edw,
                                "∂W \(lowering) \(c) round \(round)")
                    if let bi = conv.biasIndex {
                        assertClose(Array(UnsafeBufferPointer(start: store.gradient(bi), count: c.cout)), edb,
                                    "∂b \(lowering) \(c) round \(round)")
                    }
                }
            }
        }
    }

    func testGradients() {
        let cases: [Case] = [
            (2, 3, 3, 1, 1, true, 6, 5, 3, .whole),
            (2, 3, 3, 2, 0, true, 7, 6, 2, .whole),
            (3, 2, 3, 2, 1, false, 6, 7, 3, .whole),
            (2, 3, 3, 1, 1, true, 5, 4, 5, .images(2)),   // tiles of 2 images
            (2, 3, 3, 1, 1, true, 6, 5, 3, .bands(2)),    // bands of 2 rows
            (3, 2, 3, 2, 1, false, 6, 7, 3, .bands(1)),   // bands of 1 row, stride 2
            (2, 3, 3, 1, 1, false, 5, 6, 2, .bands(1)),   // bands of 1 row, stride 1
            (2, 2, 5, 1, 2, true, 7, 6, 3, .bands(3)),    // 5×5: bands of 3, 3, 1 rows
            (3, 2, 3, 1, 0, true, 6, 5, 5, .images(2)),   // 3×3 pad 0
            (3, 2, 1, 1, 0, true, 5, 4, 3, .bands(2)),    // 1×1
            (2, 2, 3, 1, 3, true, 4, 4, 3, .bands(2)),    // pad 3 > k − 1: ∂x by folding
        ]
        for lowering in lowerings {
            for c in cases {
                let s = settings(c.tiling, lowering: lowering, k: c.k, stride: c.s, padding: c.p, h: c.h, w: c.w)
                let (conv, store) = makeConv(c.cin, c.cout, k: c.k, stride: c.s, padding: c.p, bias: c.bias, settings: s)
                var rng = SplitMix64(seed: 5)
                let x = GradientCheck.randomTensor([c.n, c.cin, c.h, c.w], &rng)
                GradientCheck().check(conv, store: store, input: x)
            }
        }
    }

    func testBackwardAccumulatesAndSkipsInputGradient() {
        for lowering in lowerings {
            for tiling in [Tiling.whole, .bands(2)] {
                let s = settings(tiling, lowering: lowering, k: 3, stride: 1, padding: 1, h: 5, w: 5)
                let (conv, store) = makeConv(2, 3, k: 3, stride: 1, padding: 1, bias: true, settings: s)
                var rng = SplitMix64(seed: 9)
                let x = GradientCheck.randomTensor([2, 2, 5, 5], &rng)
                let g = GradientCheck.randomTensor([2, 3, 5, 5], &rng)
                _ = conv(x)
                store.gradients.zero()
                XCTAssertNil(conv.backward(g, inputGradient: false))
                let once = store.gradients.array
                _ = conv.backward(g, inputGradient: true)
                for (a, b) in zip(store.gradients.array, once) {
                    XCTAssertEqual(a, 2 * b, accuracy: 1e-4 * max(1, abs(a)), "\(lowering) \(tiling)")
                }
            }
        }
    }

    /// The two lowerings agree on a CIFAR-like layer with the default tile sizes (bands of
    /// a 32×32 image, and tiles of several 8×8 images).
    func testLoweringsAgreeAtDefaultTileSizes() {
        for (cin, h) in [(16, 32), (32, 16), (64, 8)] {
            var results: [[Float]] = []
            for (lowering, method) in lowerings {
                let s = ConvolutionSettings(lowering: lowering, inputGradientMethod: method)
                let (conv, store) = makeConv(cin, cin, k: 3, stride: 1, padding: 1, bias: true, settings: s)
                var rng = SplitMix64(seed: 23)
                let x = GradientCheck.randomTensor([5, cin, h, h], &rng)
                let y = conv(x)
                let dy = GradientCheck.randomTensor(y.shape, &rng)
                store.gradients.zero()
                let dx = conv.backward(dy, inputGradient: true)!
                results.append(y.array + dx.array + store.gradients.array)
            }
            for r in results.dropFirst() {
                assertClose(r, results[0], "\(cin) channels \(h)×\(h)", tolerance: 1e-4)
            }
        }
    }

    /// The automatic choice: the padded grid for stride 1 when patch ≥ out channels.
    func testAutomaticLoweringChoice() {
        func geometry(_ cin: Int, _ hw: Int, stride: Int) -> ConvGeometry {
            ConvGeometry(channels: cin, height: hw, width: hw, kernelHeight: 3, kernelWidth: 3,
                         stride: stride, padding: 1)
        }
        let automatic = ConvolutionSettings()
        XCTAssertTrue(automatic.usesPaddedGrid(geometry(16, 32, stride: 1), outChannels: 16))
        XCTAssertTrue(automatic.usesPaddedGrid(geometry(64, 8, stride: 1), outChannels: 64))
        XCTAssertTrue(automatic.usesPaddedGrid(geometry(3, 32, stride: 1), outChannels: 16))
        XCTAssertFalse(automatic.usesPaddedGrid(geometry(1, 28, stride: 1), outChannels: 32))
        XCTAssertFalse(automatic.usesPaddedGrid(geometry(16, 32, stride: 2), outChannels: 32))
        let grid = ConvolutionSettings(lowering: .paddedGrid)
        XCTAssertTrue(grid.usesPaddedGrid(geometry(1, 28, stride: 1), outChannels: 32))
        XCTAssertFalse(grid.usesPaddedGrid(geometry(16, 32, stride: 2), outChannels: 32))
    }

    /// Each setting runs the layer on its lowering: the direct kernels (where the CPU has
    /// them), the padded grid for stride 1 only, im2col everywhere else.
    func testLayerRunsOnTheChosenLowering() {
        let direct = Conv2d.directKernelsAvailable
        let expected: [(ConvolutionLowering, stride: Int, LoweredConvolution.Type)] = [
            (.general, 1, Im2colConvolution.self), (.general, 2, Im2colConvolution.self),
            (.paddedGrid, 1, PaddedGridConvolution.self), (.paddedGrid, 2, Im2colConvolution.self),
            (.direct, 1, direct ? DirectConvolution.self : PaddedGridConvolution.self),
            (.direct, 2, direct ? DirectConvolution.self : Im2colConvolution.self),
            (.automatic, 1, direct ? DirectConvolution.self : PaddedGridConvolution.self),
            (.automatic, 2, direct ? DirectConvolution.self : Im2colConvolution.self),
        ]
        for (lowering, stride, kind) in expected {
            let (conv, _) = makeConv(8, 8, k: 3, stride: stride, padding: 1, bias: true,
                                     settings: ConvolutionSettings(lowering: lowering))
            var rng = SplitMix64(seed: 1)
            _ = conv(GradientCheck.randomTensor([2, 8, 6, 6], &rng))
            XCTAssertTrue(type(of: conv.activeLowering!) == kind, "\(lowering) stride \(stride)")
        }
    }

    /// Every convolution of every model gets the settings the model is built with.
    func testModelsPassTheSettingsToEveryConvolution() {
        let settings = ConvolutionSettings(lowering: .paddedGrid, inputGradientMethod: .fold,
                                           targetTileBytes: 1000, minimumTileColumns: 7)
        // mlp has no convolution; a ViT's patch embedding is one GEMM, not a Conv2d.
        for architecture in Architecture.allCases where architecture != .mlp && VisionTransformer.preset(architecture.rawValue) == nil {
            let model = architecture.build(inputShape: [3, 8, 8], classes: 3, convolution: settings)
            let convolutions = model.layers.flattened.compactMap { $0 as? Conv2d }
            XCTAssertFalse(convolutions.isEmpty, "\(architecture)")
            for conv in convolutions { XCTAssertEqual(conv.settings, settings, "\(architecture)") }
        }
    }

    func testInitializationBoundsAndOrder() {
        let (conv, store) = makeConv(4, 6, k: 3, stride: 1, padding: 1, bias: false, seed: 21)
        let bound = 1 / Float(36).squareRoot()
        var rng = SplitMix64(seed: 21)
        let w = store.value(conv.weightIndex)
        for i in 0..<(6 * 36) {
            XCTAssertEqual(w[i], rng.uniform(-bound, bound))
            XCTAssertLessThanOrEqual(abs(w[i]), bound)
        }
        let s2 = ParameterStore()
        let c2 = Conv2d(store: s2, name: "c", inChannels: 2, outChannels: 3, kernelSize: 3, padding: 1)
        s2.seal()
        var r2 = SplitMix64(seed: 4)
        c2.initialize(using: &r2)
        let b2 = 1 / Float(18).squareRoot()
        XCTAssertEqual(s2.parameters.map(\.name), ["c.weight", "c.bias"])
        XCTAssertEqual(s2.parameters[0].shape, [3, 2, 3, 3])
        XCTAssertTrue(s2.values.array.allSatisfy { abs($0) <= b2 })
        var r3 = SplitMix64(seed: 4)
        for _ in 0..<54 { _ = r3.uniform(-b2, b2) }
        XCTAssertEqual(s2.value(c2.biasIndex!)[0], r3.uniform(-b2, b2))
    }
}
