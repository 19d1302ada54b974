import Foundation
import XCTest
@testable import SAMTrain

/// The vision transformers of docs/algorithms.md §7: their sizes, their refusals, timm's
/// initialization, their correspondence to timm's `VisionTransformer` (state_dict names,
/// shapes and order; logits), and a short data-parallel training run.
final class VisionTransformerTests: XCTestCase {
    /// docs/algorithms.md §7.1: parameters and forward FLOPs per image for 3×32×32 / 1×28×28
    /// inputs and 10 classes.
    static let table: [(Architecture, [Int], Int, Double)] = [
        (.vitT4, [3, 32, 32], 5_362_762, 0.730e9), (.vitT4, [1, 28, 28], 5_353_738, 0.554e9),
        (.vitS4, [3, 32, 32], 21_342_346, 2.841e9), (.vitS4, [1, 28, 28], 21_324_298, 2.170e9),
    ]

    func testParameterCountsAndFLOPsAreTheSpecs() {
        for (architecture, shape, parameters, flops) in Self.table {
            let model = architecture.build(inputShape: shape, classes: 10)
            let what = "\(architecture.rawValue) \(shape)"
            XCTAssertEqual(model.store.count, parameters, what)
            // The table rounds to three or four significant digits.
            XCTAssertEqual(model.forwardFLOPsPerExample / flops, 1, accuracy: 0.002, "\(what): \(model.forwardFLOPsPerExample)")
        }
        XCTAssertEqual(Architecture.vitT4.defaultInputShape, [3, 32, 32])
        XCTAssertEqual(Architecture.vitS4.defaultInputShape, [3, 32, 32])
    }

    func testImagesThePatchDoesNotDivideAreRefused() throws {
        XCTAssertThrowsError(try Architecture.vitT4.check(imageShape: [3, 30, 30], classes: 10, source: "data")) { error in
            XCTAssertTrue("\(error)".contains("--model vit-t4: patch 4 does not divide the 30×30 images"), "\(error)")
        }
        XCTAssertThrowsError(try Architecture.vitS4.check(imageShape: [1, 28, 30], classes: 10, source: "data"))
        XCTAssertThrowsError(try Architecture.vitT4.check(imageShape: [1, 2, 2], classes: 10, source: "data"))
        try Architecture.vitT4.check(imageShape: [1, 28, 28], classes: 10, source: "data")
        try Architecture.vitS4.check(imageShape: [3, 8, 12], classes: 2, source: "data")
        let odd = VisionTransformer.Configuration(width: 10, depth: 1, heads: 3, patch: 2)
        XCTAssertEqual(odd.mismatch(imageShape: [1, 4, 4], model: "x"), "--model x: 3 heads do not divide the width 10")
    }

    /// Only the head is one row per example: it is the one rank-one factored weight (`--m 1`),
    /// and the last tensor registered (the classifier head of fine-tuning).
    func testOnlyTheHeadIsFactoredAndItComesLast() {
        let model = Architecture.vitT4.build(inputShape: [1, 8, 8], classes: 5)
        let store = model.store
        XCTAssertEqual(store.rankOne.factors.map { store.parameters[$0.slot].name }, ["head.weight"])
        XCTAssertEqual(store.parameters.suffix(2).map(\.name), ["head.weight", "head.bias"])
        XCTAssertEqual(StateDict.headPrefix(of: model), "head.")
        // LayerNorm tensors are normalization tensors (SAM-ON perturbs them); cls_token and pos_embed offsets.
        for slot in store.parameters {
            if slot.name.contains("norm") { XCTAssertTrue([.normWeight, .normBias].contains(slot.role), slot.name) }
            if ["cls_token", "pos_embed"].contains(slot.name) { XCTAssertEqual(slot.role, .bias, slot.name) }
        }
    }

    /// timm's defaults: Linear weights N(0, 0.02²), biases 0, pos_embed N(0, 0.02²), cls_token
    /// N(0, 1e-12), LayerNorm γ 1, β 0, the patch embedding U(±1/√(C·P²)).
    func testInitializationIsTimms() {
        let model = Architecture.vitT4.build(inputShape: [3, 32, 32], classes: 10)
        model.initialize(seed: 3)
        let store = model.store
        func values(_ name: String) -> [Float] {
            let slot = store.slot(named: name)!
            return Array(UnsafeBufferPointer(start: store.values.data + slot.offset, count: slot.count))
        }
        func std(_ v: [Float]) -> Double {
            let m = v.reduce(0.0) { $0 + Double($1) } / Double(v.count)
            return (v.reduce(0.0) { $0 + (Double($1) - m) * (Double($1) - m) } / Double(v.count)).squareRoot()
        }
        for name in ["blocks.0.attn.qkv.weight", "blocks.11.mlp.fc2.weight", "pos_embed", "blocks.5.attn.proj.weight"] {
            XCTAssertEqual(std(values(name)), 0.02, accuracy: 0.001, name)
        }
        XCTAssertEqual(std(values("head.weight")), 0.02, accuracy: 0.003)
        XCTAssertEqual(std(values("cls_token")), 1e-6, accuracy: 2e-7)
        for name in ["blocks.0.attn.qkv.bias", "blocks.3.mlp.fc1.bias", "head.bias", "norm.bias", "blocks.2.norm1.bias"] {
            XCTAssertTrue(values(name).allSatisfy { $0 == 0 }, name)
        }
        XCTAssertTrue(values("blocks.7.norm2.weight").allSatisfy { $0 == 1 })
        let bound = 1 / Float(48).squareRoot()
        let patch = values("patch_embed.proj.weight") + values("patch_embed.proj.bias")
        XCTAssertTrue(patch.allSatisfy { abs($0) <= bound })
        XCTAssertEqual(std(patch), Double(bound) / 3.0.squareRoot(), accuracy: 0.01)
        // Normal draws: mean 0, variance 1, and the truncation bounds are kept.
        var rng = SplitMix64(seed: 1)
        let draws = (0..<20_000).map { _ in rng.nextStandardNormal() }
        XCTAssertEqual(draws.reduce(0, +) / 20_000, 0, accuracy: 0.03)
        XCTAssertEqual(draws.map { $0 * $0 }.reduce(0, +) / 20_000, 1, accuracy: 0.05)
        XCTAssertTrue((0..<1000).allSatisfy { _ in abs(rng.truncatedNormal(std: 1, lower: -0.5, upper: 0.5)) <= 0.5 })
    }

    /// samtrain's tensors load into timm's `VisionTransformer` with `load_state_dict(strict=True)`
    /// (same names, shapes and order), and timm computes samtrain's logits in eval mode.
    func testStateDictAndLogitsMatchTimm() throws {
        try ResidualNetworkTests.requireTorch(also: ["timm"])
        let dir = Subprocess.temporaryDirectory("samtrain-timm")
        defer { try? FileManager.default.removeItem(at: dir) }
        for (architecture, shape) in [(Architecture.vitT4, [3, 32, 32]), (.vitS4, [1, 28, 28])] {
            let model = architecture.build(inputShape: shape, classes: 10)
            model.initialize(seed: 5)
            // Every tensor away from its special initial values (LayerNorm 1/0, biases 0, cls ≈ 0).
            var rng = SplitMix64(seed: 6)
            for i in 0..<model.store.count { model.store.values[i] += rng.uniform(-0.05, 0.05) }
            let x = GradientCheck.randomTensor([3] + shape, &rng)
            let logits = model.forward(x, mode: .eval).array
            let file = dir.appendingPathComponent("\(architecture.rawValue).bin")
            var blob = model.store.values.array
            var index: [[Any]] = model.store.parameters.map { [$0.name, $0.offset, $0.count] }
            index.append(["input", blob.count, x.count])
            blob += x.array
            try blob.withUnsafeBytes { try Data($0).write(to: file) }
            let indexFile = dir.appendingPathComponent("\(architecture.rawValue).json")
            try JSONSerialization.data(withJSONObject: index).write(to: indexFile)
            let c = VisionTransformer.preset(architecture.rawValue)!
            let r = try Subprocess.run("/usr/bin/env", ["python3", "-c", Self.timmScript, file.path, indexFile.path,
                                                        "\(shape[0])", "\(shape[1])", "\(c.width)", "\(c.depth)", "\(c.heads)"],
                                       timeout: 300)
            XCTAssertEqual(r.status, 0, r.output)
            guard r.status == 0 else { continue }
            let out = try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as! [String: Any]
            let names = out["names"] as! [String], shapes = out["shapes"] as! [[Int]]
            XCTAssertEqual(model.store.parameters.map(\.name), names, "\(architecture.rawValue): not timm's state_dict names in its order")
            XCTAssertEqual(model.store.parameters.map(\.shape), shapes, "\(architecture.rawValue): not timm's shapes")
            XCTAssertTrue(model.store.bufferSlots.isEmpty)
            let theirs = (out["logits"] as! [Double]).map(Float.init)
            XCTAssertEqual(theirs.count, logits.count)
            let scale = logits.map(abs).max()!
            let worst = zip(logits, theirs).map { abs($0 - $1) }.max()!
            XCTAssertLessThan(worst, 1e-4 * scale, "\(architecture.rawValue): logits differ from timm's by \(worst) (largest \(scale))")
        }
    }

    /// The module of `../shared/peer/torch_reference.py` (`build_model` for `vit-*`).
    static let timmScript = #"""
    import json, sys
    import numpy as np
    import torch
    from timm.models.vision_transformer import VisionTransformer
    blob_path, index_path, c, side, dim, depth, heads = sys.argv[1:8]
    c, side, dim, depth, heads = int(c), int(side), int(dim), int(depth), int(heads)
    net = VisionTransformer(img_size=side, patch_size=4, in_chans=c, num_classes=10, embed_dim=dim,
                            depth=depth, num_heads=heads, mlp_ratio=4.0, qkv_bias=True, class_token=True,
                            global_pool="token")
    blob = np.fromfile(blob_path, dtype=np.float32)
    index = json.load(open(index_path))
    state = net.state_dict()
    names = list(state.keys())
    shapes = [list(v.shape) for v in state.values()]
    ours = {}
    for name, o, n in index:
        if name == "input":
            x = torch.from_numpy(blob[o:o + n].copy()).reshape(-1, c, side, side)
        else:
            ours[name] = torch.from_numpy(blob[o:o + n].copy()).reshape(state[name].shape if name in state else (n,))
    net.load_state_dict(ours, strict=True)
    net.eval()
    with torch.no_grad():
        logits = net(x)
    print(json.dumps({"names": names, "shapes": shapes, "logits": logits.flatten().tolist()}))
    """#

    /// vit-t4 trains under two ranks with AdamW (SAM's default ascent), also with shards of
    /// one example (`--m 1`, the head's gradient factored): finite losses, identical replicas.
    func testTrainsUnderTwoRanks() throws {
        try Subprocess.requireFashionMNIST()
        for extra in [[String](), ["--m", "1"]] {
            let r = try Subprocess.mpirun(2, ["train", "--model", "vit-t4", "--optimizer", "adamw", "--lr", "1e-3",
                                              "--max-steps", "3", "--batch-size", "16", "--train-subset", "64",
                                              "--test-subset", "32", "--log-every", "1", "--report-digests"] + extra,
                                          timeout: 300)
            XCTAssertEqual(r.status, 0, r.output)
            let losses = r.stdout.split(separator: "\n").filter { $0.contains(" step ") }.compactMap { line -> Double? in
                let words = line.split(separator: " ")
                return words.firstIndex(of: "loss").flatMap { Double(words[$0 + 1]) }
            }
            XCTAssertEqual(losses.count, 2, r.output)
            XCTAssertTrue(losses.allSatisfy(\.isFinite), "\(extra): \(losses)")
            XCTAssertTrue(r.stdout.contains("done: 3 steps"), r.output)
            let digests = r.stdout.split(separator: "\n").filter { $0.hasPrefix("rank ") && $0.contains("parameter digest") }
                .map { $0.split(separator: " ").last! }
            XCTAssertEqual(digests.count, 2, r.output)
            XCTAssertEqual(Set(digests).count, 1, "\(extra): ranks disagree: \(digests)")
        }
    }
}
