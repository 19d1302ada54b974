import XCTest
@testable import SAMTrain

/// Crop-flip and cutout (docs/algorithms.md §7.6): what they do to pixels, and that an example's
/// augmentation depends on (seed, epoch, index) alone.
final class AugmentationTests: XCTestCase {
    /// N random byte images of C×H×W with CIFAR-10's normalization.
    func bytes(_ n: Int, _ c: Int, _ h: Int, _ w: Int, seed: UInt64 = 1) -> Dataset {
        var rng = SplitMix64(seed: seed)
        let pixels = (0..<(n * c * h * w)).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
        let labels = (0..<n).map { Int32($0 % 10) }
        return Dataset(pixels: pixels, normalization: c == 3 ? CIFAR.cifar10Normalization : MNISTFamily.Kind.mnist.normalization,
                       labels: labels, channels: c, height: h, width: w, classes: 10)
    }

    func gathered(_ d: Dataset, _ indices: [Int], _ a: Augmentation?, epoch: Int = 0) -> (images: [Float], labels: [Int32]) {
        let batch = Tensor(shape: [0])
        var labels: [Int32] = []
        d.gather(indices, into: batch, labels: &labels, augmentation: a, epoch: epoch)
        return (batch.array, labels)
    }

    /// A 4×4 ramp v(y, x) = 4y + x: known offsets and flips give known pixels (P: the pad).
    func testCropAndFlipOnAHandMadeRamp() {
        let ramp = (0..<16).map(Float.init)
        let a = Augmentation(kind: .cropFlip, seed: 0)
        let P: Float = -1
        func placed(_ d: Augmentation.Draw) -> [Float] {
            var out = [Float](repeating: 99, count: 16)
            ramp.withUnsafeBufferPointer { src in
                out.withUnsafeMutableBufferPointer { dst in
                    a.place(src.baseAddress!, into: dst.baseAddress!, height: 4, width: 4, draw: d, pad: P) { $0 }
                }
            }
            return out
        }
        XCTAssertEqual(placed(.init(dy: 4, dx: 4)), ramp, "offset (4, 4) is no shift")
        // Crop at (5, 3) of the padded image: out(y, x) = in(y + 1, x − 1).
        XCTAssertEqual(placed(.init(dy: 5, dx: 3)), [P, 4, 5, 6, P, 8, 9, 10, P, 12, 13, 14, P, P, P, P])
        // Flip alone: out(y, x) = in(y, 3 − x).
        XCTAssertEqual(placed(.init(flip: true)), [3, 2, 1, 0, 7, 6, 5, 4, 11, 10, 9, 8, 15, 14, 13, 12])
        // Crop at (2, 5), then flip (torchvision's order): out(y, x) = in(y − 2, 3 − x + 1).
        XCTAssertEqual(placed(.init(dy: 2, dx: 5, flip: true)), [P, P, P, P, P, P, P, P, P, 3, 2, 1, P, 7, 6, 5])
        XCTAssertEqual(placed(.init(dy: 0, dx: 8)), [Float](repeating: P, count: 16), "a 4×4 image shifted by 4 is all pad")
    }

    /// Through `gather`: a 3×4×4 ramp per example, the draws applied per channel, the pad
    /// the normalized raw 0 (−mean/std), and the draws' distribution as specified.
    func testGatherCropsAndFlipsWithTheRawZeroAsPad() throws {
        let n = 400, c = 3, h = 4, w = 4
        var pixels: [UInt8] = []
        for e in 0..<n { for ch in 0..<c { for y in 0..<h { for x in 0..<w { pixels.append(UInt8((e + ch * 16 + y * 4 + x) % 256)) } } } }
        let norm = CIFAR.cifar10Normalization
        let d = Dataset(pixels: pixels, normalization: norm, labels: [Int32](repeating: 0, count: n), channels: c, height: h, width: w, classes: 10)
        let a = Augmentation(kind: .cropFlip, seed: 11)
        let out = gathered(d, Array(0..<n), a, epoch: 2).images
        var flips = 0
        for e in 0..<n {
            let draw = a.draw(epoch: 2, index: e, count: n, height: h, width: w)
            if draw.flip { flips += 1 }
            for ch in 0..<c { for y in 0..<h { for x in 0..<w {
                let sy = y + draw.dy - 4, sx = (draw.flip ? w - 1 - x : x) + draw.dx - 4
                let b: UInt8 = sy >= 0 && sy < h && sx >= 0 && sx < w ? pixels[((e * c + ch) * h + sy) * w + sx] : 0
                XCTAssertEqual(out[((e * c + ch) * h + y) * w + x], Float(b) * norm.scale[ch] - norm.shift[ch], "example \(e)")
            } } }
        }
        // Every one of the 81 offsets in 8,100 draws (one missing by chance: p ≈ 81·e⁻¹⁰⁰).
        let offsets = Set((0..<8100).map { e in a.draw(epoch: 2, index: e, count: 8100, height: h, width: w) }.map { $0.dy * 9 + $0.dx })
        XCTAssertEqual(offsets, Set(0..<81), "offsets uniform over 0...8 × 0...8")
        XCTAssertTrue((160...240).contains(flips), "\(flips) flips of \(n)")
        XCTAssertEqual(Float(0) * norm.scale[0] - norm.shift[0], -norm.mean[0] / norm.std[0], accuracy: 1e-6)
    }

    /// The same global batch as R = 1, 2, 4 rank slices (EpochPlan): identical images.
    func testBatchesAreIdenticalWhateverTheRankCount() {
        let d = bytes(96, 3, 32, 32)
        let a = Augmentation(kind: .cropFlip, cutout: 16, seed: 5)
        for epoch in [0, 3] {
            let whole = EpochPlan(datasetCount: d.count, globalBatch: 24, rank: 0, worldSize: 1, seed: 5, epoch: epoch)
            for ranks in [1, 2, 4] {
                let plans = (0..<ranks).map { EpochPlan(datasetCount: d.count, globalBatch: 24, rank: $0, worldSize: ranks, seed: 5, epoch: epoch) }
                for k in 0..<whole.steps {
                    let reference = gathered(d, Array(whole.indices(forStep: k)), a, epoch: epoch)
                    var images: [Float] = [], labels: [Int32] = []
                    for p in plans {
                        let part = gathered(d, Array(p.indices(forStep: k)), a, epoch: epoch)
                        images += part.images
                        labels += part.labels
                    }
                    XCTAssertEqual(images.map(\.bitPattern), reference.images.map(\.bitPattern), "R = \(ranks), epoch \(epoch), step \(k)")
                    XCTAssertEqual(labels, reference.labels)
                }
            }
        }
    }

    func testAnExamplesAugmentationDependsOnlyOnSeedEpochAndIndex() {
        let d = bytes(40, 3, 32, 32)
        let a = Augmentation(kind: .cropFlip, cutout: 8, seed: 2)
        let alone = gathered(d, [7], a, epoch: 1).images
        let inBatch = gathered(d, [3, 7, 9], a, epoch: 1).images
        XCTAssertEqual(alone, Array(inBatch[3072..<6144]), "the batch around it does not matter")
        XCTAssertEqual(alone, gathered(d, [7], a, epoch: 1).images)
        XCTAssertNotEqual(gathered(d, Array(0..<20), a, epoch: 1).images, gathered(d, Array(0..<20), a, epoch: 2).images, "another epoch, other draws")
        var b = a
        b.seed = 3
        XCTAssertNotEqual(gathered(d, Array(0..<20), a, epoch: 1).images, gathered(d, Array(0..<20), b, epoch: 1).images, "another seed, other draws")
        XCTAssertNotEqual(gathered(d, [7], a, epoch: 1).images, gathered(d, [7], nil).images)
        // No augmentation is the plain gather.
        XCTAssertTrue(Augmentation(kind: .none, seed: 2).isIdentity)
        XCTAssertEqual(gathered(d, [1, 2], Augmentation(kind: .none, seed: 2)).images, gathered(d, [1, 2], nil).images)
    }

    /// Cutout zeros one N×N square (after normalization), centred on the draw, clipped.
    func testCutoutZerosASquare() {
        func masked(_ n: Int, _ cy: Int, _ cx: Int, h: Int = 6, w: Int = 6) -> [Float] {
            var image = [Float](repeating: 1, count: 2 * h * w)
            image.withUnsafeMutableBufferPointer {
                Augmentation(kind: .none, cutout: n, seed: 0).cutout($0.baseAddress!, channels: 2, height: h, width: w,
                                                                  draw: .init(cutoutY: cy, cutoutX: cx))
            }
            return image
        }
        func zeros(_ image: [Float], h: Int = 6, w: Int = 6) -> [Set<[Int]>] {
            (0..<2).map { c in Set((0..<(h * w)).filter { image[c * h * w + $0] == 0 }.map { [$0 / w, $0 % w] }) }
        }
        func square(_ ys: Range<Int>, _ xs: Range<Int>) -> Set<[Int]> { Set(ys.flatMap { y in xs.map { [y, $0] } }) }
        XCTAssertEqual(zeros(masked(2, 3, 3)), [square(2..<4, 2..<4), square(2..<4, 2..<4)], "2×2 at rows and columns 2–3, every channel")
        XCTAssertEqual(zeros(masked(4, 0, 5)).first, square(0..<2, 3..<6), "clipped at the corner")
        XCTAssertEqual(zeros(masked(5, 2, 2)).first, square(0..<5, 0..<5), "odd N: exactly N×N")
        XCTAssertEqual(zeros(masked(16, 2, 2)).first, square(0..<6, 0..<6))

        // Through gather: bright images keep all pixels but one square of zeros per channel.
        let bright = Dataset(pixels: [UInt8](repeating: 250, count: 50 * 3 * 32 * 32), normalization: CIFAR.cifar10Normalization,
                             labels: [Int32](repeating: 0, count: 50), channels: 3, height: 32, width: 32, classes: 10)
        let a = Augmentation(kind: .none, cutout: 16, seed: 4)
        let out = gathered(bright, Array(0..<50), a).images
        for e in 0..<50 {
            let draw = a.draw(epoch: 0, index: e, count: 50, height: 32, width: 32)
            let expected = square(max(draw.cutoutY - 8, 0)..<min(draw.cutoutY + 8, 32), max(draw.cutoutX - 8, 0)..<min(draw.cutoutX + 8, 32))
            XCTAssertEqual(zeros(Array(out[(e * 3072)..<(e * 3072 + 2048)]), h: 32, w: 32), [expected, expected])
            XCTAssertEqual(zeros(Array(out[(e * 3072 + 1024)..<((e + 1) * 3072)]), h: 32, w: 32), [expected, expected], "blue too")
        }
    }

    /// Evaluation gathers the test set without augmentation; the run records both settings.
    func testTheTestSetIsNotAugmentedAndTheSettingsAreRecorded() throws {
        let d = bytes(60, 3, 8, 8)
        let model = Architecture.mlp.build(inputShape: [3, 8, 8], classes: 10)
        model.initialize(seed: 1)
        let world = Communicator.world()
        let (loss, _) = Evaluation.run(model: model, dataset: d, world: world)
        func lossOf(_ a: Augmentation?) -> Double {
            let batch = Tensor(shape: [0]), gradient = Tensor(shape: [0])
            var labels: [Int32] = []
            d.gather(0..<60, into: batch, labels: &labels, augmentation: a, epoch: 0)
            return SoftmaxCrossEntropy(labelSmoothing: 0).evaluate(logits: model.forward(batch, mode: .eval), labels: labels, gradient: gradient).loss
        }
        XCTAssertEqual(loss, lossOf(nil), accuracy: 1e-12)
        XCTAssertNotEqual(loss, lossOf(Augmentation(kind: .cropFlip, cutout: 4, seed: 0)))

        var c = try TrainingConfiguration.defaults
        XCTAssertNil(c.augmentation, "Fashion-MNIST: none by default")
        XCTAssertEqual(c.resultDefiningSettings["augment"], "none")
        c.data.dataset = .cifar10
        c.data.cutout = 16
        XCTAssertEqual(c.augmentation, Augmentation(kind: .cropFlip, cutout: 16, seed: 0))
        XCTAssertEqual(c.resultDefiningSettings["augment"], "crop-flip")
        XCTAssertEqual(c.resultDefiningSettings["cutout"], "16")
        c.data.augment = Augmentation.Kind.none
        XCTAssertEqual(c.resultDefiningSettings["augment"], "none")
        XCTAssertThrowsError(try Augmentation.Kind.named("flip")) { XCTAssertTrue("\($0)".contains("--augment flip")) }
    }
}
