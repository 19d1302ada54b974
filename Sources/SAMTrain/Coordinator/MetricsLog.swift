import Foundation

/// Machine-readable records of a run, written by rank 0 into `--out DIR`:
/// `metrics.jsonl` (a JSON object per logged step and per epoch), `metrics.csv` (the epoch
/// records) and `config.json` (every setting and the environment, at start); with
/// `--tensorboard DIR`, the same records' numbers as TensorBoard scalars.
public final class MetricsLog {
    public let directory: String?
    private var jsonl: FileHandle?
    private var csv: FileHandle?
    public let tensorboard: TensorBoardWriter?

    static let csvColumns = ["epoch", "step", "train_loss", "train_acc", "test_loss", "test_acc", "images_per_s", "seconds"]

    /// Opens the files (appending when resuming). Only the coordinator passes directories.
    public init(directory: String?, resuming: Bool, tensorboard: String? = nil) throws {
        self.directory = directory
        self.tensorboard = try tensorboard.map { try TensorBoardWriter(directory: $0) }
        guard let directory else { return }
        try MetricsLog.makeDirectory(directory)
        jsonl = try MetricsLog.open(directory + "/metrics.jsonl", append: resuming)
        let csvPath = directory + "/metrics.csv"
        let csvExists = FileManager.default.fileExists(atPath: csvPath)
        csv = try MetricsLog.open(csvPath, append: resuming)
        if !(resuming && csvExists) { csv?.write(Data((MetricsLog.csvColumns.joined(separator: ",") + "\n").utf8)) }
    }

    public static func makeDirectory(_ path: String) throws {
        do {
            try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        } catch {
            throw SAMTrainError("--out \(path): cannot create the output directory: \(error.localizedDescription)")
        }
        guard access(path, W_OK) == 0 else { throw SAMTrainError("--out \(path): the output directory is not writable") }
    }

    private static func open(_ path: String, append: Bool) throws -> FileHandle {
        if !append || !FileManager.default.fileExists(atPath: path) {
            guard FileManager.default.createFile(atPath: path, contents: nil) else {
                throw SAMTrainError("\(path): cannot create the file")
            }
        }
        guard let h = FileHandle(forWritingAtPath: path) else { throw SAMTrainError("\(path): cannot open for writing") }
        h.seekToEndOfFile()
        return h
    }

    public func writeConfig(_ object: [String: Any]) throws {
        guard let directory else { return }
        let data = try JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys])
        try data.write(to: URL(fileURLWithPath: directory + "/config.json"), options: .atomic)
    }

    public func record(_ r: StepRecord) { record(r.json) }

    public func record(_ object: [String: Any]) {
        tensorboard?.record(object)
        guard let jsonl, let data = try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]) else { return }
        jsonl.write(data)
        jsonl.write(Data("\n".utf8))
    }

    public func epoch(_ r: EpochRecord, coordinatorSeconds: Double = 0) {
        let values: [Any] = [r.epoch, r.step, r.trainLoss, r.trainAccuracy, r.testLoss, r.testAccuracy, r.imagesPerSecond, r.seconds]
        csv?.write(Data((values.map { "\($0)" }.joined(separator: ",") + "\n").utf8))
        record(["kind": "epoch", "epoch": r.epoch, "step": r.step, "train_loss": r.trainLoss, "train_acc": r.trainAccuracy,
                "test_loss": r.testLoss, "test_acc": r.testAccuracy, "images_per_s": r.imagesPerSecond, "seconds": r.seconds,
                "coordinator_seconds": coordinatorSeconds])
    }
}
