import Foundation
import XCTest
@testable import SAMTrain
@testable import samtrain

/// The registry is the one list of variants, and everything else follows it.
final class VariantRegistryTests: XCTestCase {
    func testEveryVariantIsDeclaredOnceAndUsable() throws {
        let names = VariantRegistry.names
        XCTAssertEqual(Set(names).count, names.count)
        XCTAssertEqual(names.count, 11)
        let shared = Set(DeclaredSettings.of(try TrainingConfiguration.defaults).map(\.key))
        let help = TrainCommand.helpMessage(columns: 200)
        for name in names {
            // --sam accepts it; its defaults validate and build the variant object.
            let c = try TrainCommand.configuration(arguments: ["--sam", name]).samConfiguration
            XCTAssertEqual(c.variant.rawValue, name)
            XCTAssertNoThrow(try c.makeVariant(), name)
            // Its own settings do not shadow the shared ones (resume compares them by key).
            XCTAssertTrue(Set(c.options.resultDefiningSettings.keys).isDisjoint(with: shared), name)
            // --help has its section, and the passes it declares are positive.
            let title = type(of: c.options).title.uppercased()
            XCTAssertTrue(help.contains(title) || name == "none", "no --help section \(title)")
            XCTAssertGreaterThan(c.options.passesPerStep, 0)
        }
        XCTAssertThrowsError(try TrainCommand.configuration(arguments: ["--sam", "nosuch"])) { e in
            XCTAssertTrue("\(e)".contains("esam") && "\(e)".contains("nosuch"), "\(e)")
        }
        let listed = try Subprocess.run(Subprocess.samtrain, ["variants", "--names"])
        XCTAssertEqual(listed.stdout.split(separator: "\n").map(String.init), names)
    }

    /// A variant's own validation reaches the command line as one message.
    func testVariantFlagsAreValidated() {
        for (arguments, fragment) in [(["--sam", "looksam", "--looksam-k", "0"], "--looksam-k 0"),
                                      (["--sam", "fsam", "--fsam-lambda", "1"], "--fsam-lambda 1.0"),
                                      (["--sam", "esam", "--esam-gamma", "0"], "--esam-gamma 0.0"),
                                      (["--sam", "gsam", "--rho-min", "0.1"], "--rho-min 0.1 must be ≤ --rho"),
                                      (["--sam", "vasso", "--vasso-theta", "1.5"], "--vasso-theta 1.5")] {
            XCTAssertThrowsError(try TrainCommand.configuration(arguments: arguments).samConfiguration.makeVariant(), "\(arguments)") { e in
                XCTAssertTrue("\(e)".contains(fragment), "'\(fragment)' not in \(e)")
            }
        }
    }
}
