import Foundation

/// An exclusive lock on a run's `--out` directory, held by rank 0 for the life of the
/// process: a second run on the same directory (a resume started while the old ranks still
/// write) is refused. It is an flock(2) on `DIR/.samtrain.lock`, so it ends with the process
/// however that ends; the file itself says who holds it.
public final class DirectoryLock {
    public let path: String
    private let descriptor: Int32

    public init(directory: String) throws {
        path = directory + "/.samtrain.lock"
        descriptor = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard descriptor >= 0 else {
            throw SAMTrainError("--out \(directory): cannot create the lock file \(path): \(String(cString: strerror(errno)))")
        }
        guard flock(descriptor, LOCK_EX | LOCK_NB) == 0 else {
            let holder = (try? String(contentsOfFile: path, encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines) ?? ""
            close(descriptor)
            throw SAMTrainError("--out \(directory) is in use by a running samtrain\(holder.isEmpty ? "" : " (\(holder))"); wait until it ends, or choose another --out")
        }
        let owner = "pid \(getpid()) on \(ProcessInfo.processInfo.hostName), since \(ISO8601DateFormatter().string(from: Date()))\n"
        ftruncate(descriptor, 0)
        _ = owner.withCString { pwrite(descriptor, $0, strlen($0), 0) }
    }

    deinit { close(descriptor) }
}
