import Foundation
import XCTest
@testable import SAMTrain
@testable import samtrain

/// The model registry is the one list of models, and every command that names a model follows it.
final class ModelRegistryTests: XCTestCase {
    func testEveryRegisteredModelIsNamedOnceAndBuilds() throws {
        let names = ModelRegistry.names
        XCTAssertEqual(names, ["mlp", "cnn", "resnet20", "resnet32", "resnet56", "wrn16-8", "wrn28-10", "resnet18", "vit-t4", "vit-s4"])
        XCTAssertEqual(Set(names).count, names.count)
        XCTAssertEqual(Architecture.allCases.map(\.rawValue), names)
        let help = TrainCommand.helpMessage(columns: 300)
        for name in names {
            // train, bench and eval accept it, and bench-allreduce's predictions.
            let c = try TrainCommand.configuration(arguments: ["--model", name]).model.configuration
            XCTAssertEqual(c.architecture.rawValue, name)
            XCTAssertEqual(try BenchCommand.parse(["--model", name]).model.model.rawValue, name)
            XCTAssertEqual(try EvalCommand.parse(["--checkpoint", "x", "--model", name]).source.model?.rawValue, name)
            XCTAssertNotNil(BenchAllreduceCommand.ScalingTarget(argument: "\(name)=10"), name)
            XCTAssertTrue(help.contains(name), "--model's help lacks \(name)")
            // It takes its default input shape, and builds for small images of any channel count.
            try c.check(imageShape: c.defaultInputShape, classes: 10, source: "data")
            let model = c.build(inputShape: [2, 8, 8], classes: 3)
            XCTAssertEqual(model.inputShape, [2, 8, 8])
            XCTAssertEqual(model.classes, 3)
            XCTAssertGreaterThan(model.store.count, 0)
            XCTAssertEqual(model.forward(Tensor(shape: [2, 2, 8, 8]), mode: .eval).shape, [2, 3], name)
        }
        // Every family is in --model's help; its flags are train's, bench's and eval's, and
        // do not shadow the shared settings (a resume compares them by key).
        let shared = Set(DeclaredSettings.of(try TrainingConfiguration.defaults).map(\.key))
        let benchHelp = BenchCommand.helpMessage(columns: 300), evalHelp = EvalCommand.helpMessage(columns: 300)
        for family in ModelRegistry.defaults.all {
            let type = type(of: family)
            XCTAssertTrue(help.contains("\(type.names.joined(separator: ", ")): \(type.summary)"), type.summary)
            let settings = ModelConfiguration(Architecture(rawValue: type.names[0])!).settings
            XCTAssertTrue(Set(settings.map(\.key)).isDisjoint(with: shared), type.summary)
            for flag in settings.map(\.flag) {
                for text in [help, benchHelp, evalHelp] { XCTAssertTrue(text.contains(flag + " "), "\(flag) is not in a --help") }
            }
        }
        XCTAssertEqual(ModelConfiguration(.vitT4).settings.map(\.flag), ["--vit-width", "--vit-depth", "--vit-heads", "--patch-size", "--vit-mlp-ratio"])
        XCTAssertTrue(ModelConfiguration(.resnet20).settings.isEmpty)
        // An unknown name lists the registry's.
        XCTAssertThrowsError(try TrainCommand.configuration(arguments: ["--model", "nosuch"])) { e in
            XCTAssertTrue("\(e)".contains("nosuch") && "\(e)".contains("vit-s4"), "\(e)")
        }
        XCTAssertThrowsError(try Architecture.named("nosuch")) { e in
            XCTAssertTrue("\(e)".contains("choose one of \(names.joined(separator: ", "))"), "\(e)")
        }
        XCTAssertNil(BenchAllreduceCommand.ScalingTarget(argument: "nosuch=10"))
    }

    /// Each family's smallest image side is what it says: one pixel less is refused by name.
    func testMinimumImageSidesAreTheFamilies() throws {
        for name in ModelRegistry.names {
            let c = ModelConfiguration(Architecture(rawValue: name)!)
            let side = c.minimumImageSide
            XCTAssertEqual(side, ["mlp": 1, "resnet18": 8, "vit-t4": 4, "vit-s4": 4][name] ?? 4, name)
            try c.check(imageShape: [1, side, side], classes: 2, source: "data")
            _ = c.build(inputShape: [1, side, side], classes: 2)
            guard side > 1 else { continue }
            XCTAssertThrowsError(try c.check(imageShape: [1, side - 1, side], classes: 2, source: "data")) { e in
                XCTAssertTrue("\(e)".contains("--model \(name)"), "\(e)")
            }
        }
    }
}
