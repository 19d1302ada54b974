import Foundation
import XCTest
@testable import SAMTrain

/// The ViT under the whole SAM family and the ViT recipe (issue 28): every variant and scope
/// steps a small ViT; SAM-ON's ε lives on the LayerNorms' γ and β; and the recipe (AdamW,
/// warm-up, cosine, label smoothing 0.1, clipping at norm 1, SAM) trains under two ranks with
/// checkpoints, an exact resume, TensorBoard and the sharpness probes, unchanged.
final class VisionTransformerTrainingTests: XCTestCase {
    /// 16 wide, 1 block, 2 heads, 7×7 patches of 1×28×28 images: 17 tokens.
    static let small = VisionTransformer.Configuration(width: 16, depth: 1, heads: 2, patch: 7)
    static let smallFlags = ["--model", "vit-t4", "--vit-width", "16", "--vit-depth", "2", "--vit-heads", "2", "--patch-size", "7"]

    func smallViT() -> Sequential {
        let model = VisionTransformer.build(configuration: Self.small, inputShape: [1, 28, 28], classes: 10,
                                            convolution: ConvolutionSettings())
        model.initialize(seed: 4)
        return model
    }

    func testEveryVariantAndScopeStepsTheViT() throws {
        var rng = SplitMix64(seed: 9)
        let images = GradientCheck.randomTensor([8, 1, 28, 28], &rng)
        let labels = (0..<8).map { Int32($0 % 10) }
        for variant in VariantRegistry.names {
            for (scope, m) in [(ScopeName.shard, 4), (.global, nil)] {
                let model = smallViT()
                let before = model.store.values.array
                var sam = SAMConfiguration(variant)
                sam.scopeName = scope
                sam.m = m
                sam.clipGradNorm = 1
                let settings = StepSettings(sam: sam, optimizer: .adamW(beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.05),
                                            labelSmoothing: 0.1, globalBatch: 8)
                let step = try SAMStep.make(model: model, settings: settings, world: Communicator.world())
                for t in 0..<2 {
                    let s = step.run(images: images, labels: labels, context: StepContext(step: t, learningRate: 1e-3, maximumLearningRate: 1e-3,
                                                                                          minimumLearningRate: 0))
                    XCTAssertTrue(s.lossAtWSum.isFinite && s.examples == 8, "\(variant) \(scope): \(s)")
                }
                let after = model.store.values.array
                XCTAssertTrue(after.allSatisfy(\.isFinite), "\(variant) \(scope)")
                XCTAssertNotEqual(after, before, "\(variant) \(scope) did not move the weights")
            }
        }
    }

    /// SAM-ON perturbs exactly the LayerNorms' γ and β: norm1, norm2 of each block and the
    /// final norm (its paper covers LayerNorm as well as BatchNorm).
    func testSAMONPerturbsTheLayerNorms() throws {
        let model = smallViT()
        let normalization = model.store.parameters.filter { SAMON.isNormalization($0.role) }.map(\.name)
        XCTAssertEqual(Set(normalization), ["blocks.0.norm1.weight", "blocks.0.norm1.bias", "blocks.0.norm2.weight",
                                            "blocks.0.norm2.bias", "norm.weight", "norm.bias"])
        XCTAssertNoThrow(try SAMConfiguration("samon").makeVariant().check(model: model))
    }

    /// The recipe under two ranks, stopped at step 8 and resumed: the uninterrupted run's
    /// weights bit for bit; TensorBoard events and the sharpness probes work as for convnets.
    func testTheRecipeTrainsResumesAndIsProbed() throws {
        try Subprocess.requireFashionMNIST()
        let dir = Subprocess.temporaryDirectory("samtrain-vit-recipe")
        defer { try? FileManager.default.removeItem(at: dir) }
        let recipe = ["train"] + Self.smallFlags + [
            "--optimizer", "adamw", "--lr", "1e-3", "--weight-decay", "0.05", "--warmup-steps", "4",
            "--label-smoothing", "0.1", "--clip-grad-norm", "1", "--sam", "sam", "--rho", "0.05",
            "--batch-size", "32", "--train-subset", "320", "--test-subset", "100", "--epochs", "2",
            "--checkpoint-every", "4", "--report-digests"]
        func digest(_ r: Subprocess.Result) -> Substring? {
            r.stdout.split(separator: "\n").last { $0.hasPrefix("done:") }?.components(separatedBy: "parameter digest ").last?
                .split(separator: ";").first
        }
        let whole = try Subprocess.mpirun(2, recipe + ["--out", dir.appendingPathComponent("whole").path,
                                                       "--tensorboard", dir.appendingPathComponent("tb").path], timeout: 300)
        XCTAssertEqual(whole.status, 0, whole.output)
        let events = try FileManager.default.contentsOfDirectory(atPath: dir.appendingPathComponent("tb").path)
        XCTAssertTrue(events.contains { $0.hasPrefix("events.out.tfevents.") }, "\(events)")

        let halves = dir.appendingPathComponent("halves").path
        let first = try Subprocess.mpirun(2, recipe + ["--out", halves, "--max-steps", "8"], timeout: 300)
        XCTAssertEqual(first.status, 0, first.output)
        let second = try Subprocess.mpirun(2, recipe + ["--out", halves, "--resume", halves], timeout: 300)
        XCTAssertEqual(second.status, 0, second.output)
        XCTAssertNotNil(digest(whole))
        XCTAssertEqual(digest(second), digest(whole), "resumed: \(second.stdout)\nwhole: \(whole.stdout)")

        let checkpoint = try XCTUnwrap(try FileManager.default.contentsOfDirectory(atPath: halves)
            .filter { $0.hasPrefix("checkpoint-") && $0.hasSuffix(".safetensors") }.sorted().last)
        let probe = try Subprocess.mpirun(2, ["sharpness", "--checkpoint", halves + "/" + checkpoint, "--subset", "64",
                                              "--iterations", "5"], timeout: 300)
        XCTAssertEqual(probe.status, 0, probe.output)
        XCTAssertTrue(probe.stdout.contains("hessian λ_max"), probe.stdout)
    }
}
