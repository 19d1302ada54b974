import Foundation
import XCTest
@testable import SAMTrain
@testable import samtrain

/// The settings come from the flags' declarations: names, the keys a resume compares and
/// `config.json` records, and the refusal of another variant's flags.
final class SettingsTests: XCTestCase {
    /// The keys a checkpoint stores are the ones checkpoints have always stored (a resume
    /// compares them by key), derived now from the declarations.
    func testResultDefiningKeysFollowTheDeclarations() throws {
        let c = try TrainCommand.configuration(arguments: ["--sam", "gsam"])
        XCTAssertEqual(Set(c.resultDefiningSettings.keys), [
            "model", "init_exclude", "dataset", "epochs", "batch_size", "lr", "momentum", "nesterov", "weight_decay", "optimizer",
            "schedule", "warmup_steps", "seed", "train_subset", "label_noise", "label_smoothing", "augment", "cutout",
            "sam", "rho", "norm_eps", "scope", "m", "wd_in_ascent", "clip_grad_norm", "sam_every", "sam_from",
            "gsam_alpha", "rho_min", "micro_batch",
        ])
        let s = c.resultDefiningSettings
        XCTAssertEqual(s["lr"], "0.05")
        XCTAssertEqual(s["weight_decay"], "0.0005")
        XCTAssertEqual(s["train_subset"], "none")
        XCTAssertEqual(s["augment"], "none", "the dataset's default, resolved")
        XCTAssertEqual(s["label_smoothing"], "0.0", "the variant's default, resolved")
        XCTAssertEqual(s["gsam_alpha"], "0.01")
        // A variant without a radius records none; ASAM its η as used; SAM-ON its base's settings.
        XCTAssertEqual(try TrainCommand.configuration(arguments: ["--sam", "none"]).resultDefiningSettings["rho"], "none")
        XCTAssertEqual(try TrainCommand.configuration(arguments: ["--sam", "asam"]).resultDefiningSettings["asam_eta"], "0.01")
        let samon = try TrainCommand.configuration(arguments: ["--sam", "samon", "--samon-base", "asam", "--asam-scope", "all"]).resultDefiningSettings
        XCTAssertEqual(samon["samon_base"], "asam")
        XCTAssertEqual(samon["asam_scope"], "all")
        XCTAssertEqual(samon["asam_eta"], "0.0")
        // Flags that never change a result are recorded in config.json but not compared.
        let all = Dictionary(uniqueKeysWithValues: c.declaredSettings.map { ($0.key, $0) })
        for key in ["data", "test_subset", "threads", "max_steps", "out", "keep", "allreduce", "bucket_kb", "collective_timeout"] {
            XCTAssertEqual(all[key]?.definesResult, false, key)
        }
        XCTAssertEqual(c.settingsForConfigFile["batch_size"] as? Int, 128)
        XCTAssertTrue(c.settingsForConfigFile["max_steps"] is NSNull)
    }

    /// Every flag a declaration gives is a flag `train --help` shows (the derived names are
    /// ArgumentParser's).
    func testDerivedFlagNamesAreTheCommandLines() throws {
        let help = TrainCommand.helpMessage(columns: 300)
        let c = try TrainingConfiguration.defaults
        for setting in DeclaredSettings.of(c) {
            XCTAssertTrue(help.contains(setting.flag + " ") || help.contains(setting.flag + "\n"), "\(setting.flag) is not in train --help")
        }
        for name in VariantRegistry.names {
            for flag in DeclaredSettings.flags(of: type(of: VariantRegistry.defaults[name]!)) {
                XCTAssertTrue(help.contains(flag + " "), "\(flag) of \(name) is not in train --help")
            }
        }
    }

    /// A variant's flag given with another `--sam` is one error naming the flag and its variant.
    func testAnotherVariantsFlagIsRefused() throws {
        for (arguments, fragments) in [(["--sam", "sam", "--looksam-k", "3"], ["--looksam-k", "--sam looksam", "--sam sam"]),
                                       (["--sam", "none", "--gsam-alpha=0.1"], ["--gsam-alpha", "--sam gsam"]),
                                       (["--sam", "samon", "--asam-eta", "0.1"], ["--asam-eta", "--sam asam"]),
                                       (["--sam", "gsam", "--p", "3"], ["--p", "--sam sam"])] {
            XCTAssertThrowsError(try TrainCommand.configuration(arguments: arguments), "\(arguments)") { e in
                for f in fragments { XCTAssertTrue("\(e)".contains(f), "'\(f)' not in \(e)") }
            }
        }
        // SAM-ON takes its base's flags.
        XCTAssertNoThrow(try TrainCommand.configuration(arguments: ["--sam", "samon", "--samon-base", "asam", "--asam-eta", "0.1"]))
        XCTAssertNoThrow(try TrainCommand.configuration(arguments: ["--sam", "samon", "--p", "3"]))
        // The command line says it on every rank, before MPI starts.
        try Subprocess.expectFailure(["train", "--sam", "sam", "--looksam-k", "3"], naming: ["--looksam-k", "--sam looksam"])
        try Subprocess.expectFailure(["bench", "--sam", "sam", "--esam-beta", "0.2"], naming: ["--esam-beta", "--sam esam"])
    }
}
