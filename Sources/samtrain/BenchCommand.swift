import ArgumentParser
import Foundation
import SAMTrain

struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Time training steps (images/s and per-phase times) beside OpenBLAS sgemm's GFLOP/s."
    )

    @OptionGroup(title: "Model") var model: ModelOptions

    @Option(parsing: .upToNextOption, help: "Examples per rank per step (the global batch is this × the rank count); several values time each in turn (64 is the default recipe's).")
    var batchPerRank: [Int] = [64, 128]

    @Option(help: "Timed steps.")
    var steps: Int = 20

    @Option(help: "Untimed warm-up steps.")
    var warmup: Int = 3

    @Option(help: "OpenBLAS threads per rank.")
    var threads: Int = 1

    @Option(help: ArgumentHelp("Run every pass in chunks of K examples (as train's --micro-batch): peak memory follows K.", valueName: "K"))
    var microBatch: Int?

    @Option(help: ArgumentHelp("Also time each convolution and linear shape alone on N examples per call, over and over on the same data: the rate its kernels reach while the data stays in the cache, without the model's traffic around them.", valueName: "N"))
    var shapesAlone: Int?

    @Flag(help: "Print the results as a JSON array (one object per batch size).")
    var json = false

    @Option(help: "How convolutions run: \(ConvolutionLowering.allCases.map(\.rawValue).joined(separator: ", ")) (automatic: samtrain's own AVX-512 or AVX2 kernels where the CPU has them, else sgemm).")
    var convolution: ConvolutionLowering = .automatic

    @OptionGroup(title: "Optimization") var optimization: OptimizationOptions

    @OptionGroup(title: "Sharpness-aware minimization") var samOptions: SAMOptions

    @OptionGroup var variants: VariantRegistry

    @OptionGroup(title: "Communication") var communication: CommunicationOptions

    func validate() throws {
        try samConfiguration.validate()
        let net = model.configuration
        try net.check(imageShape: net.defaultInputShape, classes: 10, source: "samtrain bench")
        guard !batchPerRank.isEmpty, batchPerRank.allSatisfy({ $0 > 0 }), steps > 0, warmup >= 0, threads > 0, (shapesAlone ?? 1) > 0 else {
            throw ValidationError("--batch-per-rank, --steps, --threads and --shapes-alone must be positive, --warmup ≥ 0")
        }
    }

    func run() throws {
        MPIJob.run { world in
            var results: [Benchmark.Result] = []
            for batch in batchPerRank {
                let step = StepSettings(sam: samConfiguration, optimizer: optimization.optimizerKind,
                                        globalBatch: batch * world.size, allreduce: communication.settings,
                                        microBatch: microBatch)
                var bench = Benchmark(model: model.configuration, step: step, learningRate: optimization.lr,
                                      steps: steps, warmup: warmup, threads: threads)
                bench.convolution.lowering = convolution
                bench.shapesAloneExamples = shapesAlone
                let r = try bench.run(world: world)
                results.append(r)
                if world.isCoordinator && !json { print(BenchCommand.table(r) + "\n") }
            }
            guard world.isCoordinator, json else { return }
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            print(String(decoding: try encoder.encode(results), as: UTF8.self))
        }
    }

    static func table(_ r: Benchmark.Result) -> String {
        var lines = [
            "model \(r.model) (\(r.inputShape.map(String.init).joined(separator: "×")) inputs), \(r.variant) (\(r.scope)), \(r.ranks) rank(s) × \(r.threadsPerRank) thread(s), \(r.batchPerRank) per rank\(r.microBatch.map { " in micro-batches of \($0)" } ?? ""), \(r.steps) steps",
            String(format: "images/s          %10.1f", r.imagesPerSecond),
            String(format: "step (median)     %10.2f ms   (mean %.2f ms)", r.medianStepSeconds * 1e3, r.meanStepSeconds * 1e3),
        ]
        for phase in Phase.allCases {
            let name = phase.rawValue.padding(toLength: 16, withPad: " ", startingAt: 0)
            lines.append("  " + name + String(format: "%10.2f ms", (r.phaseSeconds[phase.rawValue] ?? 0) * 1e3))
        }
        lines.append("  per layer type    forward   backward")
        let layerTotal = r.layerSeconds.values.reduce(0) { $0 + $1.forward + $1.backward }
        for (name, t) in r.layerSeconds.sorted(by: { $0.value.forward + $0.value.backward > $1.value.forward + $1.value.backward }) {
            lines.append("    " + name.padding(toLength: 16, withPad: " ", startingAt: 0)
                         + String(format: "%8.2f ms %8.2f ms  %4.1f%%", t.forward * 1e3, t.backward * 1e3,
                                  100 * (t.forward + t.backward) / max(layerTotal, 1e-12)))
        }
        if !r.shapeSeconds.isEmpty {
            lines.append("  per shape                                   forward   GFLOP/s   backward   GFLOP/s"
                         + (r.shapeAloneSeconds == nil ? "" : "   alone: forward, backward GFLOP/s"))
            let rate = { (flops: Double, seconds: Double) in seconds > 0 ? flops / seconds / 1e9 : 0 }
            for (name, t) in r.shapeSeconds.sorted(by: { $0.value.forward + $0.value.backward > $1.value.forward + $1.value.backward }) {
                let label = name.count > 40 ? String(name.prefix(39)) + "…" : name.padding(toLength: 40, withPad: " ", startingAt: 0)
                var line = "    " + label + String(format: "%8.2f ms %7.1f %8.2f ms %7.1f", t.forward * 1e3,
                                                      rate(t.forwardFLOPs, t.forward), t.backward * 1e3,
                                                      rate(t.backwardFLOPs, t.backward))
                if let alone = r.shapeAloneSeconds?[name] {
                    line += String(format: "   %7.1f %7.1f", rate(alone.forwardFLOPs, alone.forward), rate(alone.backwardFLOPs, alone.backward))
                }
                lines.append(line)
            }
        }
        lines.append(String(format: "model FLOPs       %10.1f MFLOP forward per image", r.forwardFLOPsPerImage / 1e6))
        lines.append(String(format: "model GFLOP/s     %10.1f per rank", r.modelGFLOPsPerRank))
        lines.append(String(format: "sgemm GFLOP/s     %10.1f per rank (%d×%d, same run) → model at %.0f%% of sgemm",
                            r.sgemmGFLOPsPerRank, r.sgemmSize, r.sgemmSize, 100 * r.modelGFLOPsPerRank / r.sgemmGFLOPsPerRank))
        lines.append(String(format: "peak memory       %10.0f MB per rank (resident, largest rank)", r.peakResidentMBPerRank))
        lines.append("cpu               " + r.cpu)
        return lines.joined(separator: "\n")
    }
}

extension BenchCommand: TakesSAMOptions {
    var samConfiguration: SAMConfiguration { samOptions.configuration(variants: variants) }
}

/// `--convolution`: the lowering every Conv2d uses during the bench.
extension ConvolutionLowering: ExpressibleByArgument {}
