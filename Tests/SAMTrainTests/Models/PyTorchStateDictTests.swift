import Foundation
import XCTest
@testable import SAMTrain

/// PyTorch → samtrain (docs/algorithms.md §7.9): a PyTorch module trained a few steps (weights
/// and BatchNorm statistics away from their defaults) and saved with
/// `safetensors.torch.save_file(module.state_dict(), FILE)` gives PyTorch's logits in samtrain,
/// through `samtrain eval --model` (2 ranks) and through `train --init` (the Trainer's start);
/// likewise timm's `VisionTransformer` for vit-t4.
final class PyTorchStateDictTests: XCTestCase {
    /// The models, their input shape (C, H, W) and the data file's format.
    static let cases: [(Architecture, [Int], String)] = [
        (.cnn, [1, 28, 28], "safetensors"),
        (.resnet20, [3, 32, 32], "npz"),
        (.wrn16_8, [3, 32, 32], "safetensors"),
        (.vitT4, [1, 28, 28], "npz"),
    ]

    func testPyTorchWeightsGiveTheirLogits() throws {
        try ResidualNetworkTests.requireTorch(also: ["safetensors", "timm"])
        let dir = Subprocess.temporaryDirectory("samtrain-state-dict")
        defer { try? FileManager.default.removeItem(at: dir) }
        for (architecture, shape, format) in Self.cases {
            let name = architecture.rawValue
            let weights = dir.appendingPathComponent("\(name).safetensors").path
            let data = dir.appendingPathComponent("\(name)-data.\(format)").path
            let theirs = dir.appendingPathComponent("\(name)-torch.npy").path
            let made = try Subprocess.run("/usr/bin/env", ["python3", "-c", Self.script, "make", name] + shape.map(String.init) + [weights, data, theirs],
                                          timeout: 600)
            XCTAssertEqual(made.status, 0, made.output)
            guard made.status == 0 else { continue }

            // samtrain eval --model, 2 ranks, logits written by rank 0.
            let ours = dir.appendingPathComponent("\(name)-samtrain.npy").path
            let eval = try Subprocess.mpirun(2, ["eval", "--checkpoint", weights, "--model", name, "--dataset", "arrays",
                                                 "--data", data, "--logits", ours], timeout: 300)
            XCTAssertEqual(eval.status, 0, eval.output)
            if architecture != .vitT4 {
                XCTAssertTrue(eval.stdout.contains("ignored (BatchNorm's step counter"), "num_batches_tracked is reported as ignored: \(eval.stdout)")
            }
            let compared = try Subprocess.run("/usr/bin/env", ["python3", "-c", Self.script, "compare", theirs, ours])
            XCTAssertEqual(compared.status, 0, "\(name) eval: \(compared.output)")

            // train --init: the Trainer's model before its first step.
            let configuration = try TrainingConfiguration.parse(commandLine: [
                "--dataset", "arrays", "--data", data, "--model", name, "--init", weights, "--batch-size", "4", "--max-steps", "1"])
            let world = Communicator.world()
            let trainer = try Trainer(configuration: configuration, world: world, log: Reporter(rank: 1))
            let logits = Evaluation.logits(model: trainer.model, dataset: trainer.test, world: world)
            let initialized = dir.appendingPathComponent("\(name)-init.npy").path
            try AtomicFile.write(NPY.encode(float32: logits, shape: [trainer.test.count, trainer.test.classes]), to: initialized)
            let again = try Subprocess.run("/usr/bin/env", ["python3", "-c", Self.script, "compare", theirs, initialized])
            XCTAssertEqual(again.status, 0, "\(name) --init: \(again.output)")
        }
    }

    /// Makes the PyTorch side (`make`) and compares logits (`compare`).
    static let script = #"""
    import sys
    import numpy as np

    if sys.argv[1] == "compare":
        theirs, ours = np.load(sys.argv[2]), np.load(sys.argv[3])
        assert theirs.shape == ours.shape, (theirs.shape, ours.shape)
        scale = max(1.0, float(np.abs(theirs).max()))
        worst = float(np.abs(theirs - ours).max())
        print(f"worst |Δlogit| {worst:.3g} of scale {scale:.3g}")
        sys.exit(0 if worst <= 1e-4 * scale else 1)

    import torch, torch.nn as nn, torch.nn.functional as F
    from safetensors.torch import save_file
    import safetensors.numpy
    name, c, h, w, weights, data, logits_path = sys.argv[2], *map(int, sys.argv[3:6]), *sys.argv[6:9]
    torch.manual_seed(0)

    # The PyTorch modules samtrain's models follow (docs/algorithms.md §7), named as samtrain names them.
    def cnn():
        def cbr(i, o): return [nn.Conv2d(i, o, 3, padding=1, bias=False), nn.BatchNorm2d(o), nn.ReLU()]
        return nn.Sequential(*cbr(c, 32), *cbr(32, 32), nn.MaxPool2d(2), *cbr(32, 64), *cbr(64, 64), nn.MaxPool2d(2),
                             nn.Flatten(), nn.Linear(64 * (h // 4) * (w // 4), 256), nn.ReLU(), nn.Linear(256, 10))

    class ShortcutA(nn.Module):
        def __init__(self, planes): super().__init__(); self.pad = planes // 4
        def forward(self, x): return F.pad(x[:, :, ::2, ::2], (0, 0, 0, 0, self.pad, self.pad))
    class Block(nn.Module):
        def __init__(self, i, o, stride):
            super().__init__()
            self.conv1 = nn.Conv2d(i, o, 3, stride, 1, bias=False); self.bn1 = nn.BatchNorm2d(o)
            self.conv2 = nn.Conv2d(o, o, 3, 1, 1, bias=False); self.bn2 = nn.BatchNorm2d(o)
            self.shortcut = ShortcutA(o) if stride != 1 or i != o else nn.Identity()
        def forward(self, x):
            return F.relu(self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x))))) + self.shortcut(x))
    class ResNet20(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv1 = nn.Conv2d(c, 16, 3, 1, 1, bias=False); self.bn1 = nn.BatchNorm2d(16)
            layers, i = [], 16
            for o, stride in ((16, 1), (32, 2), (64, 2)):
                for b in range(3): layers.append(Block(i, o, stride if b == 0 else 1)); i = o
            self.layers = nn.Sequential(*layers); self.fc = nn.Linear(64, 10)
        def forward(self, x):
            return self.fc(F.adaptive_avg_pool2d(self.layers(F.relu(self.bn1(self.conv1(x)))), 1).flatten(1))

    \#(ResidualNetworkTests.wideResNetPython)
    def wrn16_8(): return WideResNet(16, 8, c=c)

    def vit():   # timm's own module, as the peer builds it
        from timm.models.vision_transformer import VisionTransformer
        return VisionTransformer(img_size=h, patch_size=4, in_chans=c, num_classes=10, embed_dim=192, depth=12,
                                 num_heads=3, mlp_ratio=4.0, qkv_bias=True, class_token=True, global_pool="token")

    net = {"cnn": cnn, "resnet20": ResNet20, "wrn16-8": wrn16_8, "vit-t4": vit}[name]()
    # A few SGD steps in train mode: weights and BatchNorm running statistics leave their defaults.
    rng = np.random.default_rng(1)
    opt = torch.optim.SGD(net.parameters(), lr=0.05, momentum=0.9)
    net.train()
    for _ in range(3):
        x = torch.randn(8, c, h, w); y = torch.randint(0, 10, (8,))
        opt.zero_grad(); F.cross_entropy(net(x), y).backward(); opt.step()
    save_file(net.state_dict(), weights)

    # The data: uint8 images, channels last, with their own mean and std.
    n = 12
    images = rng.integers(0, 256, size=(n, h, w, c), dtype=np.uint8)
    labels = rng.integers(0, 10, size=n).astype(np.int64)
    labels[:2] = [0, 9]   # the class count (largest label + 1) is 10
    mean = rng.uniform(0.3, 0.6, size=c).astype(np.float32); std = rng.uniform(0.2, 0.3, size=c).astype(np.float32)
    arrays = {"train_images": images[:8] if c > 1 else images[:8, :, :, 0], "train_labels": labels[:8],
              "test_images": images if c > 1 else images[:, :, :, 0], "test_labels": labels, "mean": mean, "std": std}
    if data.endswith(".npz"): np.savez(data, **arrays)
    else: safetensors.numpy.save_file(arrays, data)
    x = torch.from_numpy(((images.astype(np.float32) / 255 - mean) / std).transpose(0, 3, 1, 2).copy())
    net.eval()
    with torch.no_grad():
        np.save(logits_path, net(x).numpy().astype(np.float32))
    """#
}
