import ArgumentParser
import Foundation
import SAMTrain

struct EvalCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "eval",
        abstract: "Evaluate a checkpoint on the test set (any rank count)."
    )

    @OptionGroup var source: CheckpointSource

    func run() throws {
        MPIJob.run { world in
            let loaded = try source.load(world: world)
            let (loss, accuracy) = Evaluation.run(model: loaded.model, dataset: loaded.test, world: world)
            if world.isCoordinator {
                // Counts are interpolated: %d would print a 64-bit step as 32 bits.
                print("checkpoint \(source.checkpoint) (step \(loaded.step)): " + String(format: "test_loss %.4f  test_acc %.4f", loss, accuracy)
                      + "  (\(loaded.test.count) examples, \(world.size) rank(s)) on \(loaded.dataDirectory)")
            }
        }
    }
}
