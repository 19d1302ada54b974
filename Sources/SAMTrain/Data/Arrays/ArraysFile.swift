import Foundation

/// A user's own dataset (`--dataset arrays --data FILE`, docs/algorithms.md §7.8): one NumPy
/// `.npz` or one safetensors file holding `train_images`, `train_labels`, `test_images` and
/// `test_labels`, with optional `mean`, `std` and class names.
///
/// Every size and label is hostile until checked. `problems` lists everything train would
/// refuse (what `samtrain data inspect` prints); `datasets()` refuses the file when there is
/// any, and otherwise turns the channels-last uint8 arrays into samtrain's channel-major
/// byte datasets.
public struct ArraysFile {
    public let path: String
    /// Every array of the file, in file order.
    public let arrays: [NumericArray]
    /// The safetensors `__metadata__` (empty for an `.npz`).
    public let metadata: [String: String]

    /// The most classes a file may define: the head of the widest model stays in memory.
    public static let maximumClasses = 100_000

    public static let required = ["train_images", "train_labels", "test_images", "test_labels"]
    public static let optional = ["mean", "std", "classes"]

    public init(path: String, arrays: [NumericArray], metadata: [String: String]) {
        self.path = path
        self.arrays = arrays
        self.metadata = metadata
    }

    /// Reads `path`: a zip archive (what `np.savez` writes) by its signature, else safetensors.
    public static func read(path: String) throws -> ArraysFile {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw SAMTrainError("--data \(path): no such file (--dataset arrays reads one .npz or .safetensors file; launch/make-dataset writes one)")
        }
        guard !isDirectory.boolValue else {
            throw SAMTrainError("--data \(path): is a directory; --dataset arrays reads one .npz or .safetensors file (launch/make-dataset makes one from an image folder)")
        }
        guard let handle = FileHandle(forReadingAtPath: path) else { throw SAMTrainError("--data \(path): cannot open the file") }
        let signature = [UInt8](handle.readData(ofLength: 4))
        try? handle.close()
        if signature == [0x50, 0x4B, 0x03, 0x04] || signature == [0x50, 0x4B, 0x05, 0x06] {
            return ArraysFile(path: path, arrays: try NPZ.read(path: path), metadata: [:])
        }
        guard let data = FileManager.default.contents(atPath: path) else { throw SAMTrainError("--data \(path): cannot read the file") }
        return try decodeSafeTensors([UInt8](data), path: path)
    }

    /// A safetensors file's bytes as an arrays file.
    public static func decodeSafeTensors(_ bytes: [UInt8], path: String) throws -> ArraysFile {
        let (arrays, metadata) = try SafeTensors.decodeArrays(bytes, source: path)
        return ArraysFile(path: path, arrays: arrays, metadata: metadata)
    }

    public func array(_ name: String) -> NumericArray? { arrays.first { $0.name == name } }

    /// One split's images and labels, as far as they could be read.
    public struct Split: Sendable {
        public var name: String
        public var count: Int
        /// H, W, C of one image (nil when the images array is unusable).
        public var imageShape: (height: Int, width: Int, channels: Int)?
        public var labels: [Int64]?
    }

    /// What the file holds and everything wrong with it.
    public struct Check {
        public var train: Split?
        public var test: Split?
        public var classNames: [String]?
        public var classes: Int?
        public var mean: [Float]?
        public var std: [Float]?
        /// Arrays samtrain does not read.
        public var ignored: [String]
        /// One line per problem, each naming the array; empty when train accepts the file.
        public var problems: [String]
    }

    /// Checks every array train reads and collects every problem (not just the first).
    public func check() -> Check {
        var problems: [String] = []
        func problem(_ array: String, _ why: String) { problems.append("array \(array): \(why)") }

        func images(_ name: String) -> (count: Int, height: Int, width: Int, channels: Int)? {
            guard let a = array(name) else { return nil }
            guard a.type == .uint8 else {
                let hint = a.type.isFloat ? " (float images are refused: samtrain reads pixels 0–255; convert with (x * 255).round().astype(np.uint8), or launch/make-dataset --scale-floats)" : ""
                problem(name, "is \(a.type), not uint8\(hint)")
                return nil
            }
            switch a.shape.count {
            case 3: return (a.shape[0], a.shape[1], a.shape[2], 1)
            case 4: return (a.shape[0], a.shape[1], a.shape[2], a.shape[3])
            default:
                problem(name, "has shape \(a.shapeText) (\(a.shape.count)-D); images are N×H×W×C (channels last) or N×H×W")
                return nil
            }
        }
        func labels(_ name: String, count: Int?) -> [Int64]? {
            guard let a = array(name) else { return nil }
            guard a.type.isInteger else {
                problem(name, "is \(a.type); labels are integers (any width)")
                return nil
            }
            guard a.shape.count == 1 || (a.shape.count == 2 && a.shape[1] == 1) else {
                problem(name, "has shape \(a.shapeText); labels are one integer per example (N or N×1)")
                return nil
            }
            if let count, a.shape[0] != count {
                let split = name.hasPrefix("train") ? "train" : "test"
                problem(name, "holds \(a.shape[0]) labels for \(count) images in \(split)_images")
                return nil
            }
            let values = a.integers()!
            if let bad = values.firstIndex(where: { $0 < 0 }) {
                problem(name, "label \(values[bad]) of example \(bad) is negative; labels are classes 0, 1, …")
                return nil
            }
            return values
        }

        for name in Self.required where array(name) == nil {
            let split = name.hasPrefix("train") ? "training" : "test"
            problem(name, "missing (the \(split) split needs it; the file holds \(arrays.isEmpty ? "no arrays" : arrays.map(\.name).joined(separator: ", ")))")
        }
        var splits: [String: Split] = [:]
        for split in ["train", "test"] {
            let shape = images("\(split)_images")
            let values = labels("\(split)_labels", count: shape?.count)
            guard array("\(split)_images") != nil else { continue }
            if let shape, shape.count == 0 { problem("\(split)_images", "holds no images") }
            if let shape, shape.height < 1 || shape.width < 1 || shape.channels < 1 {
                problem("\(split)_images", "has shape \(array("\(split)_images")!.shapeText): every image dimension must be at least 1")
            }
            splits[split] = Split(name: split, count: shape?.count ?? array("\(split)_images")!.shape.first ?? 0,
                                  imageShape: shape.map { ($0.height, $0.width, $0.channels) }, labels: values)
        }
        if let a = splits["train"]?.imageShape, let b = splits["test"]?.imageShape, a != b {
            problem("test_images", "images are \(a.height)×\(a.width)×\(a.channels) in train_images but \(b.height)×\(b.width)×\(b.channels) here; both splits need one image size")
        }

        // Classes: the names' count, else the largest label + 1.
        var names: [String]?
        if let a = array("classes") {
            if let strings = a.strings(), a.shape.count == 1 { names = strings } else {
                problem("classes", "is \(a.type) of shape \(a.shapeText); class names are a 1-D string array")
            }
        } else if let text = metadata["classes"] {
            names = text.split(separator: ",", omittingEmptySubsequences: false).map { $0.trimmingCharacters(in: .whitespaces) }
        }
        let largest = [splits["train"]?.labels, splits["test"]?.labels].compactMap { $0?.max() }.max()
        var classes: Int?
        if let names {
            classes = names.count
            if names.count > Self.maximumClasses { problem("classes", "names \(names.count) classes; samtrain trains at most \(Self.maximumClasses)") }
            for split in ["train", "test"] {
                if let values = splits[split]?.labels, let bad = values.firstIndex(where: { $0 >= names.count }) {
                    problem("\(split)_labels", "label \(values[bad]) of example \(bad) is outside 0–\(names.count - 1) (the file names \(names.count) classes)")
                }
            }
        } else if let largest {
            if largest >= Int64(Self.maximumClasses) {
                let split = splits["train"]?.labels?.contains(largest) == true ? "train" : "test"
                let at = splits[split]!.labels!.firstIndex(of: largest)!
                problem("\(split)_labels", "label \(largest) of example \(at) would make \(largest) + 1 classes; samtrain trains at most \(Self.maximumClasses) (labels are classes 0, 1, …)")
            } else {
                classes = Int(largest) + 1
            }
        }
        if let classes, classes < 2 { problems.append("the labels define \(classes) class; a classifier needs at least 2") }

        // Normalization: both or neither, one positive finite value per channel.
        let channels = splits["train"]?.imageShape?.channels
        func perChannel(_ name: String) -> [Float]? {
            guard let a = array(name) else { return nil }
            guard let values = a.floats(), a.shape.count <= 1 else {
                problem(name, "is \(a.type) of shape \(a.shapeText); it must be floats, one per channel")
                return nil
            }
            if let channels, values.count != channels {
                problem(name, "holds \(values.count) values for \(channels)-channel images; one per channel")
                return nil
            }
            guard values.allSatisfy({ $0.isFinite }) else { problem(name, "holds a value that is not finite"); return nil }
            return values
        }
        let mean = perChannel("mean"), std = perChannel("std")
        if (array("mean") == nil) != (array("std") == nil) {
            problem(array("mean") == nil ? "std" : "mean", "given without \(array("mean") == nil ? "mean" : "std"); give both or neither (neither: computed from the training images)")
        }
        if let std, let bad = std.first(where: { $0 <= 0 }) { problem("std", "holds \(bad); a standard deviation must be positive") }

        let known = Set(Self.required + Self.optional)
        return Check(train: splits["train"], test: splits["test"], classNames: names, classes: classes, mean: mean, std: std,
                     ignored: arrays.map(\.name).filter { !known.contains($0) }, problems: problems)
    }

    /// Where a dataset's normalization came from.
    public enum NormalizationSource: String, Sendable {
        case file = "from the file"
        case computed = "computed from the training images"
    }

    /// The two splits, channel-major bytes normalized by the file's mean and std (else by the
    /// training images' own), and the class names. Refuses the file on any problem.
    public func datasets() throws -> (train: Dataset, test: Dataset, classNames: [String]?, normalization: NormalizationSource) {
        let c = check()
        if let first = c.problems.first {
            let more = c.problems.count > 1 ? " (and \(c.problems.count - 1) more problem(s); `samtrain data inspect \(path)` lists them)" : ""
            throw SAMTrainError("--data \(path): \(first)\(more)")
        }
        let shape = c.train!.imageShape!, classes = c.classes!
        let trainPixels = Self.channelMajor(array("train_images")!, channels: shape.channels)
        let testPixels = Self.channelMajor(array("test_images")!, channels: shape.channels)
        let source: NormalizationSource = c.mean == nil ? .computed : .file
        let normalization = c.mean.map { Normalization(mean: $0, std: c.std!) }
            ?? Self.normalization(of: trainPixels, channels: shape.channels, plane: shape.height * shape.width)
        func dataset(_ pixels: [UInt8], _ labels: [Int64]) -> Dataset {
            Dataset(pixels: pixels, normalization: normalization, labels: labels.map { Int32($0) },
                    channels: shape.channels, height: shape.height, width: shape.width, classes: classes)
        }
        return (dataset(trainPixels, c.train!.labels!), dataset(testPixels, c.test!.labels!), c.classNames, source)
    }

    /// N×H×W×C bytes as N×C×H×W (one channel: as they are).
    static func channelMajor(_ a: NumericArray, channels: Int) -> [UInt8] {
        guard channels > 1 else { return a.bytes }
        let plane = a.shape[1] * a.shape[2], image = plane * channels
        var out = [UInt8](repeating: 0, count: a.bytes.count)
        a.bytes.withUnsafeBufferPointer { src in
            out.withUnsafeMutableBufferPointer { dst in
                for n in 0..<a.shape[0] {
                    let from = src.baseAddress! + n * image, to = dst.baseAddress! + n * image
                    for p in 0..<plane {
                        for c in 0..<channels { to[c * plane + p] = from[p * channels + c] }
                    }
                }
            }
        }
        return out
    }

    /// Per-channel mean and (population) standard deviation of channel-major pixels
    /// (images of `plane` pixels per channel), in [0, 1] units; a channel without spread gets
    /// std 1, so normalization stays finite.
    static func normalization(of pixels: [UInt8], channels: Int, plane: Int) -> Normalization {
        // A 256-bin histogram per channel keeps the sums exact whatever the image count.
        var histograms = [[UInt64]](repeating: [UInt64](repeating: 0, count: 256), count: channels)
        let image = channels * plane
        pixels.withUnsafeBufferPointer { p in
            for c in 0..<channels {
                histograms[c].withUnsafeMutableBufferPointer { h in
                    var start = c * plane
                    while start + plane <= p.count {
                        for j in start..<(start + plane) { h[Int(p[j])] += 1 }
                        start += image
                    }
                }
            }
        }
        var mean: [Float] = [], std: [Float] = []
        for h in histograms {
            let n = Double(h.reduce(0, +))
            var sum = 0.0, squares = 0.0
            for (v, k) in h.enumerated() {
                let x = Double(v) / 255
                sum += Double(k) * x
                squares += Double(k) * x * x
            }
            let m = n > 0 ? sum / n : 0
            let variance = n > 0 ? max(0, squares / n - m * m) : 0
            mean.append(Float(m))
            std.append(variance > 1e-12 ? Float(variance.squareRoot()) : 1)
        }
        return Normalization(mean: mean, std: std)
    }
}
