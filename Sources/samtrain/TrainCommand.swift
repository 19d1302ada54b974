import ArgumentParser
import SAMTrain

struct TrainCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train",
        abstract: "Train a model, data-parallel over the MPI ranks; rank 0 reports."
    )

    @OptionGroup var settings: TrainingConfiguration

    /// `samtrain train ARGUMENTS` as a configuration, or the message the command line would
    /// print: what a sweep checks each cell with before any cell starts.
    static func configuration(arguments: [String]) throws -> TrainingConfiguration {
        try TrainingConfiguration.parse(commandLine: SAMTrainCommand.joiningNegativeNumbers(arguments))
    }

    func run() throws {
        let c = settings
        MPIJob.run { world in
            let trainer = try Trainer(configuration: c, world: world, log: Reporter(rank: world.rank))
            try trainer.run()
        }
    }
}

/// A command with the SAM flags: the variant flags given must belong to the chosen variant.
protocol TakesSAMOptions {
    var samConfiguration: SAMConfiguration { get }
}

extension TrainCommand: TakesSAMOptions {
    var samConfiguration: SAMConfiguration { settings.samConfiguration }
}
