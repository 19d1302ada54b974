import ArgumentParser
import Foundation
import SAMTrain

/// `samtrain data`: tools for a user's own dataset files.
struct DataCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "data",
        abstract: "Check a dataset file of your own (--dataset arrays).",
        subcommands: [InspectCommand.self]
    )
}

struct InspectCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "inspect",
        abstract: "List an arrays file's arrays, shapes, dtypes, examples and class counts per split, and its normalization; exit 1 with every problem train would refuse it for."
    )

    @Argument(help: "A .npz or .safetensors file (launch/make-dataset writes one).")
    var file: String

    func run() throws {
        let inspected: (lines: [String], accepted: Bool)
        do {
            inspected = try ArraysFile.read(path: file).inspection()
        } catch let error as SAMTrainError {
            FileHandle.standardError.write(Data("samtrain: \(error.message)\n".utf8))
            throw ExitCode(1)
        }
        print(inspected.lines.joined(separator: "\n"))
        if !inspected.accepted { throw ExitCode(1) }
    }
}
