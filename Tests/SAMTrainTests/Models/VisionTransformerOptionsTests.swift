import Foundation
import XCTest
@testable import SAMTrain
@testable import samtrain

/// A ViT of any shape from `--vit-width`, `--vit-depth`, `--vit-heads`, `--patch-size` and
/// `--vit-mlp-ratio` (docs/algorithms.md §7.3): its size is timm's, bad values are one message,
/// a resume compares the shape, and a run's checkpoint is rebuilt by `eval`.
final class VisionTransformerOptionsTests: XCTestCase {
    /// timm's `VisionTransformer` parameter count: cls_token d, pos_embed (T + 1)·d, the patch
    /// embedding C·P²·d + d, per block 2 LayerNorms (4d), qkv 3d² + 3d, proj d² + d,
    /// fc1 r·d² + r·d, fc2 r·d² + d, the final LayerNorm 2d and the head d·K + K. The heads
    /// split the width without adding parameters.
    static func timmParameters(width d: Int, depth: Int, patch p: Int, mlpRatio r: Int, shape: [Int], classes k: Int) -> Int {
        let tokens = (shape[1] / p) * (shape[2] / p)
        let block = 4 * d + (3 * d * d + 3 * d) + (d * d + d) + (r * d * d + r * d) + (r * d * d + d)
        return d + (tokens + 1) * d + (shape[0] * p * p * d + d) + depth * block + 2 * d + (d * k + k)
    }

    func configuration(_ arguments: [String]) throws -> ModelConfiguration {
        try TrainCommand.configuration(arguments: arguments).model.configuration
    }

    /// The presets are docs/algorithms.md §7.1's sizes, by the formula too.
    func testPresetsKeepTheSpecsParameterCounts() throws {
        for (name, shape, parameters) in [("vit-t4", [3, 32, 32], 5_362_762), ("vit-t4", [1, 28, 28], 5_353_738),
                                          ("vit-s4", [3, 32, 32], 21_342_346), ("vit-s4", [1, 28, 28], 21_324_298)] {
            let c = VisionTransformer.preset(name)!
            XCTAssertEqual(Self.timmParameters(width: c.width, depth: c.depth, patch: c.patch, mlpRatio: c.mlpRatio, shape: shape, classes: 10),
                           parameters, name)
            // The preset's own values given as flags are the preset.
            let given = try configuration(["--model", name, "--vit-width", "\(c.width)", "--vit-depth", "12", "--patch-size", "4"])
            XCTAssertEqual(given.build(inputShape: shape).store.count, parameters, "\(name) \(shape)")
        }
    }

    func testFlagsBuildTheShapeTheyName() throws {
        let cases: [(arguments: [String], width: Int, depth: Int, heads: Int, patch: Int, ratio: Int, shape: [Int], classes: Int)] = [
            (["--model", "vit-t4", "--vit-width", "16", "--vit-depth", "2", "--vit-heads", "2"], 16, 2, 2, 4, 4, [1, 28, 28], 10),
            (["--model", "vit-t4", "--vit-width", "48", "--vit-depth", "3", "--vit-heads", "4", "--patch-size", "7", "--vit-mlp-ratio", "2"],
             48, 3, 4, 7, 2, [3, 28, 14], 5),
            (["--model", "vit-s4", "--vit-depth", "1"], 384, 1, 6, 4, 4, [3, 32, 32], 100),
            (["--model", "vit-s4", "--vit-width", "8", "--vit-heads", "8", "--patch-size", "2", "--vit-depth", "2"], 8, 2, 8, 2, 4, [2, 6, 10], 3),
        ]
        for t in cases {
            let c = try configuration(t.arguments)
            XCTAssertEqual(c.settings.map(\.value.text), ["\(t.width)", "\(t.depth)", "\(t.heads)", "\(t.patch)", "\(t.ratio)"], "\(t.arguments)")
            try c.check(imageShape: t.shape, classes: t.classes, source: "data")
            let model = c.build(inputShape: t.shape, classes: t.classes)
            XCTAssertEqual(model.store.count, Self.timmParameters(width: t.width, depth: t.depth, patch: t.patch, mlpRatio: t.ratio,
                                                                  shape: t.shape, classes: t.classes), "\(t.arguments)")
            XCTAssertEqual(c.parameterCount(inputShape: t.shape, classes: t.classes), model.store.count, "known before building")
            XCTAssertEqual(model.store.parameters.filter { $0.name.hasSuffix(".attn.qkv.weight") }.count, t.depth)
            XCTAssertEqual(model.store.slot(named: "blocks.0.mlp.fc1.weight")?.shape, [t.ratio * t.width, t.width])
            // One forward pass of non-square token grids and any head count.
            var rng = SplitMix64(seed: 1)
            model.initialize(seed: 2)
            let logits = model.forward(GradientCheck.randomTensor([2] + t.shape, &rng), mode: .eval)
            XCTAssertEqual(logits.shape, [2, t.classes])
            XCTAssertTrue(logits.array.allSatisfy(\.isFinite))
            // config.json's description of the model: the shape as used.
            let d = c.description(of: model)
            XCTAssertEqual([d["width"], d["depth"], d["heads"], d["patch"], d["mlp_ratio"]].map { $0 as? Int },
                           [t.width, t.depth, t.heads, t.patch, t.ratio])
            XCTAssertEqual(d["tokens"] as? Int, (t.shape[1] / t.patch) * (t.shape[2] / t.patch) + 1)
            XCTAssertEqual(d["parameters"] as? Int, model.store.count)
        }
        // The bench builds the shape it is given.
        let bench = try BenchCommand.parse(["--model", "vit-t4", "--vit-depth", "2"]).model.configuration
        XCTAssertEqual(bench.build().store.count, Self.timmParameters(width: 192, depth: 2, patch: 4, mlpRatio: 4, shape: [3, 32, 32], classes: 10))
        XCTAssertEqual(bench.commandLine, "vit-t4 --vit-depth 2")
    }

    /// Each bad value is one message naming it.
    func testBadShapesAreOneClearMessage() throws {
        let cases: [([String], String)] = [
            (["--model", "vit-t4", "--vit-heads", "5"], "--model vit-t4 --vit-heads 5: 5 heads do not divide the width 192"),
            (["--model", "vit-s4", "--vit-width", "100"], "--model vit-s4 --vit-width 100: 6 heads do not divide the width 100"),
            (["--model", "vit-t4", "--vit-depth", "0"], "--vit-depth 0: must be a whole number from 1 to 4096"),
            (["--model", "vit-t4", "--vit-width", "0"], "--vit-width 0: must be a whole number from 1"),
            (["--model", "vit-t4", "--vit-heads", "-2"], "--vit-heads -2: must be a whole number from 1"),
            (["--model", "vit-t4", "--patch-size", "0"], "--patch-size 0: must be a whole number from 1"),
            (["--model", "vit-t4", "--vit-mlp-ratio", "0"], "--vit-mlp-ratio 0: must be a whole number from 1"),
            (["--model", "vit-t4", "--vit-width", "4096", "--vit-heads", "4", "--vit-depth", "4096"], "the blocks would hold more than"),
            (["--model", "cnn", "--vit-depth", "6"], "--vit-depth only applies to the vision transformers (--model vit-t4, vit-s4)"),
            (["--vit-width", "16"], "--vit-width only applies to the vision transformers (--model vit-t4, vit-s4)"),
            (["--model", "resnet20", "--patch-size", "2"], "--patch-size only applies to the vision transformers"),
        ]
        for (arguments, fragment) in cases {
            XCTAssertThrowsError(try TrainCommand.configuration(arguments: arguments), "\(arguments)") { e in
                XCTAssertTrue("\(e)".contains(fragment), "'\(fragment)' not in \(e)")
            }
        }
        // A configuration built in code is checked the same way (no division by zero heads).
        var built = try TrainingConfiguration.defaults
        built.model.model = .vitT4
        built.model.families.visionTransformers.vitHeads = 0
        XCTAssertThrowsError(try built.validate()) { e in XCTAssertTrue("\(e)".contains("--vit-heads 0: must be"), "\(e)") }
        // A patch that does not divide the images, named with the flags given.
        let patch3 = try configuration(["--model", "vit-t4", "--patch-size", "3"])
        XCTAssertThrowsError(try patch3.check(imageShape: [1, 28, 28], classes: 10, source: "data")) { e in
            XCTAssertTrue("\(e)".contains("data: --model vit-t4 --patch-size 3: patch 3 does not divide the 28×28 images"), "\(e)")
        }
        XCTAssertThrowsError(try patch3.check(imageShape: [1, 2, 3], classes: 10, source: "data")) { e in
            XCTAssertTrue("\(e)".contains("needs height and width ≥ 3"), "\(e)")
        }
        try configuration(["--model", "vit-t4", "--patch-size", "7"]).check(imageShape: [1, 28, 28], classes: 10, source: "data")
        // The command lines say it before MPI starts (train, bench, eval).
        try Subprocess.expectFailure(["train", "--model", "cnn", "--vit-depth", "6"], naming: ["--vit-depth only applies to the vision transformers"])
        try Subprocess.expectFailure(["bench", "--model", "vit-t4", "--patch-size", "3"], naming: ["--patch-size 3: patch 3 does not divide the 32×32 images"])
        try Subprocess.expectFailure(["eval", "--checkpoint", "x.safetensors", "--vit-depth", "6"], naming: ["--vit-depth shapes a plain state_dict's --model"])
        try Subprocess.expectFailure(["eval", "--checkpoint", "x.safetensors", "--model", "mlp", "--vit-depth", "6"], naming: ["--vit-depth only applies"])
    }

    /// `--init` weights of another depth or width are refused as before, naming the model's shape.
    func testWeightsOfAnotherShapeAreRefused() throws {
        func file(_ c: VisionTransformer.Configuration) -> [UInt8] {
            SafeTensorsFile.stateDict(of: VisionTransformer.build(configuration: c, inputShape: [1, 28, 28], classes: 10)).encoded()
        }
        let six = file(.init(width: 32, depth: 6, heads: 2, patch: 4))
        let target = try configuration(["--model", "vit-t4", "--vit-width", "32", "--vit-depth", "4", "--vit-heads", "2"])
        XCTAssertThrowsError(try StateDict(bytes: six, source: "six.safetensors")
            .load(into: target.build(inputShape: [1, 28, 28]), named: target.commandLine, freshHead: true)) { e in
            let message = "\(e)"
            XCTAssertTrue(message.contains("does not fit --model vit-t4 --vit-width 32 --vit-depth 4 --vit-heads 2")
                          && message.contains("the file has 6 blocks.K modules, the model 4"), message)
        }
        let wide = try configuration(["--model", "vit-t4", "--vit-width", "64", "--vit-depth", "6", "--vit-heads", "2"])
        XCTAssertThrowsError(try StateDict(bytes: six, source: "six.safetensors")
            .load(into: wide.build(inputShape: [1, 28, 28]), named: wide.commandLine, freshHead: true)) { e in
            XCTAssertTrue("\(e)".contains("cls_token is [1, 1, 32] in the file, [1, 1, 64] in the model"), "\(e)")
        }
        let same = try configuration(["--model", "vit-s4", "--vit-width", "32", "--vit-depth", "6", "--vit-heads", "2"])
        let report = try StateDict(bytes: six, source: "six.safetensors")
            .load(into: same.build(inputShape: [1, 28, 28]), named: same.commandLine, freshHead: true)
        XCTAssertEqual(report.loaded.count, 4 + 6 * 12 + 4)
    }

    /// The shape is result-defining: recorded resolved (the preset filled in), compared on resume.
    func testResumeComparesTheShape() throws {
        func settings(_ arguments: [String]) throws -> [String: String] {
            try TrainCommand.configuration(arguments: arguments).resultDefiningSettings
        }
        let six = try settings(["--model", "vit-t4", "--vit-depth", "6"])
        XCTAssertEqual(six["vit_depth"], "6")
        XCTAssertEqual(six["vit_width"], "192")
        XCTAssertEqual(six["patch_size"], "4")
        XCTAssertEqual(RunCheckpoints.settingDifferences(saved: six, now: try settings(["--model", "vit-t4", "--vit-depth", "8"])),
                       ["vit_depth: checkpoint 6, now 8"])
        XCTAssertEqual(RunCheckpoints.settingDifferences(saved: six, now: try settings(["--model", "vit-t4", "--vit-depth", "6", "--patch-size", "2"])),
                       ["patch_size: checkpoint 4, now 2"])
        // The preset's values given as flags are the preset.
        let preset = try settings(["--model", "vit-t4"])
        XCTAssertEqual(RunCheckpoints.settingDifferences(saved: preset, now: try settings(["--model", "vit-t4", "--vit-depth", "12", "--vit-heads", "3"])), [])
        // A checkpoint written before the flags existed was its model's preset.
        let legacy = preset.filter { !$0.key.hasPrefix("vit_") && $0.key != "patch_size" }
        XCTAssertEqual(RunCheckpoints.settingDifferences(saved: legacy, now: preset), [])
        XCTAssertEqual(RunCheckpoints.settingDifferences(saved: legacy, now: six), ["vit_depth: checkpoint ?, now 6"])
        // Other models record none of them.
        XCTAssertTrue(try settings(["--model", "resnet20"]).keys.allSatisfy { !$0.hasPrefix("vit_") && $0 != "patch_size" })
        // A checkpoint's recorded settings rebuild the shape; a legacy one its preset.
        XCTAssertEqual(try ModelConfiguration(recorded: six, source: "c").settings.map(\.value.text), ["192", "6", "3", "4", "4"])
        XCTAssertEqual(try ModelConfiguration(recorded: legacy, source: "c").settings.map(\.value.text), ["192", "12", "3", "4", "4"])
        XCTAssertThrowsError(try ModelConfiguration(recorded: ["model": "vit-t4", "vit_depth": "many"], source: "c.safetensors")) { e in
            XCTAssertTrue("\(e)".contains("c.safetensors: the checkpoint's model settings do not parse"), "\(e)")
        }
    }

    /// A tiny ViT of its own shape trains under two ranks; `eval` rebuilds it from the
    /// checkpoint's settings, or from the flags for the file read as a state_dict; a resume
    /// of another depth is refused; a plain state_dict of 6 blocks evaluates with --vit-depth 6.
    func testTinyViTTrainsUnderTwoRanksAndItsCheckpointEvaluates() throws {
        try Subprocess.requireFashionMNIST()
        let dir = Subprocess.temporaryDirectory("samtrain-vit-shape")
        defer { try? FileManager.default.removeItem(at: dir) }
        let out = dir.appendingPathComponent("run").path
        let shape = ["--model", "vit-t4", "--vit-width", "16", "--vit-depth", "2", "--vit-heads", "2"]
        let run = ["--optimizer", "adamw", "--lr", "1e-3", "--max-steps", "4", "--batch-size", "16", "--train-subset", "64",
                   "--test-subset", "64", "--out", out]
        let r = try Subprocess.mpirun(2, ["train"] + shape + run + ["--log-every", "1", "--report-digests"], timeout: 120)
        XCTAssertEqual(r.status, 0, r.output)
        XCTAssertTrue(r.stdout.contains("samtrain: vit-t4 --vit-width 16 --vit-depth 2 --vit-heads 2 (7850 parameters)"), r.output)
        XCTAssertTrue(r.stdout.contains("done: 4 steps"), r.output)
        let digests = r.stdout.split(separator: "\n").filter { $0.hasPrefix("rank ") && $0.contains("parameter digest") }
            .map { $0.split(separator: " ").last! }
        XCTAssertEqual(digests.count, 2, r.output)
        XCTAssertEqual(Set(digests).count, 1, "ranks disagree: \(digests)")

        // config.json: the flags, resolved, and the model as built.
        let config = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: out + "/config.json"))) as! [String: Any]
        let settings = try XCTUnwrap(config["settings"] as? [String: Any])
        XCTAssertEqual(["vit_width", "vit_depth", "vit_heads", "patch_size", "vit_mlp_ratio"].map { settings[$0] as? Int }, [16, 2, 2, 4, 4])
        let model = try XCTUnwrap(config["model"] as? [String: Any])
        XCTAssertEqual(model["name"] as? String, "vit-t4")
        XCTAssertEqual(model["depth"] as? Int, 2)
        XCTAssertEqual(model["tokens"] as? Int, 50)
        XCTAssertEqual(model["parameters"] as? Int, Self.timmParameters(width: 16, depth: 2, patch: 4, mlpRatio: 4, shape: [1, 28, 28], classes: 10))

        // eval rebuilds the shape from the run's settings, and from the flags for a state_dict.
        let checkpoint = try XCTUnwrap(CheckpointDirectory.list(out).first)
        let accuracy = { (r: Subprocess.Result) in r.stdout.components(separatedBy: "test_acc ").last?.prefix(6) }
        let byRun = try Subprocess.mpirun(2, ["eval", "--checkpoint", checkpoint, "--test-subset", "300"])
        XCTAssertEqual(byRun.status, 0, byRun.output)
        let byFlags = try Subprocess.mpirun(1, ["eval", "--checkpoint", checkpoint, "--test-subset", "300"] + shape)
        XCTAssertEqual(byFlags.status, 0, byFlags.output)
        XCTAssertNotNil(accuracy(byRun))
        XCTAssertEqual(accuracy(byRun), accuracy(byFlags), byRun.output + byFlags.output)

        // A damaged checkpoint whose settings record a 2-billion-parameter shape is refused
        // before the model is allocated.
        var damaged = try SafeTensors.decode([UInt8](Data(contentsOf: URL(fileURLWithPath: checkpoint))), source: checkpoint)
        var recorded = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(damaged.metadata["settings"]!.utf8)) as? [String: String])
        (recorded["vit_width"], recorded["vit_depth"]) = ("4096", "10")
        damaged.metadata["settings"] = String(decoding: try JSONSerialization.data(withJSONObject: recorded), as: UTF8.self)
        let huge = dir.appendingPathComponent("huge.safetensors").path
        try Data(SafeTensors.encode(damaged)).write(to: URL(fileURLWithPath: huge))
        try Subprocess.expectFailure(["eval", "--checkpoint", huge, "--test-subset", "10"],
                                     naming: ["recorded --model vit-t4 --vit-width 4096 --vit-depth 10 --vit-heads 2", "but the checkpoint holds"], within: 30)

        // A resume of another depth is refused, naming it.
        try Subprocess.expectFailure(["train", "--model", "vit-t4", "--vit-width", "16", "--vit-depth", "3", "--vit-heads", "2"] + run + ["--resume", out],
                                     naming: ["vit_depth: checkpoint 2, now 3"], within: 30)

        // A plain state_dict of 6 blocks (a timm ViT's names): --vit-depth 6 evaluates it, 5 names the depth.
        let plain = dir.appendingPathComponent("vit6.safetensors").path
        let six = VisionTransformer.build(configuration: .init(width: 32, depth: 6, heads: 4, patch: 4), inputShape: [1, 28, 28], classes: 10)
        six.initialize(seed: 1)
        try SafeTensorsFile.stateDict(of: six).write(to: plain)
        let flags = ["--model", "vit-t4", "--vit-width", "32", "--vit-heads", "4"]
        let e6 = try Subprocess.mpirun(2, ["eval", "--checkpoint", plain, "--vit-depth", "6", "--test-subset", "100"] + flags)
        XCTAssertEqual(e6.status, 0, e6.output)
        XCTAssertTrue(e6.stdout.contains("state_dict \(plain): test_loss"), e6.output)
        try Subprocess.expectFailure(["eval", "--checkpoint", plain, "--vit-depth", "5"] + flags,
                                     naming: ["does not fit --model vit-t4 --vit-width 32 --vit-depth 5 --vit-heads 4", "the file has 6 blocks.K modules, the model 5"],
                                     within: 30)
    }
}
