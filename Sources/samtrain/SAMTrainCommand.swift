import ArgumentParser
import Foundation
import SAMTrain

@main
struct SAMTrainCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "samtrain",
        abstract: "Data-parallel Sharpness-Aware Minimization training on Open MPI.",
        discussion: "Run under mpirun for several ranks (see launch/train); without it, samtrain is one process.",
        subcommands: [TrainCommand.self, EvalCommand.self, BenchCommand.self, BenchAllreduceCommand.self, ConformanceCommand.self, SharpnessCommand.self, SweepCommand.self, PlotCommand.self, VariantsCommand.self, DataCommand.self]
    )

    /// Parses the command line before MPI starts. A bad flag is the same on every rank, so
    /// only rank 0 prints it; every rank exits non-zero.
    static func main() {
        BLASCore.restartWithFasterKernelsIfNeeded()
        signal(SIGPIPE, SIG_IGN)
        FloatingPointMode.flushSubnormals()
        do {
            _ = try KernelPath.chosen(environment: ProcessInfo.processInfo.environment)
            let arguments = joiningNegativeNumbers(Array(CommandLine.arguments.dropFirst()))
            var command = try parseAsRoot(arguments)
            if let sam = command as? TakesSAMOptions { try sam.samConfiguration.checkVariantFlags(given: arguments) }
            try command.run()
        } catch let code as ExitCode {
            Foundation.exit(code.rawValue)   // the command has already said why
        } catch {
            let code = exitCode(for: error)
            if code == .success { exit(withError: error) }   // --help, --version
            if launchRank == 0 {
                let hint = "see 'samtrain --help' or 'samtrain SUBCOMMAND --help'"
                FileHandle.standardError.write(Data("samtrain: error: \(message(for: error)) (\(hint))\n".utf8))
            } else {
                // Give rank 0 time to print before mpirun ends the job on this exit.
                usleep(500_000)
            }
            Foundation.exit(code.rawValue)
        }
    }

    /// `--lr -1` as `--lr=-1`: the argument parser would take `-1` for a short flag and say the
    /// value is missing; joined, the value reaches the option's own check ("must be positive").
    static func joiningNegativeNumbers(_ arguments: [String]) -> [String] {
        var out: [String] = []
        var i = 0
        while i < arguments.count {
            let a = arguments[i]
            if a.hasPrefix("--"), a.count > 2, !a.contains("="), i + 1 < arguments.count, isNegativeNumber(arguments[i + 1]) {
                out.append(a + "=" + arguments[i + 1])
                i += 2
            } else {
                out.append(a)
                i += 1
            }
        }
        return out
    }

    static func isNegativeNumber(_ s: String) -> Bool {
        s.count > 1 && s.hasPrefix("-") && Double(s) != nil
    }

    /// This process's rank as mpirun announces it, before MPI_Init (0 without mpirun).
    static var launchRank: Int {
        let env = ProcessInfo.processInfo.environment
        return Int(env["OMPI_COMM_WORLD_RANK"] ?? env["PMIX_RANK"] ?? "0") ?? 0
    }
}
