import ArgumentParser
import Foundation
import SAMTrain

extension CheckpointModel.Labels: ExpressibleByArgument {}

struct SharpnessCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sharpness",
        abstract: "Sharpness of a checkpoint: Hessian eigenvalues, m-sharpness and a 1-D loss line (data-parallel).",
        discussion: "Computed on the first --subset of the training examples the run trained on (its --train-subset), with BatchNorm in eval mode, and with the labels it trained on (its --label-noise rebuilt from its seed) unless --labels clean."
    )

    @OptionGroup var source: CheckpointSource

    @Option(help: "Training examples to probe.")
    var subset: Int = 2000

    @Option(help: "Lanczos steps (Hessian-vector products) for λ_max.")
    var iterations: Int = 20

    @Option(help: "Top Hessian eigenvalues to report (Lanczos, max(3k, 20) steps; 1: λ_max alone).")
    var topK: Int = 1

    @Option(help: "The labels of the probed examples: trained (those the run trained on, noisy under --label-noise: the loss it minimized) or clean (the dataset's own).")
    var labels: CheckpointModel.Labels = .trained

    @Option(help: "Radius of the m-sharpness estimate.")
    var rho: Float = 0.05

    @Option(name: .customLong("m"), help: "Examples per shard of the m-sharpness estimate.")
    var m: Int = 128

    @Option(help: "Points on the 1-D loss line (0: none).")
    var linePoints: Int = 11

    @Option(help: "Half-width of the 1-D loss line (a random unit direction).")
    var lineRadius: Float = 1

    @Option(help: "Length of the finite-difference step of the Hessian-vector products (taken with the ReLU and max-pool pattern of w held fixed).")
    var hvpStep: Double = 1e-3

    @Flag(help: "Print the result as JSON.")
    var json = false

    func run() throws {
        guard subset > 0, iterations > 0, topK > 0, rho > 0, m > 0, linePoints >= 0, lineRadius > 0, hvpStep > 0 else {
            throw ValidationError("--subset, --iterations, --top-k, --rho, --m, --line-radius and --hvp-step must be positive, --line-points ≥ 0")
        }
        MPIJob.run { world in
            let loaded = try source.load(world: world)
            let examples = loaded.trainingExamples(labels)
            let landscape = LossLandscape(model: loaded.model, dataset: examples, subset: subset, world: world)
            landscape.finiteDifferenceStep = hvpStep
            let loss = landscape.evaluate(withGradient: false)
            let (lambda, used) = HessianSpectrum.topEigenvalue(landscape, steps: iterations)
            let top = topK > 1 ? HessianSpectrum.topEigenvalues(landscape, k: topK) : [lambda]
            let sharpness = MSharpness.estimate(landscape, rho: rho, m: m)
            let line = linePoints > 0 ? MSharpness.line(landscape, radius: lineRadius, points: linePoints) : []
            guard world.isCoordinator else { return }
            let noise = labels == .trained ? loaded.split?.labelNoise ?? 0 : 0
            if json {
                let object: [String: Any] = [
                    "checkpoint": source.checkpoint, "step": loaded.step, "subset": min(subset, examples.count), "loss": loss,
                    "labels": labels.rawValue, "label_noise": Double(noise),
                    "lambda_max": lambda, "lanczos_steps": used, "hvp_step": hvpStep, "top_eigenvalues": top,
                    "m_sharpness": ["rho": Double(rho), "m": m, "value": sharpness],
                    "line": line.map { ["t": Double($0.t), "loss": $0.loss] },
                ]
                let data = try JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys])
                print(String(decoding: data, as: UTF8.self))
                return
            }
            print("checkpoint \(source.checkpoint) (step \(loaded.step)), \(min(subset, examples.count)) training examples"
                  + (noise > 0 ? String(format: " with the labels it trained on (%.3g label noise)", noise) : "") + ", \(world.size) rank(s): "
                  + String(format: "loss %.4f", loss))
            print(String(format: "hessian λ_max      %.4f  (%d Lanczos steps)", lambda, used))
            if topK > 1 { print("hessian top \(topK)      " + top.map { String(format: "%.4f", $0) }.joined(separator: "  ")) }
            print(String(format: "m-sharpness        %.5f  (ρ %.3g, m %d)", sharpness, rho, m))
            for p in line { print(String(format: "line t %+6.3f     loss %.4f", p.t, p.loss)) }
        }
    }
}
