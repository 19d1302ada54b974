import Foundation

/// `samtrain sweep FILE --slurm [sbatch options]`: the sweep's unfinished cells as one Slurm
/// job array, one array task per cell. Each task is `samtrain sweep FILE --cell NAME` inside
/// an allocation of the sweep's rank count (mpirun takes its hosts and slots from Slurm) and
/// writes only its cell's directory; `samtrain sweep FILE --collect` gathers results.csv.
///
/// A task stopped by Slurm's SIGTERM (`scancel --batch --signal=TERM`, or `--signal=B:TERM@120`
/// before the time limit) stops its cell after a step with a checkpoint and is requeued; the
/// requeued task resumes the cell from that checkpoint (README, "Running on a cluster").
public struct SlurmArray {
    public var sweep: SweepFile
    /// What each task runs: `samtrain sweep` with these arguments (file, --out, --quick, --data) and `--cell`.
    public var samtrain: String
    public var sweepArguments: [String]
    public var directory: String
    public var cells: [SweepFile.Cell]
    public var sbatch = "sbatch"
    public var squeue = "squeue"

    public init(sweep: SweepFile, samtrain: String, sweepArguments: [String], directory: String, cells: [SweepFile.Cell]) {
        self.sweep = sweep
        self.samtrain = samtrain
        self.sweepArguments = sweepArguments
        self.directory = directory
        self.cells = cells
    }

    /// The array job's batch script (written to `DIR/slurm/` and submitted).
    public var script: String {
        let threads = Set(cells.map { $0.value("threads") ?? "1" })
        var lines = [
            "#!/usr/bin/env bash",
            "# Written by `samtrain sweep --slurm` for the sweep \(sweep.name): one array task per cell that was",
            "# unfinished at submission. sbatch options on samtrain's command line override these.",
            "#SBATCH --job-name=samtrain-\(sweep.name)",
            "#SBATCH --array=0-\(cells.count - 1)",
            "#SBATCH --ntasks=\(sweep.ranks)",
        ]
        if threads.count == 1, let t = threads.first, t != "1" { lines.append("#SBATCH --cpus-per-task=\(t)") }
        lines += [
            "#SBATCH --requeue",
            "# SIGTERM to this script 120 s before the time limit: the cell stops with a checkpoint, the task is requeued.",
            "#SBATCH --signal=B:TERM@120",
            "#SBATCH --open-mode=append",
            "#SBATCH --output=\(directory)/slurm/%A_%a.out",
            "set -uo pipefail",
            "cells=(" + cells.map { Self.quote($0.name) }.joined(separator: " ") + ")",
            "cell=${cells[$SLURM_ARRAY_TASK_ID]}",
            "echo \"samtrain: task $SLURM_ARRAY_TASK_ID (job $SLURM_JOB_ID, restart ${SLURM_RESTART_COUNT:-0}): cell $cell on $SLURM_JOB_NODELIST\"",
            "if ((EUID == 0)); then export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1; fi",
            "# Slurm signals this shell only; samtrain sweep passes the stop on to its cell's mpirun (as SIGUSR2).",
            ([samtrain, "sweep"] + sweepArguments).map(Self.quote).joined(separator: " ") + " --cell \"$cell\" &",
            "pid=$!",
            "trap 'kill -TERM \"$pid\" 2>/dev/null' TERM INT",
            "while :; do wait \"$pid\"; status=$?; kill -0 \"$pid\" 2>/dev/null || break; done",
            "trap - TERM INT",
            "# 143: stopped by SIGTERM after a step, with its checkpoint: run the task again, which resumes the cell.",
            "if ((status == 143 || status == \(StopRequest.exitStatus))); then",
            "    echo \"samtrain: cell $cell stopped with a checkpoint; requeueing job $SLURM_JOB_ID\"",
            "    scontrol requeue \"$SLURM_JOB_ID\"",
            "fi",
            "exit \"$status\"",
        ]
        return lines.joined(separator: "\n") + "\n"
    }

    /// Writes the script and submits it with `sbatch --parsable OPTIONS SCRIPT`; returns the
    /// array's job id and the script's path. Refuses while an array of this sweep is still queued
    /// or running (its tasks would meet the cells' locks).
    public func submit(options: [String]) throws -> (job: String, script: String) {
        guard let sbatchPath = Self.which(sbatch) else {
            throw SAMTrainError("--slurm: \(sbatch) is not on PATH; submit from a Slurm login node (or put Slurm's bin directory on PATH)")
        }
        let slurmDirectory = directory + "/slurm"
        try MetricsLog.makeDirectory(slurmDirectory)
        let jobsFile = slurmDirectory + "/jobs"
        let earlier = ((try? String(contentsOfFile: jobsFile, encoding: .utf8)) ?? "").split(separator: "\n").compactMap { $0.split(separator: " ").first.map(String.init) }
        if let squeuePath = Self.which(squeue) {
            for job in earlier {
                let (status, out, _) = try Self.capture(squeuePath, ["-h", "-o", "%i", "-j", job])
                if status == 0, !out.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty {
                    throw SAMTrainError("--slurm: the array job \(job) of this sweep is still queued or running (squeue -j \(job)); rerun when it has ended, or scancel \(job)")
                }
            }
        }
        let stamp = Int(Date().timeIntervalSince1970)
        let path = slurmDirectory + "/array-\(stamp).sbatch"
        try script.write(toFile: path, atomically: true, encoding: .utf8)
        let (status, out, err) = try Self.capture(sbatchPath, ["--parsable"] + options + [path])
        guard status == 0 else {
            throw SAMTrainError("--slurm: sbatch failed (exit \(status)): \(err.trimmingCharacters(in: .whitespacesAndNewlines))")
        }
        // --parsable prints "JOBID" or "JOBID;CLUSTER".
        let job = String(out.trimmingCharacters(in: .whitespacesAndNewlines).split(separator: ";").first ?? "")
        guard !job.isEmpty else { throw SAMTrainError("--slurm: sbatch printed no job id: \(out)\(err)") }
        let record = "\(job) \(path) \(cells.map(\.name).joined(separator: " "))\n"
        if let h = FileHandle(forWritingAtPath: jobsFile) {
            h.seekToEndOfFile()
            h.write(Data(record.utf8))
            try? h.close()
        } else {
            try record.write(toFile: jobsFile, atomically: true, encoding: .utf8)
        }
        return (job, path)
    }

    /// A word for bash, single-quoted.
    static func quote(_ s: String) -> String {
        "'" + s.replacingOccurrences(of: "'", with: "'\\''") + "'"
    }

    /// The executable `name` resolves to on PATH (or `name` itself when it is a path).
    static func which(_ name: String) -> String? {
        if name.contains("/") { return FileManager.default.isExecutableFile(atPath: name) ? name : nil }
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"
        return path.split(separator: ":").map { "\($0)/\(name)" }.first { FileManager.default.isExecutableFile(atPath: $0) }
    }

    /// Runs a command to its end; its status, stdout and stderr.
    static func capture(_ executable: String, _ arguments: [String]) throws -> (Int32, String, String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        process.standardInput = FileHandle.nullDevice
        try process.run()
        // Both pipes read to the end before waiting: a full pipe would block the child.
        let errData = Collected(), done = DispatchSemaphore(value: 0)
        Thread { errData.data = err.fileHandleForReading.readDataToEndOfFile(); done.signal() }.start()
        let outData = out.fileHandleForReading.readDataToEndOfFile()
        done.wait()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: outData, as: UTF8.self), String(decoding: errData.data, as: UTF8.self))
    }

    final class Collected: @unchecked Sendable { var data = Data() }
}
