/// A labelled image dataset in memory: normalized float32 pixels, N×C×H×W, and labels.
public struct Dataset: Sendable {
    public let images: [Float]
    public let labels: [Int32]
    public let channels: Int
    public let height: Int
    public let width: Int
    public let classes: Int
    /// Training labels replaced by label noise (0 for clean data).
    public var corruptedLabels = 0

    public init(images: [Float], labels: [Int32], channels: Int, height: Int, width: Int, classes: Int) {
        precondition(images.count == labels.count * channels * height * width)
        self.images = images
        self.labels = labels
        self.channels = channels
        self.height = height
        self.width = width
        self.classes = classes
    }

    public var count: Int { labels.count }
    public var exampleSize: Int { channels * height * width }

    /// Copies the examples `indices` into `batch` ([n, C, H, W], resized) and `labels`.
    public func gather<C: Collection>(_ indices: C, into batch: Tensor, labels out: inout [Int32]) where C.Element == Int {
        let n = indices.count, size = exampleSize
        batch.resize([n, channels, height, width])
        out.removeAll(keepingCapacity: true)
        images.withUnsafeBufferPointer { src in
            for (row, i) in indices.enumerated() {
                (batch.data + row * size).update(from: src.baseAddress! + i * size, count: size)
                out.append(labels[i])
            }
        }
    }

    /// The first `n` examples.
    public func prefix(_ n: Int) -> Dataset {
        let k = min(n, count)
        return Dataset(images: Array(images[0..<(k * exampleSize)]), labels: Array(labels[0..<k]),
                       channels: channels, height: height, width: width, classes: classes)
    }

    public func replacingLabels(_ newLabels: [Int32], corrupted: Int) -> Dataset {
        var d = Dataset(images: images, labels: newLabels, channels: channels, height: height, width: width, classes: classes)
        d.corruptedLabels = corrupted
        return d
    }
}
