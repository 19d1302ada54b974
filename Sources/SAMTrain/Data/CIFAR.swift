import Foundation

/// How many records each CIFAR file holds. The CLI always uses `standard`, the files of
/// the binary versions; tests pass small layouts to the Swift API.
public struct CIFARLayout: Sendable, Equatable {
    /// Records in each of CIFAR-10's data_batch_1.bin … data_batch_5.bin and test_batch.bin.
    public var cifar10RecordsPerFile: Int
    /// Records in CIFAR-100's train.bin and test.bin.
    public var cifar100TrainRecords: Int
    public var cifar100TestRecords: Int

    public init(cifar10RecordsPerFile: Int, cifar100TrainRecords: Int, cifar100TestRecords: Int) {
        self.cifar10RecordsPerFile = cifar10RecordsPerFile
        self.cifar100TrainRecords = cifar100TrainRecords
        self.cifar100TestRecords = cifar100TestRecords
    }

    public static let standard = CIFARLayout(cifar10RecordsPerFile: 10_000, cifar100TrainRecords: 50_000, cifar100TestRecords: 10_000)
}

/// CIFAR-10 and CIFAR-100 from their binary versions (docs/algorithms.md §7.5). A record is the label
/// byte(s) then 3,072 pixel bytes: the 1,024 red, 1,024 green and 1,024 blue values of a
/// 32×32 image, each plane row-major, which is already the N×C×H×W layout samtrain keeps.
/// CIFAR-100 records hold the coarse then the fine label; samtrain trains on the fine one.
public enum CIFAR {
    public static let channels = 3, height = 32, width = 32
    public static let imageBytes = channels * height * width
    public static let cifar10Normalization = Normalization(mean: [0.4914, 0.4822, 0.4465], std: [0.2470, 0.2435, 0.2616])
    public static let cifar100Normalization = Normalization(mean: [0.5071, 0.4865, 0.4409], std: [0.2673, 0.2564, 0.2762])

    /// The files of one dataset and how to read their records.
    public struct Format: Sendable {
        public var kind: DatasetKind
        public var title: String
        /// The folder the tarball unpacks to.
        public var folder: String
        public var tarball: String
        public var labelBytes: Int
        public var classes: Int
        public var train: [(name: String, records: Int)]
        public var test: [(name: String, records: Int)]
        public var normalization: Normalization
        public var recordBytes: Int { labelBytes + CIFAR.imageBytes }
    }

    public static func format(_ kind: DatasetKind, layout: CIFARLayout = .standard) -> Format {
        switch kind {
        case .cifar100:
            return Format(kind: .cifar100, title: "CIFAR-100", folder: "cifar-100-binary", tarball: "cifar-100-binary.tar.gz", labelBytes: 2, classes: 100,
                          train: [("train.bin", layout.cifar100TrainRecords)], test: [("test.bin", layout.cifar100TestRecords)],
                          normalization: cifar100Normalization)
        default:
            return Format(kind: .cifar10, title: "CIFAR-10", folder: "cifar-10-batches-bin", tarball: "cifar-10-binary.tar.gz", labelBytes: 1, classes: 10,
                          train: (1...5).map { ("data_batch_\($0).bin", layout.cifar10RecordsPerFile) },
                          test: [("test_batch.bin", layout.cifar10RecordsPerFile)],
                          normalization: cifar10Normalization)
        }
    }

    /// Where the data comes from, for messages about missing files.
    static func source(_ f: Format) -> String {
        "\(f.title) is read from its \"binary version\" (\(f.tarball) on https://www.cs.toronto.edu/~kriz/cifar.html), unpacked: --data names the \(f.folder) folder or the folder holding it"
    }

    /// Loads the training and test splits of `kind` (cifar10 or cifar100) from `directory`,
    /// after checking every file's presence and exact size, then every label.
    public static func load(directory: String, kind: DatasetKind, layout: CIFARLayout = .standard) throws -> (train: Dataset, test: Dataset) {
        let f = format(kind, layout: layout)
        let dir = try checkFiles(directory: directory, kind: kind, layout: layout)
        return (try split(dir, f.train, f), try split(dir, f.test, f))
    }

    /// Checks that every file is present with its exact size, without reading it (what a
    /// sweep checks before it starts). Returns the directory that holds the files.
    @discardableResult
    public static func checkFiles(directory: String, kind: DatasetKind, layout: CIFARLayout = .standard) throws -> String {
        let f = format(kind, layout: layout)
        let dir = try resolve(directory, f)
        for (name, records) in f.train + f.test {
            let path = dir + "/" + name
            let expected = try product(records, f.recordBytes, path)
            // stat follows symbolic links (FileManager's attributes would give the link's size).
            var info = stat()
            guard stat(path, &info) == 0 else { throw SAMTrainError("\(path): missing file; \(source(f))") }
            try checkSize(Int(info.st_size), expected: expected, records: records, f, path)
        }
        return dir
    }

    /// `directory` itself, or its `cifar-10-batches-bin` / `cifar-100-binary` folder.
    static func resolve(_ directory: String, _ f: Format) throws -> String {
        let fm = FileManager.default
        var isDirectory: ObjCBool = false
        let first = f.train[0].name
        if fm.fileExists(atPath: directory + "/" + first) { return directory }
        let nested = directory + "/" + f.folder
        if fm.fileExists(atPath: nested, isDirectory: &isDirectory), isDirectory.boolValue { return nested }
        if (directory as NSString).standardizingPath == DatasetKind.defaultDirectory {
            throw SAMTrainError("--dataset \(f.kind.rawValue) needs --data DIR: --data was left at its default, \(DatasetKind.defaultDirectory), which holds Fashion-MNIST; \(source(f))")
        }
        guard fm.fileExists(atPath: directory, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw SAMTrainError("--data \(directory): no such directory; \(source(f))")
        }
        return directory
    }

    static func product(_ a: Int, _ b: Int, _ path: String) throws -> Int {
        let (p, overflow) = a.multipliedReportingOverflow(by: b)
        guard !overflow, a >= 0 else { throw SAMTrainError("\(path): \(a) records of \(b) bytes do not fit in memory") }
        return p
    }

    static func checkSize(_ size: Int, expected: Int, records: Int, _ f: Format, _ path: String) throws {
        guard size != expected else { return }
        let what = size < expected ? "truncated" : "\(size - expected) extra bytes"
        throw SAMTrainError("\(path): \(size) bytes, expected exactly \(records) records × \(f.recordBytes) bytes = \(expected) bytes (\(what)); \(f.title) files come from the binary version, unpacked")
    }

    /// Checks one file's bytes (its exact size, then every label) and copies its `records`
    /// records into `pixels` and `labels` from example `start` on (what `split` does for each
    /// file, and what the fuzz target calls).
    public static func decode(_ bytes: [UInt8], records: Int, _ f: Format, path: String,
                              pixels: inout [UInt8], labels: inout [Int32], at start: Int) throws {
        try checkSize(bytes.count, expected: try product(records, f.recordBytes, path), records: records, f, path)
        let (end, overflow) = start.addingReportingOverflow(records)
        guard start >= 0, !overflow, end <= labels.count, let size = CheckedSize.product([end, imageBytes]), size <= pixels.count else {
            throw SAMTrainError("\(path): \(records) records do not fit after example \(start)")
        }
        for r in 0..<records {
            let record = r * f.recordBytes
            // CIFAR-100: coarse label (20 superclasses), then the fine label.
            if f.labelBytes == 2, bytes[record] >= 20 {
                throw SAMTrainError("\(path): record \(r) has coarse label \(bytes[record]), outside 0–19")
            }
            let label = bytes[record + f.labelBytes - 1]
            guard Int(label) < f.classes else {
                throw SAMTrainError("\(path): record \(r) has \(f.labelBytes == 2 ? "fine " : "")label \(label), outside 0–\(f.classes - 1) (\(f.title) has \(f.classes) classes)")
            }
            labels[start + r] = Int32(label)
            let from = record + f.labelBytes, to = (start + r) * imageBytes
            pixels.replaceSubrange(to..<(to + imageBytes), with: bytes[from..<(from + imageBytes)])
        }
    }

    /// Reads the files of one split into one dataset of raw pixels.
    static func split(_ dir: String, _ files: [(name: String, records: Int)], _ f: Format) throws -> Dataset {
        var total = 0
        for file in files {
            let (sum, overflow) = total.addingReportingOverflow(file.records)
            guard !overflow else { throw SAMTrainError("\(dir): the record counts overflow") }
            total = sum
        }
        var pixels = [UInt8](repeating: 0, count: try product(total, imageBytes, dir))
        var labels = [Int32](repeating: 0, count: total)
        var n = 0
        for (name, records) in files {
            let path = dir + "/" + name
            guard let data = FileManager.default.contents(atPath: path) else {
                throw SAMTrainError("\(path): cannot read the file; \(source(f))")
            }
            try decode([UInt8](data), records: records, f, path: path, pixels: &pixels, labels: &labels, at: n)
            n += records
        }
        return Dataset(pixels: pixels, normalization: f.normalization, labels: labels,
                       channels: channels, height: height, width: width, classes: f.classes)
    }
}
