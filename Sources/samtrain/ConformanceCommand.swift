import ArgumentParser
import Foundation
import SAMTrain

struct ConformanceCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "conformance",
        abstract: "Run golden vector files (../shared/vectors) and report every deviation.",
        discussion: "Under mpirun -np R (R dividing each case's batch), each rank takes its contiguous slice."
    )

    @Argument(help: "Vector files.")
    var files: [String]

    @Flag(help: "Print only one line per case.")
    var summary = false

    @Option(name: .customLong("override-m"),
            help: "Diagnostic: perturb with M examples per ε instead of each file's setting (a case of another scope must then fail).")
    var overrideM: Int?

    func run() throws {
        if let m = overrideM, m <= 0 { throw ValidationError("--override-m \(m): must be positive") }
        MPIJob.run { world in
            var failed: [String] = []
            for file in files {
                let c = try world.agree { try ConformanceCase(contentsOf: file) }
                let report = try world.agree { try ConformanceRunner.run(c, world: world, m: overrideM) }
                guard world.isCoordinator else { continue }
                if !report.passed { failed.append(report.name) }
                print(String(format: "%@  %@  (%d rank(s), %d steps, worst deviation %.3f of the tolerance)",
                             report.passed ? "PASS" : "FAIL", report.name, report.ranks, report.deviations.count, report.worstRatio))
                if summary && report.passed { continue }
                for (t, step) in report.deviations.enumerated() {
                    for d in step {
                        let name = d.quantity.padding(toLength: 34, withPad: " ", startingAt: 0)
                        print(d.missing ? "  step \(t + 1)  \(name)  MISSING"
                              : String(format: "  step %d  %@  max abs %.2e  max rel %.2e  (%.3f of tolerance)%@",
                                       t + 1, name, d.maxAbsolute, d.maxRelative, d.worstRatio, d.passed ? "" : "  FAIL"))
                    }
                }
            }
            if world.isCoordinator {
                print("\(files.count - failed.count) passed, \(failed.count) failed")
            }
            if !failed.isEmpty {
                throw AgreedFailure.everywhere("conformance failed: \(failed.joined(separator: ", "))", world: world)
            }
        }
    }
}
