import Foundation

/// Writes a run's metrics as a TensorBoard event file, `DIR/events.out.tfevents.<time>.<host>`:
/// every number of a `metrics.jsonl` record becomes a scalar tagged `<kind>/<key>`
/// (`step/loss`, `epoch/test_acc`, `step/seconds_per_step/forward`) at the record's step.
/// A resumed run starts a new file in the same directory; TensorBoard reads them together.
public final class TensorBoardWriter {
    public let path: String
    private let handle: FileHandle

    public init(directory: String, now: Date = Date(), host: String = TensorBoardWriter.hostName) throws {
        do {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        } catch {
            throw SAMTrainError("--tensorboard \(directory): cannot create the directory: \(error.localizedDescription)")
        }
        path = directory + "/events.out.tfevents.\(Int(now.timeIntervalSince1970)).\(host)"
        // A second start within the same second (a quick resume) appends to the file.
        if !FileManager.default.fileExists(atPath: path) {
            guard FileManager.default.createFile(atPath: path, contents: nil) else {
                throw SAMTrainError("--tensorboard \(directory): cannot create \(path)")
            }
        }
        guard let h = FileHandle(forWritingAtPath: path) else { throw SAMTrainError("\(path): cannot open for writing") }
        h.seekToEndOfFile()
        handle = h
        write(.fileVersion(wallTime: now.timeIntervalSince1970))
    }

    public static var hostName: String {
        var name = [CChar](repeating: 0, count: 256)
        guard gethostname(&name, name.count - 1) == 0 else { return "localhost" }
        return String(nulTerminated: name)
    }

    public func write(_ event: TensorBoardEvent) {
        handle.write(Data(TFRecord.frame(event.encoded)))
    }

    /// The scalars of one `metrics.jsonl` record (nothing when it has no integer `step`).
    public func record(_ object: [String: Any], wallTime: Double = Date().timeIntervalSince1970) {
        guard let step = object["step"] as? Int else { return }
        let prefix = object["kind"] as? String ?? "metrics"
        let values = TensorBoardWriter.scalars(object.filter { $0.key != "step" && $0.key != "kind" }, prefix: prefix)
        guard !values.isEmpty else { return }
        write(TensorBoardEvent(wallTime: wallTime, step: Int64(step), what: .scalars(values)))
    }

    /// Numbers (nested objects flattened into `a/b`), in key order; strings and booleans are not scalars.
    static func scalars(_ object: [String: Any], prefix: String) -> [(tag: String, value: Float)] {
        object.keys.sorted().flatMap { key -> [(tag: String, value: Float)] in
            let tag = prefix + "/" + key
            let v = object[key]!
            if let nested = v as? [String: Any] { return scalars(nested, prefix: tag) }
            if isBoolean(v) { return [] }
            if let d = v as? Double { return [(tag, Float(d))] }
            if let i = v as? Int { return [(tag, Float(i))] }
            return []
        }
    }

    /// JSONSerialization's true/false (Foundation bridges them to numbers too, so test the type).
    private static func isBoolean(_ v: Any) -> Bool {
        type(of: v) == Bool.self || String(describing: type(of: v)).contains("Boolean")
    }
}
