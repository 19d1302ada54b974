import Foundation

/// Files written whole or not at all: a temporary file in the same directory, fsync, rename,
/// fsync of the directory. A crash or a full disk leaves either the old file or the new
/// one, never half of one.
public enum AtomicFile {
    /// Writes `bytes` to `path`; `what` names the file in errors ("checkpoint").
    public static func write(_ bytes: [UInt8], to path: String, what: String = "file") throws {
        let url = URL(fileURLWithPath: path)
        let directory = url.deletingLastPathComponent().path
        let temporary = directory + "/.\(url.lastPathComponent).tmp-\(getpid())"
        let fd = open(temporary, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        guard fd >= 0 else { throw SAMTrainError("\(temporary): cannot create the \(what): \(String(cString: strerror(errno)))") }
        var written = 0
        let ok: Bool = bytes.withUnsafeBytes { raw in
            while written < raw.count {
                let n = Foundation.write(fd, raw.baseAddress! + written, raw.count - written)
                if n <= 0 { return false }
                written += n
            }
            return fsync(fd) == 0
        }
        let error = String(cString: strerror(errno))
        close(fd)
        guard ok else {
            unlink(temporary)
            throw SAMTrainError("\(temporary): writing the \(what) failed: \(error)")
        }
        guard rename(temporary, path) == 0 else {
            let e = String(cString: strerror(errno))
            unlink(temporary)
            throw SAMTrainError("\(path): cannot move the \(what) into place: \(e)")
        }
        let dfd = open(directory, O_RDONLY)
        if dfd >= 0 { fsync(dfd); close(dfd) }
    }
}
