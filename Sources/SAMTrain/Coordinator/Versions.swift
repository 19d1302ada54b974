import CBLAS
import CMPI
import Foundation

/// Versions of what a run used, for `config.json`.
public enum Versions {
    public static let samtrain = "0.1.0"

    public static var all: [String: String] {
        var v = ["samtrain": samtrain, "openblas": String(cString: openblas_get_config()),
                 "kernels": VectorKernels.active.path.rawValue]
        var buffer = [CChar](repeating: 0, count: 8192)
        var length: Int32 = 0
        MPI_Get_library_version(&buffer, &length)
        v["mpi"] = String(nulTerminated: buffer).split(separator: ",").first.map(String.init) ?? ""
        #if swift(>=6.3)
        v["swift"] = "6.3+"
        #elseif swift(>=6.0)
        v["swift"] = "6.x"
        #endif
        if let commit = gitCommit() { v["git_commit"] = commit }
        return v
    }

    /// The commit of the source tree the binary runs from, when it is a git checkout.
    static func gitCommit() -> String? {
        var dir = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath().deletingLastPathComponent()
        for _ in 0..<6 {
            let head = dir.appendingPathComponent(".git/HEAD")
            if let text = try? String(contentsOf: head, encoding: .utf8) {
                let line = text.trimmingCharacters(in: .whitespacesAndNewlines)
                if line.hasPrefix("ref: ") {
                    let ref = dir.appendingPathComponent(".git/" + line.dropFirst(5))
                    return (try? String(contentsOf: ref, encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines)
                }
                return line
            }
            dir.deleteLastPathComponent()
        }
        return nil
    }
}
