import Foundation

/// The checkpoints of a run in its `--out` directory: `checkpoint-step0000500.safetensors`,
/// the newest `keep` of them kept.
public struct CheckpointDirectory {
    public let path: String
    public let keep: Int

    public init(path: String, keep: Int) {
        self.path = path
        self.keep = keep
    }

    public func fileName(step: Int) -> String {
        path + "/" + String(format: "checkpoint-step%07d.safetensors", step)
    }

    /// Checkpoint files, newest (highest step) first.
    public static func list(_ directory: String) -> [String] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
        return names.filter { $0.hasPrefix("checkpoint-step") && $0.hasSuffix(".safetensors") }
            .sorted(by: >)
            .map { directory + "/" + $0 }
    }

    /// Writes `checkpoint`, then removes the oldest beyond `keep`.
    public func save(_ checkpoint: Checkpoint, step: Int) throws {
        try checkpoint.write(to: fileName(step: step))
        for old in CheckpointDirectory.list(path).dropFirst(keep) { try? FileManager.default.removeItem(atPath: old) }
    }

    /// The checkpoint named by `--resume`: a file, or the newest valid one in a directory
    /// (a damaged newest file is skipped, with a note, for the one before it).
    public static func resolve(_ location: String, note: (String) -> Void) throws -> (path: String, checkpoint: Checkpoint) {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: location, isDirectory: &isDirectory) else {
            throw SAMTrainError("--resume \(location): no such file or directory")
        }
        guard isDirectory.boolValue else { return (location, try Checkpoint.read(from: location)) }
        let candidates = list(location)
        guard !candidates.isEmpty else { throw SAMTrainError("--resume \(location): the directory holds no checkpoint-step*.safetensors") }
        var problems: [String] = []
        for candidate in candidates {
            do {
                return (candidate, try Checkpoint.read(from: candidate))
            } catch let e as SAMTrainError {
                problems.append(e.message)
                note("skipping damaged checkpoint: \(e.message)")
            }
        }
        throw SAMTrainError("--resume \(location): no valid checkpoint: \(problems.joined(separator: "; "))")
    }
}
