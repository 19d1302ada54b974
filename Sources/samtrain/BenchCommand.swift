import ArgumentParser
import Foundation
import SAMTrain

struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Time training steps (images/s and per-phase times) beside OpenBLAS sgemm's GFLOP/s."
    )

    @Option(help: "Model: \(Architecture.allCases.map(\.rawValue).joined(separator: ", ")) (timed on random inputs of its data shape: 1×28×28 for mlp and cnn, 3×32×32 for the residual networks).")
    var model: String = "cnn"

    @Option(help: "Examples per rank per step.")
    var batchSize: Int = 128

    @Option(help: "Timed steps.")
    var steps: Int = 20

    @Option(help: "Untimed warm-up steps.")
    var warmup: Int = 3

    @Option(help: "OpenBLAS threads per rank.")
    var threads: Int = 1

    @Flag(help: "Print the result as JSON.")
    var json = false

    @OptionGroup var samOptions: SAMOptions

    @OptionGroup(title: "Communication") var allreduceOptions: AllreduceOptions

    func run() throws {
        let architecture: Architecture
        do { architecture = try Architecture.named(model) } catch let e as SAMTrainError { throw ValidationError(e.message) }
        guard batchSize > 0, steps > 0, warmup >= 0, threads > 0 else {
            throw ValidationError("--batch-size, --steps and --threads must be positive, --warmup ≥ 0")
        }
        let sam = try samOptions.configuration()
        let allreduce = try allreduceOptions.settings()
        MPIJob.run { world in
            var bench = Benchmark(model: architecture, batchPerRank: batchSize, steps: steps, warmup: warmup, threads: threads, sam: sam)
            bench.allreduce = allreduce
            let r = try bench.run(world: world)
            guard world.isCoordinator else { return }
            if json {
                let encoder = JSONEncoder()
                encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
                print(String(decoding: try encoder.encode(r), as: UTF8.self))
            } else {
                print(BenchCommand.table(r))
            }
        }
    }

    static func table(_ r: Benchmark.Result) -> String {
        var lines = [
            "model \(r.model) (\(r.inputShape.map(String.init).joined(separator: "×")) inputs), \(r.variant) (\(r.scope)), \(r.ranks) rank(s) × \(r.threadsPerRank) thread(s), \(r.batchPerRank) per rank, \(r.steps) steps",
            String(format: "images/s          %10.1f", r.imagesPerSecond),
            String(format: "step (median)     %10.2f ms", r.medianStepSeconds * 1e3),
        ]
        for phase in Phase.allCases {
            let name = phase.rawValue.padding(toLength: 16, withPad: " ", startingAt: 0)
            lines.append("  " + name + String(format: "%10.2f ms", (r.phaseSeconds[phase.rawValue] ?? 0) * 1e3))
        }
        lines.append(String(format: "model GFLOP/s     %10.1f per rank", r.modelGFLOPsPerRank))
        lines.append(String(format: "sgemm GFLOP/s     %10.1f per rank (%d×%d, same run) → model at %.0f%% of sgemm",
                            r.sgemmGFLOPsPerRank, r.sgemmSize, r.sgemmSize, 100 * r.modelGFLOPsPerRank / r.sgemmGFLOPsPerRank))
        lines.append(String(format: "peak memory       %10.0f MB per rank (resident, largest rank)", r.peakResidentMBPerRank))
        return lines.joined(separator: "\n")
    }
}
