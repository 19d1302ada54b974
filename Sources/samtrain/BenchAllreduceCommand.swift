import ArgumentParser
import Foundation
import SAMTrain

/// `samtrain bench-allreduce`: times blocking allreduces of several sizes on the job's ranks
/// and fits the α–β model of a ring allreduce (docs/performance.md, "Scaling").
struct BenchAllreduceCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench-allreduce",
        abstract: "Time allreduces of several sizes and fit the α–β cost of a ring allreduce."
    )

    @Option(parsing: .upToNextOption, help: "Buffer sizes in KiB.")
    var sizesKb: [Int] = [4, 64, 256, 1024, 4096]

    @Option(help: "Timed allreduces per size (the median is kept).")
    var repeats: Int = 20

    @Flag(help: "Print the fit and the samples as JSON.")
    var json = false

    struct Report: Codable {
        var ranks: Int
        var samples: [[Double]]   // [bytes, seconds]
        var model: AllreduceCostModel
    }

    func run() throws {
        guard sizesKb.count >= 2, sizesKb.allSatisfy({ $0 > 0 && $0 <= 1 << 20 }), repeats > 0 else {
            throw ValidationError("--sizes-kb needs at least two sizes in 1…1048576, --repeats must be positive")
        }
        MPIJob.run { world in
            guard world.size > 1 else {
                throw AgreedFailure.everywhere("bench-allreduce needs at least 2 ranks (run it under mpirun)", world: world)
            }
            let samples = AllreduceCostModel.measure(world: world, sizes: sizesKb.map { $0 * 1024 }, repeats: repeats)
            let model = AllreduceCostModel.fit(samples, ranks: world.size)
            guard world.isCoordinator else { return }
            if json {
                let encoder = JSONEncoder()
                encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
                let report = Report(ranks: world.size, samples: samples.map { [$0.bytes, $0.seconds] }, model: model)
                print(String(decoding: try encoder.encode(report), as: UTF8.self))
                return
            }
            print("allreduce on \(world.size) ranks (median of \(repeats), slowest rank)")
            for s in samples {
                print(String(format: "  %8.0f KiB  %9.3f ms   model %9.3f ms", s.bytes / 1024, s.seconds * 1e3,
                             model.seconds(bytes: s.bytes, ranks: world.size) * 1e3))
            }
            print(String(format: "α = %.1f µs per message, β = %.3f ns per byte (%.2f Gbit/s)",
                         model.alpha * 1e6, model.beta * 1e9, 8 / model.beta / 1e9))
        }
    }
}
