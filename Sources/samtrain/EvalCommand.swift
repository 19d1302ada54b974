import ArgumentParser
import Foundation
import SAMTrain

struct EvalCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "eval",
        abstract: "Evaluate a checkpoint or a PyTorch state_dict on the test set (any rank count).",
        discussion: "samtrain eval --checkpoint run/checkpoint-final.safetensors\nsamtrain eval --checkpoint resnet20.safetensors --model resnet20 --dataset arrays --data mine.npz --logits logits.npy"
    )

    @OptionGroup var source: CheckpointSource

    @Option(help: ArgumentHelp("Also write the test logits (N×classes float32, test-set order) to this .npy file.", valueName: "file"))
    var logits: String?

    func run() throws {
        MPIJob.run { world in
            let loaded = try source.load(world: world)
            if world.isCoordinator, let report = loaded.report {
                print("state_dict \(source.checkpoint): " + report.lines.joined(separator: "; "))
            }
            let (loss, accuracy) = Evaluation.run(model: loaded.model, dataset: loaded.test, world: world)
            if world.isCoordinator {
                // Counts are interpolated: %d would print a 64-bit step as 32 bits.
                let what = loaded.report == nil ? "checkpoint \(source.checkpoint) (step \(loaded.step))" : "state_dict \(source.checkpoint)"
                print("\(what): " + String(format: "test_loss %.4f  test_acc %.4f", loss, accuracy)
                      + "  (\(loaded.test.count) examples, \(world.size) rank(s)) on \(loaded.dataDirectory)")
            }
            if let logits {
                let values = Evaluation.logits(model: loaded.model, dataset: loaded.test, world: world)
                try world.agree {
                    guard world.isCoordinator else { return }
                    try AtomicFile.write(NPY.encode(float32: values, shape: [loaded.test.count, loaded.test.classes]), to: logits)
                    print("logits: \(loaded.test.count)×\(loaded.test.classes) written to \(logits)")
                }
            }
        }
    }
}
