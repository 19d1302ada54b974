/// Training-set augmentation (docs/algorithms.md §7.6), applied inside `Dataset.gather`:
/// - `crop-flip`: zero-pad 4 pixels, crop back to H×W at offsets uniform in 0...8, flip
///   horizontally with probability ½ (torchvision's RandomCrop(32, padding=4) and
///   RandomHorizontalFlip before ToTensor/Normalize, so the pad is the raw pixel 0);
/// - cutout N: one N×N square, centre uniform over the image, clipped at the borders, set to
///   0 after normalization (DeVries & Taylor's code; for even N exactly their mask).
/// An example's draws come from SplitMix64(seed, augmentation stream, epoch·count + index)
/// alone: the same images whatever the rank count, micro-shards or passes of a SAM step.
public struct Augmentation: Sendable, Equatable {
    public enum Kind: String, CaseIterable, Sendable, Codable {
        case none
        case cropFlip = "crop-flip"

        public static func named(_ name: String) throws -> Kind {
            guard let k = Kind(rawValue: name) else {
                throw SAMTrainError("--augment \(name): unknown augmentation; choose one of \(allCases.map(\.rawValue).joined(separator: ", "))")
            }
            return k
        }
    }

    public var kind: Kind
    /// Side of the cutout square (0: off).
    public var cutout: Int
    public var seed: UInt64
    /// Zero padding of `crop-flip`, on each side.
    public static let padding = 4

    public init(kind: Kind, cutout: Int = 0, seed: UInt64) {
        self.kind = kind
        self.cutout = cutout
        self.seed = seed
    }

    /// Nothing to do: `gather` copies the images as they are.
    public var isIdentity: Bool { kind == .none && cutout <= 0 }

    /// One example's random choices.
    public struct Draw: Equatable, Sendable {
        /// Crop offsets in the padded image, 0...2·padding (padding: no shift).
        public var dy = Augmentation.padding, dx = Augmentation.padding
        public var flip = false
        /// Centre of the cutout square.
        public var cutoutY = 0, cutoutX = 0

        public init(dy: Int = Augmentation.padding, dx: Int = Augmentation.padding, flip: Bool = false, cutoutY: Int = 0, cutoutX: Int = 0) {
            self.dy = dy
            self.dx = dx
            self.flip = flip
            self.cutoutY = cutoutY
            self.cutoutX = cutoutX
        }
    }

    /// The draws of example `index` (of `count`) in `epoch`.
    public func draw(epoch: Int, index: Int, count: Int, height: Int, width: Int) -> Draw {
        var rng = SplitMix64(seed: seed, stream: RandomStream.augmentation.rawValue,
                             index: UInt64(epoch) &* UInt64(count) &+ UInt64(index))
        var d = Draw()
        if kind == .cropFlip {
            d.dy = rng.nextInt(below: 2 * Self.padding + 1)
            d.dx = rng.nextInt(below: 2 * Self.padding + 1)
            d.flip = rng.next() >> 63 == 1
        }
        if cutout > 0 {
            d.cutoutY = rng.nextInt(below: height)
            d.cutoutX = rng.nextInt(below: width)
        }
        return d
    }

    /// Writes one H×W plane cropped (and flipped) as `draw` says: output (y, x) is source
    /// (y + dy − pad, x' + dx − pad) with x' = W−1−x when flipped, or `pad` outside the
    /// source. `value` converts a source element (a byte to its normalized value).
    @inline(__always)
    func place<T>(_ src: UnsafePointer<T>, into dst: UnsafeMutablePointer<Float>, height: Int, width: Int,
                  draw: Draw, pad: Float, _ value: (T) -> Float) {
        let p = Self.padding
        for y in 0..<height {
            let sy = y + draw.dy - p, row = dst + y * width
            guard sy >= 0, sy < height else {
                row.update(repeating: pad, count: width)
                continue
            }
            let line = src + sy * width
            for x in 0..<width {
                let sx = (draw.flip ? width - 1 - x : x) + draw.dx - p
                row[x] = sx >= 0 && sx < width ? value(line[sx]) : pad
            }
        }
    }

    /// Zeroes the cutout square of one C×H×W example (after normalization).
    @inline(__always)
    func cutout(_ image: UnsafeMutablePointer<Float>, channels: Int, height: Int, width: Int, draw: Draw) {
        guard cutout > 0 else { return }
        let y0 = max(draw.cutoutY - cutout / 2, 0), y1 = min(draw.cutoutY - cutout / 2 + cutout, height)
        let x0 = max(draw.cutoutX - cutout / 2, 0), x1 = min(draw.cutoutX - cutout / 2 + cutout, width)
        guard y0 < y1, x0 < x1 else { return }
        for c in 0..<channels {
            for y in y0..<y1 { (image + (c * height + y) * width + x0).update(repeating: 0, count: x1 - x0) }
        }
    }
}
