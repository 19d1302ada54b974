/// Per-channel input normalization (docs/algorithms.md §7.5): a pixel byte b of channel c becomes
/// (b/255 − mean[c]) / std[c], computed as `Float(b) * scale[c] - shift[c]` with
/// scale = 1/(255·std) and shift = mean/std precomputed in Float (the formula the
/// Fashion-MNIST results were recorded with, so they stay bit-identical).
public struct Normalization: Sendable, Equatable {
    public let mean: [Float]
    public let std: [Float]
    public let scale: [Float]
    public let shift: [Float]

    public init(mean: [Float], std: [Float]) {
        precondition(mean.count == std.count && !mean.isEmpty)
        self.mean = mean
        self.std = std
        var scale: [Float] = [], shift: [Float] = []
        for c in 0..<mean.count {
            scale.append(1 / (255 * std[c]))
            shift.append(mean[c] / std[c])
        }
        self.scale = scale
        self.shift = shift
    }

    public var channels: Int { mean.count }

    /// The normalized value of byte `b` in channel `c`.
    @inline(__always) public func value(_ b: UInt8, channel c: Int) -> Float { Float(b) * scale[c] - shift[c] }
}

/// A labelled image dataset in memory, N×C×H×W with channel-major planes, and labels.
/// Images are kept as the files' raw bytes (CIFAR-10's 50,000 training images take 150 MB
/// so, 600 MB as floats) and normalized per batch in `gather`; small synthetic sets (tests)
/// may hold float features instead.
public struct Dataset: Sendable {
    public enum Storage: Sendable {
        /// Raw pixels, normalized per channel when gathered.
        case bytes([UInt8], Normalization)
        /// Features used as they are.
        case floats([Float])
    }

    public let storage: Storage
    public let labels: [Int32]
    public let channels: Int
    public let height: Int
    public let width: Int
    public let classes: Int
    /// Training labels replaced by label noise (0 for clean data).
    public var corruptedLabels = 0

    public init(storage: Storage, labels: [Int32], channels: Int, height: Int, width: Int, classes: Int) {
        switch storage {
        case .bytes(let b, let n):
            precondition(b.count == labels.count * channels * height * width && n.channels == channels)
        case .floats(let f):
            precondition(f.count == labels.count * channels * height * width)
        }
        self.storage = storage
        self.labels = labels
        self.channels = channels
        self.height = height
        self.width = width
        self.classes = classes
    }

    /// A dataset of float features (already normalized).
    public init(images: [Float], labels: [Int32], channels: Int, height: Int, width: Int, classes: Int) {
        self.init(storage: .floats(images), labels: labels, channels: channels, height: height, width: width, classes: classes)
    }

    /// A dataset of raw pixel bytes and the normalization applied when gathering.
    public init(pixels: [UInt8], normalization: Normalization, labels: [Int32], channels: Int, height: Int, width: Int, classes: Int) {
        self.init(storage: .bytes(pixels, normalization), labels: labels, channels: channels, height: height, width: width, classes: classes)
    }

    public var count: Int { labels.count }
    /// One image's shape, [C, H, W].
    public var imageShape: [Int] { [channels, height, width] }
    /// "1×28×28", for messages.
    public var shapeText: String { imageShape.map(String.init).joined(separator: "×") }
    public var exampleSize: Int { channels * height * width }

    /// The normalization of a byte dataset (nil for float features).
    public var normalization: Normalization? {
        if case .bytes(_, let n) = storage { return n }
        return nil
    }

    /// The raw pixel bytes (nil for float features).
    public var pixels: [UInt8]? {
        if case .bytes(let b, _) = storage { return b }
        return nil
    }

    /// All normalized images as floats. Materializes the whole set for byte storage: for
    /// tests and small sets only (training gathers batch by batch).
    public var images: [Float] {
        switch storage {
        case .floats(let f): return f
        case .bytes(let b, let n):
            let plane = height * width
            var out = [Float](repeating: 0, count: b.count)
            for i in 0..<b.count { out[i] = n.value(b[i], channel: (i / plane) % channels) }
            return out
        }
    }

    /// Copies the examples `indices` into `batch` ([n, C, H, W], resized) and `labels`,
    /// normalized; with `augmentation`, each example is augmented with the draws of
    /// (seed, `epoch`, its index in this dataset), so a batch does not depend on how it is
    /// split across ranks or micro-shards.
    public func gather<C: Collection>(_ indices: C, into batch: Tensor, labels out: inout [Int32],
                                      augmentation: Augmentation? = nil, epoch: Int = 0) where C.Element == Int {
        let n = indices.count, size = exampleSize, plane = height * width
        batch.resize([n, channels, height, width])
        out.removeAll(keepingCapacity: true)
        let augment = augmentation.flatMap { $0.isIdentity ? nil : $0 }
        switch storage {
        case .bytes(let bytes, let norm):
            bytes.withUnsafeBufferPointer { src in
                norm.scale.withUnsafeBufferPointer { scale in
                    norm.shift.withUnsafeBufferPointer { shift in
                        for (row, i) in indices.enumerated() {
                            let from = src.baseAddress! + i * size, to = batch.data + row * size
                            if let augment {
                                let draw = augment.draw(epoch: epoch, index: i, count: count, height: height, width: width)
                                for c in 0..<channels {
                                    let s = scale[c], t = shift[c]
                                    // The pad is raw pixel 0 (padding happens before normalization).
                                    augment.place(from + c * plane, into: to + c * plane, height: height, width: width,
                                                  draw: draw, pad: -t) { Float($0) * s - t }
                                }
                                augment.cutout(to, channels: channels, height: height, width: width, draw: draw)
                            } else {
                                for c in 0..<channels {
                                    let s = scale[c], t = shift[c], p = from + c * plane, q = to + c * plane
                                    for j in 0..<plane { q[j] = Float(p[j]) * s - t }
                                }
                            }
                            out.append(labels[i])
                        }
                    }
                }
            }
        case .floats(let images):
            images.withUnsafeBufferPointer { src in
                for (row, i) in indices.enumerated() {
                    let from = src.baseAddress! + i * size, to = batch.data + row * size
                    if let augment {
                        let draw = augment.draw(epoch: epoch, index: i, count: count, height: height, width: width)
                        for c in 0..<channels {
                            augment.place(from + c * plane, into: to + c * plane, height: height, width: width,
                                          draw: draw, pad: 0) { $0 }
                        }
                        augment.cutout(to, channels: channels, height: height, width: width, draw: draw)
                    } else {
                        to.update(from: from, count: size)
                    }
                    out.append(labels[i])
                }
            }
        }
    }

    /// The first `n` examples.
    public func prefix(_ n: Int) -> Dataset {
        let k = min(n, count), size = k * exampleSize
        let kept: Storage
        switch storage {
        case .bytes(let b, let norm): kept = .bytes(Array(b[0..<size]), norm)
        case .floats(let f): kept = .floats(Array(f[0..<size]))
        }
        return Dataset(storage: kept, labels: Array(labels[0..<k]), channels: channels, height: height, width: width, classes: classes)
    }

    public func replacingLabels(_ newLabels: [Int32], corrupted: Int) -> Dataset {
        var d = Dataset(storage: storage, labels: newLabels, channels: channels, height: height, width: width, classes: classes)
        d.corruptedLabels = corrupted
        return d
    }

    /// The training split as a run uses it: the first `subset` examples (all when nil), with
    /// a seeded fraction `labelNoise` of the labels corrupted (docs/algorithms.md §7.7).
    public func training(subset: Int?, labelNoise: Float, seed: UInt64) -> Dataset {
        var d = subset.map { prefix($0) } ?? self
        if labelNoise > 0 {
            let noisy = LabelNoise.corrupt(d.labels, fraction: labelNoise, classes: d.classes, seed: seed)
            d = d.replacingLabels(noisy.labels, corrupted: noisy.changed)
        }
        return d
    }
}
