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

    @Option(parsing: .upToNextOption,
            help: "Models to predict scaling for, as NAME=MS: the model and its compute time per step on one node (the 'step' of `samtrain bench` at the recipe's per-rank batch).")
    var predict: [ScalingTarget] = []

    @Option(parsing: .upToNextOption, help: "Node counts of the prediction (one rank per node).")
    var nodes: [Int] = [8, 64]

    @Option(parsing: .upToNextOption, help: "Link speeds of the prediction in Gbit/s (with the measured α), besides the measured link.")
    var linkGbps: [Double] = [10, 25, 100]

    @Option(help: "Gradient allreduces per step (1 for SGD and SAM with ε per rank, 2 for SAM with a global ε).")
    var allreducesPerStep = 1

    @Flag(help: "Print the fit and the samples as JSON.")
    var json = false

    /// A model and its measured compute time per step.
    struct ScalingTarget: ExpressibleByArgument, Codable {
        var model: String
        var stepMilliseconds: Double

        init?(argument: String) {
            let parts = argument.split(separator: "=", maxSplits: 1).map(String.init)
            guard parts.count == 2, Architecture(rawValue: parts[0]) != nil,
                  let ms = Double(parts[1]), ms.isFinite, ms > 0 else { return nil }
            model = parts[0]
            stepMilliseconds = ms
        }
    }

    struct Prediction: Codable {
        var model: String
        var gradientBytes: Double
        var nodes: Int
        var linkGbps: Double
        var efficiencyBlocking: Double
        var efficiencyOverlapped: Double
    }

    struct Report: Codable {
        var ranks: Int
        var samples: [[Double]]   // [bytes, seconds]
        var model: AllreduceCostModel
        var predictions: [Prediction]
    }

    func run() throws {
        guard sizesKb.count >= 2, sizesKb.allSatisfy({ $0 > 0 && $0 <= 1 << 20 }), repeats > 0 else {
            throw ValidationError("--sizes-kb needs at least two sizes in 1…1048576, --repeats must be positive")
        }
        guard nodes.allSatisfy({ $0 >= 2 && $0 <= 1 << 20 }), linkGbps.allSatisfy({ $0 > 0 && $0.isFinite }),
              (1...2).contains(allreducesPerStep) else {
            throw ValidationError("--nodes must be in 2…1048576, --link-gbps positive, --allreduces-per-step 1 or 2")
        }
        MPIJob.run { world in
            guard world.size > 1 else {
                throw AgreedFailure.everywhere("bench-allreduce needs at least 2 ranks (run it under mpirun)", world: world)
            }
            let samples = AllreduceCostModel.measure(world: world, sizes: sizesKb.map { $0 * 1024 }, repeats: repeats)
            // α from one float's allreduce: its time is latency alone.
            let latency = AllreduceCostModel.measure(world: world, sizes: [4], repeats: max(repeats, 100))[0].seconds
            let model = AllreduceCostModel.fit(samples, latency: latency, ranks: world.size)
            guard world.isCoordinator else { return }
            let predictions = predictions(measured: model)
            if json {
                let encoder = JSONEncoder()
                encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
                let report = Report(ranks: world.size, samples: samples.map { [$0.bytes, $0.seconds] }, model: model,
                                    predictions: predictions)
                print(String(decoding: try encoder.encode(report), as: UTF8.self))
                return
            }
            print("allreduce on \(world.size) ranks (median of \(repeats), slowest rank)")
            for s in samples {
                print(String(format: "  %8.0f KiB  %9.3f ms   model %9.3f ms", s.bytes / 1024, s.seconds * 1e3,
                             model.seconds(bytes: s.bytes, ranks: world.size) * 1e3))
            }
            print(String(format: "α = %.1f µs per message (a 4-byte allreduce: %.1f µs), β = %.3f ns per byte (%.2f Gbit/s)",
                         model.alpha * 1e6, latency * 1e6, model.beta * 1e9, 8 / model.beta / 1e9))
            guard !predictions.isEmpty else { return }
            print("predicted efficiency, \(allreducesPerStep) allreduce(s) per step, one rank per node (blocking / overlapped)")
            for p in predictions {
                let name = p.model.padding(toLength: 9, withPad: " ", startingAt: 0)
                print("  " + name + String(format: " %7.1f MB  %3d nodes  %6.2f Gbit/s  %5.1f %% / %5.1f %%", p.gradientBytes / 1e6,
                                           p.nodes, p.linkGbps, 100 * p.efficiencyBlocking, 100 * p.efficiencyOverlapped))
            }
        }
    }

    /// The efficiency of each target at each node count and link speed. The overlapped
    /// schedule can hide communication behind the backward pass, two thirds of a step (the
    /// forward : backward split that `samtrain bench` measures for the cnn and resnet20).
    /// The first link of each target is the measured one (α and β as fitted), to check the
    /// model against a step measured on these links.
    private func predictions(measured: AllreduceCostModel) -> [Prediction] {
        predict.flatMap { target -> [Prediction] in
            let bytes = Double(4 * Architecture(rawValue: target.model)!.build().store.count)
            let compute = target.stepMilliseconds / 1e3
            return ([8 / measured.beta / 1e9] + linkGbps).enumerated().flatMap { index, gbps in
                let link = index == 0 ? measured : AllreduceCostModel(gigabitsPerSecond: gbps, alpha: measured.alpha)
                return nodes.map { n in
                    Prediction(model: target.model, gradientBytes: bytes, nodes: n, linkGbps: gbps,
                               efficiencyBlocking: link.efficiency(computeSeconds: compute, bytes: bytes, ranks: n,
                                                                   allreduces: allreducesPerStep),
                               efficiencyOverlapped: link.efficiency(computeSeconds: compute,
                                                                     overlappableSeconds: compute * 2 / 3, bytes: bytes,
                                                                     ranks: n, allreduces: allreducesPerStep))
                }
            }
        }
    }
}
