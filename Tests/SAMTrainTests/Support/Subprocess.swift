import Foundation
import XCTest

/// Runs the built `samtrain` (alone or under mpirun) from the tests, with a hard time limit.
enum Subprocess {
    struct Result {
        var status: Int32
        var stdout: String
        var stderr: String
        var seconds: Double
        var timedOut: Bool
        /// Killed by `killWhen`.
        var killed = false
        var output: String { stdout + stderr }
    }

    /// The repository root (this file is Tests/SAMTrainTests/Support/Subprocess.swift).
    static let repositoryRoot = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    /// `../shared` beside the repository (CI clones it there), or `$SAMTRAIN_SHARED`.
    static var sharedDirectory: URL {
        if let s = ProcessInfo.processInfo.environment["SAMTRAIN_SHARED"] { return URL(fileURLWithPath: s) }
        return repositoryRoot.deletingLastPathComponent().appendingPathComponent("shared")
    }

    /// The `samtrain` binary built beside the test bundle (same products directory).
    static var samtrain: String {
        var dir = Bundle.main.bundleURL
        for _ in 0..<3 {
            let candidate = dir.appendingPathComponent("samtrain").path
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
            dir.deleteLastPathComponent()
        }
        for config in ["release", "debug"] {
            let candidate = repositoryRoot.appendingPathComponent(".build/\(config)/samtrain").path
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        }
        return "samtrain"
    }

    static var isRoot: Bool { geteuid() == 0 }

    static let fashionMNIST = "/usr/share/datasets/fashion-mnist"

    static func requireFashionMNIST() throws {
        guard FileManager.default.fileExists(atPath: fashionMNIST + "/train-images-idx3-ubyte.gz") else {
            throw XCTSkip("Fashion-MNIST is not installed at \(fashionMNIST) (launch/setup installs it)")
        }
    }

    /// Runs `executable arguments` with a time limit; on time-out the whole process tree
    /// is killed. When `killWhen` first returns true, the tree gets SIGKILL, or, with
    /// `interrupt`, the executable alone gets that signal and must end by itself.
    static func run(_ executable: String, _ arguments: [String], environment extra: [String: String] = [:],
                    timeout: Double = 120, directory: URL? = nil, killWhen: (() -> Bool)? = nil,
                    interrupt: Int32? = nil) throws -> Result {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/setsid")
        process.arguments = ["--wait", executable] + arguments
        // A test process that called MPI_Init is an MPI singleton: its Open MPI variables
        // must not leak into the mpirun it starts.
        var env = ProcessInfo.processInfo.environment.filter { key, _ in
            !["OMPI_", "PMIX_", "ORTE_", "OPAL_"].contains { key.hasPrefix($0) } || key.hasPrefix("OMPI_ALLOW_RUN_AS_ROOT")
        }
        for (k, v) in extra { env[k] = v }
        process.environment = env
        if let directory { process.currentDirectoryURL = directory }
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        process.standardInput = FileHandle.nullDevice
        let stdoutData = Collected(), stderrData = Collected()
        let group = DispatchGroup()
        for (pipe, sink) in [(out, stdoutData), (err, stderrData)] {
            group.enter()
            DispatchQueue.global().async { sink.data = pipe.fileHandleForReading.readDataToEndOfFile(); group.leave() }
        }
        let start = Date()
        try process.run()
        let pid = process.processIdentifier
        var timedOut = false, killed = false
        while process.isRunning {
            if Date().timeIntervalSince(start) > timeout {
                timedOut = true
                killTree(pid)
                break
            }
            if !killed, let killWhen, killWhen() {
                killed = true
                guard let interrupt else { killTree(pid); break }
                // setsid may have forked: the executable is the first process of the tree
                // that runs it.
                let target = processTree(pid).first { p in
                    FileManager.default.contents(atPath: "/proc/\(p)/cmdline").map {
                        String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) == executable
                    } ?? false
                }
                kill(target ?? pid, interrupt)
            }
            usleep(5_000)
        }
        process.waitUntilExit()
        group.wait()
        return Result(status: process.terminationStatus, stdout: String(decoding: stdoutData.data, as: UTF8.self),
                      stderr: String(decoding: stderrData.data, as: UTF8.self),
                      seconds: Date().timeIntervalSince(start), timedOut: timedOut, killed: killed)
    }

    /// `mpirun -np N samtrain ARGS` on this machine.
    static func mpirun(_ ranks: Int, _ arguments: [String], timeout: Double = 180, killWhen: (() -> Bool)? = nil) throws -> Result {
        var env: [String: String] = ["OPENBLAS_NUM_THREADS": "1"]
        if isRoot { env["OMPI_ALLOW_RUN_AS_ROOT"] = "1"; env["OMPI_ALLOW_RUN_AS_ROOT_CONFIRM"] = "1" }
        var mpi = ["-np", "\(ranks)", "--bind-to", "none"]
        if ranks > ProcessInfo.processInfo.activeProcessorCount { mpi.append("--oversubscribe") }
        return try run("/usr/bin/mpirun", mpi + [samtrain] + arguments, environment: env, timeout: timeout, killWhen: killWhen)
    }

    /// SIGKILL to `pid` and all its descendants. Open MPI puts its ranks in process groups
    /// of their own, so killing mpirun's group alone would leave the ranks running.
    static func killTree(_ pid: Int32) {
        let all = processTree(pid)
        for p in all { kill(p, SIGSTOP) }   // no one reacts to the others' deaths first
        for p in all { kill(p, SIGKILL) }
        kill(-pid, SIGKILL)
    }

    /// `pid` and all its descendants, parents before children.
    static func processTree(_ pid: Int32) -> [Int32] {
        var children: [Int32: [Int32]] = [:]
        for entry in (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? [] {
            guard let p = Int32(entry), let stat = try? String(contentsOfFile: "/proc/\(entry)/stat", encoding: .utf8),
                  let close = stat.lastIndex(of: ")") else { continue }
            let fields = stat[stat.index(after: close)...].split(separator: " ")
            if fields.count > 1, let parent = Int32(fields[1]) { children[parent, default: []].append(p) }
        }
        var stack = [pid], all: [Int32] = []
        while let p = stack.popLast() { all.append(p); stack += children[p] ?? [] }
        return all
    }

    /// What a reader thread collected (read after the group is done).
    final class Collected: @unchecked Sendable { var data = Data() }

    /// A fresh temporary directory.
    static func temporaryDirectory(_ name: String = "samtrain-test") -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("\(name)-\(UUID().uuidString)")
        try? FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }
}
