import Foundation
import XCTest
@testable import SAMTrain

/// The residual networks of docs/algorithms.md §7.3: their sizes, any input shape, and their correspondence to
/// the PyTorch modules they are named after (same `state_dict` keys and shapes, same logits).
final class ResidualNetworkTests: XCTestCase {
    /// docs/algorithms.md §7.1's table: parameters (3×32×32 inputs, 10 classes) and forward FLOPs per image.
    static let table: [(Architecture, Int, Double)] = [
        (.resnet20, 269_722, 81.1e6), (.resnet32, 464_154, 137.7e6), (.resnet56, 853_018, 251.0e6),
        (.wrn16_8, 10_961_370, 3.10e9), (.wrn28_10, 36_479_194, 10.49e9), (.resnet18, 11_173_962, 1.11e9),
    ]

    func testParameterCountsAndFLOPsAreTheSpecs() {
        for (architecture, parameters, flops) in Self.table {
            let model = architecture.build(inputShape: [3, 32, 32], classes: 10)
            XCTAssertEqual(model.store.count, parameters, architecture.rawValue)
            // The table rounds to three or four significant digits.
            XCTAssertEqual(model.forwardFLOPsPerExample / flops, 1, accuracy: 0.002, "\(architecture.rawValue): \(model.forwardFLOPsPerExample)")
        }
    }

    /// A ResNet takes any C×H×W and class count (global average pooling before the classifier).
    func testAnyInputShapeAndClassCount() {
        for (architecture, shape) in [(Architecture.resnet20, [1, 28, 28]), (.resnet18, [1, 28, 28]), (.resnet32, [2, 13, 9])] {
            let model = architecture.build(inputShape: shape, classes: 7)
            model.initialize(seed: 1)
            var rng = SplitMix64(seed: 2)
            let x = GradientCheck.randomTensor([3] + shape, &rng)
            let logits = model.forward(x, mode: .train)
            XCTAssertEqual(logits.shape, [3, 7], architecture.rawValue)
            model.backward(logits)
            XCTAssertTrue(model.store.gradients.isFinite && model.store.gradients.norm() > 0, architecture.rawValue)
        }
        // 1-channel stem: 269,722 − 2·16·9 weights of the two missing input channels.
        XCTAssertEqual(Architecture.resnet20.build(inputShape: [1, 28, 28]).store.count, 269_722 - 288)
    }

    /// Training moves every ReLU of the blocks; the Hessian probes' pattern replay reaches them.
    func testActivationPatternsReachInsideTheBlocks() {
        let model = Architecture.resnet20.build(inputShape: [1, 8, 8], classes: 3)
        // stem ReLU + 9 blocks × 2 ReLUs
        XCTAssertEqual(model.piecewiseLinearLayerCount, 19)
    }

    /// Every model's parameter and buffer names and shapes are PyTorch's `state_dict` of the
    /// module it follows, and the PyTorch module loaded with samtrain's values computes
    /// samtrain's logits (eval mode with non-trivial running statistics; train mode too for
    /// resnet20, through the batch statistics).
    func testStateDictKeysAndLogitsMatchPyTorch() throws {
        try Self.requireTorch()
        let dir = Subprocess.temporaryDirectory("samtrain-pytorch")
        defer { try? FileManager.default.removeItem(at: dir) }
        let peer = Subprocess.sharedDirectory.appendingPathComponent("peer")
        let hasPeer = FileManager.default.fileExists(atPath: peer.appendingPathComponent("torch_reference.py").path)
        var skipped: [String] = []
        for (architecture, _, _) in Self.table {
            // resnet20/32/56 are compared with the peer's own module, which lives in ../shared.
            if [.resnet20, .resnet32, .resnet56].contains(architecture) && !hasPeer {
                skipped.append(architecture.rawValue)
                continue
            }
            let model = architecture.build(inputShape: [3, 32, 32], classes: 10)
            model.initialize(seed: 5)
            var rng = SplitMix64(seed: 6)
            // Running statistics away from 0 / 1, so eval mode uses them for real.
            for slot in model.store.bufferSlots {
                let p = model.store.buffers.data + slot.offset
                for i in 0..<slot.count { p[i] = slot.name.hasSuffix("running_var") ? rng.uniform(0.5, 1.5) : rng.uniform(-0.2, 0.2) }
            }
            let x = GradientCheck.randomTensor([4, 3, 32, 32], &rng)
            let modes: [(String, PassMode)] = architecture == .resnet20 ? [("eval", .eval), ("train", .trainFrozenStatistics)] : [("eval", .eval)]
            for (modeName, mode) in modes {
                let logits = model.forward(x, mode: mode).array
                let file = dir.appendingPathComponent("\(architecture.rawValue).bin")
                var index: [String: [Int]] = [:]
                var blob = model.store.values.array
                for s in model.store.parameters { index[s.name] = [s.offset, s.count] }
                for s in model.store.bufferSlots { index[s.name] = [blob.count + s.offset, s.count] }
                blob += model.store.buffers.array
                index["input"] = [blob.count, x.count]
                blob += x.array
                try blob.withUnsafeBytes { try Data($0).write(to: file) }
                let indexFile = dir.appendingPathComponent("\(architecture.rawValue).json")
                try JSONSerialization.data(withJSONObject: index).write(to: indexFile)
                let r = try Subprocess.run("/usr/bin/env", ["python3", "-c", Self.pytorchScript, architecture.rawValue, file.path,
                                                            indexFile.path, modeName, peer.path],
                                           timeout: 300)
                XCTAssertEqual(r.status, 0, r.output)
                guard r.status == 0 else { continue }
                let out = try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as! [String: Any]
                let shapes = out["shapes"] as! [String: [Int]]
                var ours: [String: [Int]] = [:]
                for s in model.store.parameters + model.store.bufferSlots { ours[s.name] = s.shape }
                XCTAssertEqual(ours, shapes, "\(architecture.rawValue): samtrain's names and shapes are not PyTorch's state_dict")
                let theirs = (out["logits"] as! [Double]).map(Float.init)
                XCTAssertEqual(theirs.count, logits.count)
                let scale = logits.map(abs).max()!
                let worst = zip(logits, theirs).map { abs($0 - $1) }.max()!
                XCTAssertLessThan(worst, 1e-3 * max(1, scale), "\(architecture.rawValue) \(modeName): logits differ from PyTorch's by \(worst)")
            }
        }
        if !skipped.isEmpty {
            throw XCTSkip("SKIPPED \(skipped.joined(separator: ", ")): the peer's module \(peer.path)/torch_reference.py is missing (set SAMTRAIN_SHARED); the other models were checked")
        }
    }

    /// torch (and the `also` modules), installed from PyPI when missing (skips with the
    /// reason where they cannot be).
    static func requireTorch(also extra: [String] = []) throws {
        let check = "import torch, numpy" + extra.map { ", " + $0 }.joined()
        if try Subprocess.run("/usr/bin/env", ["python3", "-c", check]).status == 0 { return }
        let install = try Subprocess.run("/usr/bin/env", ["python3", "-m", "pip", "install", "-q", "torch", "numpy"] + extra, timeout: 1200)
        if try Subprocess.run("/usr/bin/env", ["python3", "-c", check]).status != 0 {
            throw XCTSkip("PyTorch is not installable here (pip install torch numpy \(extra.joined(separator: " ")): \(install.stderr.suffix(300)))")
        }
    }

    /// The PyTorch modules: the peer's CIFAR ResNets, and the public definitions of the wide
    /// ResNet (xternalz/WideResNet-pytorch, dropout 0) and of the CIFAR ResNet-18
    /// (kuangliu/pytorch-cifar), written out here.
    static let pytorchScript = #"""
    import json, sys
    import numpy as np
    import torch, torch.nn as nn, torch.nn.functional as F
    name, blob_path, index_path, mode, peer = sys.argv[1:6]
    sys.path.insert(0, peer)

    \#(ResidualNetworkTests.wideResNetPython)
    class BasicBlock(nn.Module):
        def __init__(self, i, o, stride):
            super().__init__()
            self.conv1 = nn.Conv2d(i, o, 3, stride, 1, bias=False); self.bn1 = nn.BatchNorm2d(o)
            self.conv2 = nn.Conv2d(o, o, 3, 1, 1, bias=False); self.bn2 = nn.BatchNorm2d(o)
            self.shortcut = nn.Sequential()
            if stride != 1 or i != o:
                self.shortcut = nn.Sequential(nn.Conv2d(i, o, 1, stride, bias=False), nn.BatchNorm2d(o))
        def forward(self, x):
            out = F.relu(self.bn1(self.conv1(x)))
            return F.relu(self.bn2(self.conv2(out)) + self.shortcut(x))
    class ResNet18(nn.Module):
        def __init__(self, classes=10):
            super().__init__()
            self.conv1 = nn.Conv2d(3, 64, 3, 1, 1, bias=False); self.bn1 = nn.BatchNorm2d(64)
            i = 64
            for s, (o, stride) in enumerate([(64, 1), (128, 2), (256, 2), (512, 2)]):
                blocks = []
                for b in range(2):
                    blocks.append(BasicBlock(i, o, stride if b == 0 else 1)); i = o
                setattr(self, f"layer{s + 1}", nn.Sequential(*blocks))
            self.linear = nn.Linear(512, classes)
        def forward(self, x):
            out = F.relu(self.bn1(self.conv1(x)))
            out = self.layer4(self.layer3(self.layer2(self.layer1(out))))
            return self.linear(F.adaptive_avg_pool2d(out, 1).flatten(1))

    if name.startswith("resnet") and name != "resnet18":
        from torch_reference import build_model
        net = build_model(name, in_channels=3)
    elif name == "resnet18":
        net = ResNet18()
    else:
        depth, k = name[3:].split("-")
        net = WideResNet(int(depth), int(k))
    blob = np.fromfile(blob_path, dtype=np.float32)
    index = json.load(open(index_path))
    state = {k: v for k, v in net.state_dict().items() if not k.endswith("num_batches_tracked")}
    shapes = {k: list(v.shape) for k, v in state.items()}
    with torch.no_grad():
        for k, v in state.items():
            if k in index:
                o, n = index[k]
                v.copy_(torch.from_numpy(blob[o:o + n].copy()).reshape(v.shape))
        o, n = index["input"]
        x = torch.from_numpy(blob[o:o + n].copy()).reshape(4, 3, 32, 32)
        net.train(mode == "train")
        logits = net(x)
    print(json.dumps({"shapes": shapes, "logits": logits.flatten().tolist()}))
    """#

    /// xternalz/WideResNet-pytorch's wide ResNet (dropout 0) in Python, `WideResNet(depth, k,
    /// classes, c)`: the module samtrain's wrn models follow (shared by the PyTorch tests).
    static let wideResNetPython = #"""
    class WideBlock(nn.Module):
        def __init__(self, i, o, stride):
            super().__init__()
            self.bn1 = nn.BatchNorm2d(i); self.relu1 = nn.ReLU()
            self.conv1 = nn.Conv2d(i, o, 3, stride, 1, bias=False)
            self.bn2 = nn.BatchNorm2d(o); self.relu2 = nn.ReLU()
            self.conv2 = nn.Conv2d(o, o, 3, 1, 1, bias=False)
            self.equalInOut = i == o
            self.convShortcut = None if self.equalInOut else nn.Conv2d(i, o, 1, stride, 0, bias=False)
        def forward(self, x):
            if not self.equalInOut: x = self.relu1(self.bn1(x)); out = x
            else: out = self.relu1(self.bn1(x))
            out = self.conv2(self.relu2(self.bn2(self.conv1(out))))
            return (x if self.equalInOut else self.convShortcut(x)) + out
    class NetworkBlock(nn.Module):
        def __init__(self, n, i, o, stride):
            super().__init__()
            self.layer = nn.Sequential(*[WideBlock(i if k == 0 else o, o, stride if k == 0 else 1) for k in range(n)])
        def forward(self, x): return self.layer(x)
    class WideResNet(nn.Module):
        def __init__(self, depth, k, classes=10, c=3):
            super().__init__()
            n = (depth - 4) // 6; w = [16, 16 * k, 32 * k, 64 * k]
            self.conv1 = nn.Conv2d(c, 16, 3, 1, 1, bias=False)
            self.block1 = NetworkBlock(n, w[0], w[1], 1)
            self.block2 = NetworkBlock(n, w[1], w[2], 2)
            self.block3 = NetworkBlock(n, w[2], w[3], 2)
            self.bn1 = nn.BatchNorm2d(w[3]); self.relu = nn.ReLU()
            self.fc = nn.Linear(w[3], classes)
        def forward(self, x):
            out = self.block3(self.block2(self.block1(self.conv1(x))))
            out = self.relu(self.bn1(out))
            return self.fc(F.adaptive_avg_pool2d(out, 1).flatten(1))
    """#
}
