import Foundation
import XCTest

/// `launch/make-dataset`: an image folder of real handwritten digits (scikit-learn's `digits`,
/// 1,797 8×8 images) becomes an arrays file whose every pixel and label is checked in Python,
/// and samtrain learns from it under mpirun; bad input gives exit 1 and one message.
final class MakeDatasetTests: XCTestCase {
    static let script = Subprocess.repositoryRoot.appendingPathComponent("launch/make-dataset").path

    /// Runs a Python program (its arguments after `-c`) with a time limit.
    static func python(_ program: String, _ arguments: [String] = [], timeout: Double = 120) throws -> Subprocess.Result {
        try Subprocess.run("/usr/bin/env", ["python3", "-c", program] + arguments, timeout: timeout)
    }

    /// The Python modules the fixtures and checks need, pip-installed once when missing.
    static func requirePython(_ modules: [String], packages: [String]) throws {
        let probe = "import " + modules.joined(separator: ", ")
        if try python(probe).status == 0 { return }
        let install = try Subprocess.run("/usr/bin/env", ["python3", "-m", "pip", "install", "-q"] + packages, timeout: 900)
        if try python(probe).status != 0 {
            throw XCTSkip("\(packages.joined(separator: ", ")) not installable here (pip: \(install.stderr.suffix(300)))")
        }
    }

    static func makeDataset(_ arguments: [String]) throws -> Subprocess.Result {
        try Subprocess.run(script, arguments, timeout: 300)
    }

    /// Writes `digits` as `dir/train/<digit>/<index>.png` (a seeded 80 % split) and
    /// `dir/test/<digit>/<index>.png`, the 0…16 values scaled to 0…255.
    static let writeDigits = #"""
    import os, sys
    import numpy as np
    from PIL import Image
    from sklearn.datasets import load_digits
    root = sys.argv[1]
    digits = load_digits()
    images = np.rint(digits.images * 255 / 16).astype(np.uint8)
    order = np.random.default_rng(7).permutation(len(images))
    cut = round(0.8 * len(images))
    for split, indices in (("train", order[:cut]), ("test", order[cut:])):
        for i in indices:
            folder = os.path.join(root, split, str(digits.target[i]))
            os.makedirs(folder, exist_ok=True)
            Image.fromarray(images[i], mode="L").save(os.path.join(folder, f"{i:04d}.png"))
    """#

    /// Checks an arrays file against the folder it came from: keys, dtypes, shapes, classes,
    /// per-class counts, and every image equal to its PNG resized to 16×16 as documented
    /// (bicubic when enlarging), in class then file-name order. Prints "ok".
    static let checkFile = #"""
    import json, os, sys
    import numpy as np
    from PIL import Image
    path, root, with_mean = sys.argv[1], sys.argv[2], sys.argv[3] == "1"
    if path.endswith(".npz"):
        with np.load(path, allow_pickle=False) as f:
            a = {k: f[k] for k in f.files}
        classes = list(a.pop("classes"))
        assert a.get("classes") is None
    else:
        from safetensors.numpy import load_file
        from safetensors import safe_open
        a = load_file(path)
        with safe_open(path, framework="numpy") as f:
            classes = f.metadata()["classes"].split(",")
    expected_keys = {"train_images", "train_labels", "test_images", "test_labels"} | ({"mean", "std"} if with_mean else set())
    assert set(a) == expected_keys, sorted(a)
    assert classes == [str(d) for d in range(10)], classes
    for split in ("train", "test"):
        x, y = a[split + "_images"], a[split + "_labels"]
        assert x.dtype == np.uint8 and x.ndim == 3 and x.shape[1:] == (16, 16), (x.dtype, x.shape)
        assert x.flags.c_contiguous
        assert y.dtype == np.uint8 and y.shape == (len(x),), (y.dtype, y.shape)
        folders = sorted(os.listdir(os.path.join(root, split)))
        files = [(c, sorted(os.listdir(os.path.join(root, split, c)))) for c in folders]
        counts = np.bincount(y, minlength=10)
        assert counts.tolist() == [len(names) for _, names in files], (counts, [len(n) for _, n in files])
        expected = np.stack([np.asarray(Image.open(os.path.join(root, split, c, n)).resize((16, 16), Image.Resampling.BICUBIC))
                             for c, names in files for n in names])
        labels = [int(c) for c, names in files for _ in names]
        assert np.array_equal(y, labels)
        assert np.array_equal(x, expected), f"{split}: pixels differ from the resized PNGs"
    assert a["train_images"].max() > 200 and a["train_images"].min() == 0
    if with_mean:
        train = a["train_images"].astype(np.float64) / 255
        assert a["mean"].dtype == np.float32 and a["mean"].shape == (1,) and a["std"].shape == (1,)
        assert abs(a["mean"][0] - train.mean()) < 1e-6 and abs(a["std"][0] - train.std()) < 1e-6, (a["mean"], a["std"])
    print("ok", len(a["train_labels"]), len(a["test_labels"]))
    """#

    /// The digits folder in `dir/digits`, converted to `dir/digits.npz` and `dir/digits.safetensors` (the latter
    /// with --mean-std), each checked.
    func makeDigits(in dir: URL) throws -> String {
        try Self.requirePython(["numpy", "PIL", "safetensors", "sklearn"], packages: ["numpy", "pillow", "safetensors", "scikit-learn"])
        let folder = dir.appendingPathComponent("digits").path
        let written = try Self.python(Self.writeDigits, [folder])
        XCTAssertEqual(written.status, 0, written.output)
        let npz = dir.appendingPathComponent("digits.npz").path
        for (output, extra) in [(npz, [String]()), (dir.appendingPathComponent("digits.safetensors").path, ["--mean-std"])] {
            let made = try Self.makeDataset(["--images", folder, "--size", "16", "-o", output] + extra)
            XCTAssertEqual(made.status, 0, made.output)
            XCTAssertTrue(made.stdout.contains("train_images uint8 1438×16×16"), made.stdout)
            let checked = try Self.python(Self.checkFile, [output, folder, extra.isEmpty ? "0" : "1"])
            XCTAssertEqual(checked.status, 0, checked.output)
            XCTAssertEqual(checked.stdout.trimmingCharacters(in: .whitespacesAndNewlines), "ok 1438 359", checked.output)
        }
        // Only the two outputs: the temporary files were renamed.
        let left = try FileManager.default.contentsOfDirectory(atPath: dir.path).sorted()
        XCTAssertEqual(left, ["digits", "digits.npz", "digits.safetensors"])
        return npz
    }

    func testDigitsFolderBecomesAnArraysFile() throws {
        let dir = Subprocess.temporaryDirectory("samtrain-make-dataset")
        defer { try? FileManager.default.removeItem(at: dir) }
        _ = try makeDigits(in: dir)
    }

    /// The cnn on the converted digits, 2 ranks: well above chance (0.1) on the held-out 20 %.
    func testSamtrainLearnsTheConvertedDigits() throws {
        let dir = Subprocess.temporaryDirectory("samtrain-make-dataset")
        defer { try? FileManager.default.removeItem(at: dir) }
        let npz = try makeDigits(in: dir)
        let out = dir.appendingPathComponent("run").path
        let run = try Subprocess.mpirun(2, ["train", "--dataset", "arrays", "--data", npz, "--model", "cnn", "--epochs", "5",
                                            "--batch-size", "64", "--lr", "0.05", "--seed", "1", "--out", out], timeout: 900)
        XCTAssertEqual(run.status, 0, run.output)
        guard run.status == 0 else { return }
        let epochs = try String(contentsOfFile: out + "/metrics.jsonl", encoding: .utf8).split(separator: "\n")
            .compactMap { try JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
            .filter { $0["kind"] as? String == "epoch" }
        XCTAssertEqual(epochs.count, 5, run.output)
        let accuracy = try XCTUnwrap(epochs.last?["test_acc"] as? Double, "\(epochs.last ?? [:])")
        XCTAssertGreaterThan(accuracy, 0.85, run.stdout)
    }

    /// `--torchvision FashionMNIST` reads Debian's Fashion-MNIST files laid out as torchvision
    /// keeps them (`ROOT/FashionMNIST/raw/`, unpacked): 60,000 + 10,000 images, its class names,
    /// and the first training image equal to the IDX file's. torchvision is installed from PyPI
    /// beside torch when missing, as the PyTorch tests install torch.
    func testTorchvisionDatasetOnDisk() throws {
        try Subprocess.requireFashionMNIST()
        try Self.requirePython(["numpy", "PIL", "safetensors"], packages: ["numpy", "pillow", "safetensors"])
        try ResidualNetworkTests.requireTorch(also: ["torchvision"])
        let dir = Subprocess.temporaryDirectory("samtrain-make-dataset-tv")
        defer { try? FileManager.default.removeItem(at: dir) }
        let check = #"""
        import gzip, os, sys
        import numpy as np
        root, out, idx = sys.argv[1:4]
        with np.load(out) as f:
            assert f["train_images"].shape == (60000, 28, 28) and f["test_images"].shape == (10000, 28, 28)
            assert f["train_images"].dtype == np.uint8 and f["train_labels"].dtype == np.uint8
            assert f["classes"][0] == "T-shirt/top" and len(f["classes"]) == 10, f["classes"]
            assert np.bincount(f["test_labels"]).tolist() == [1000] * 10
            first = np.frombuffer(gzip.open(idx + "/train-images-idx3-ubyte.gz").read()[16:16 + 784], np.uint8)
            assert np.array_equal(f["train_images"][0].ravel(), first)
        print("ok")
        """#
        let raw = dir.appendingPathComponent("FashionMNIST/raw").path
        let unpack = try Subprocess.run("/bin/sh", ["-c", "mkdir -p \"$1\" && for f in \"$2\"/*.gz; do gzip -dc \"$f\" > \"$1/$(basename \"$f\" .gz)\"; done",
                                                    "sh", raw, Subprocess.fashionMNIST])
        XCTAssertEqual(unpack.status, 0, unpack.output)
        let out = dir.appendingPathComponent("fashion.npz").path
        let made = try Self.makeDataset(["--torchvision", "FashionMNIST", "--root", dir.path, "-o", out])
        XCTAssertEqual(made.status, 0, made.output)
        let checked = try Self.python(check, [dir.path, out, Subprocess.fashionMNIST])
        XCTAssertEqual(checked.stdout, "ok\n", checked.output)
        // A dataset that is not there: one message, nothing downloaded.
        let missing = try Self.makeDataset(["--torchvision", "CIFAR10", "--root", dir.path, "-o", out + ".npz"])
        XCTAssertEqual(missing.status, 1, missing.output)
        XCTAssertTrue(missing.stderr.contains("never downloads"), missing.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir.appendingPathComponent("cifar-10-batches-py").path))
    }

    /// Bad folders, arrays and names: exit 1, exactly one line naming the culprit, no output file.
    func testBadInputsGiveExitOneAndOneMessage() throws {
        try Self.requirePython(["numpy", "PIL", "safetensors"], packages: ["numpy", "pillow", "safetensors"])
        let dir = Subprocess.temporaryDirectory("samtrain-make-dataset-bad")
        defer { try? FileManager.default.removeItem(at: dir) }
        // Each case a folder of 8×8 gray PNGs (`name: size` per image) or .npy arrays.
        let fixtures = #"""
        import os, sys
        import numpy as np
        from PIL import Image
        root = sys.argv[1]
        def png(path, size=(8, 8)):
            os.makedirs(os.path.dirname(path), exist_ok=True)
            Image.new("L", size, 128).save(path)
        for case in ("test-only", "sizes", "no-test", "unreadable", "empty", "comma"):
            png(f"{root}/{case}/train/a/1.png"); png(f"{root}/{case}/test/a/2.png")
        png(f"{root}/test-only/test/b/3.png")
        png(f"{root}/sizes/train/a/0.png", (9, 8))
        import shutil; shutil.rmtree(f"{root}/no-test/test")
        open(f"{root}/unreadable/train/a/broken.png", "w").write("not a png")
        os.makedirs(f"{root}/empty/train/b")
        png(f"{root}/comma/train/x,y/4.png")
        x = np.zeros((4, 8, 8), np.uint8)
        np.save(f"{root}/x.npy", x); np.save(f"{root}/y.npy", np.arange(4)); np.save(f"{root}/y3.npy", np.arange(3))
        np.save(f"{root}/xf.npy", x.astype(np.float32))
        """#
        let made = try Self.python(fixtures, [dir.path])
        XCTAssertEqual(made.status, 0, made.output)
        let d = dir.path
        let out = d + "/out.npz"
        let cases: [([String], [String])] = [
            (["--images", d + "/test-only", "-o", out], ["test/b", "no", "train/b"]),
            (["--images", d + "/sizes", "-o", out], ["sizes/train/a/1.png", "9×8", "--size"]),
            (["--images", d + "/no-test", "-o", out], ["no-test/test", "missing"]),
            (["--images", d + "/unreadable", "-o", out], ["unreadable/train/a/broken.png", "unreadable image"]),
            (["--images", d + "/empty", "-o", out], ["empty/train/b", "empty class"]),
            (["--images", d + "/comma", "-o", d + "/out.safetensors"], ["x,y", "comma"]),
            (["--npy", d + "/x.npy", d + "/y3.npy", d + "/x.npy", d + "/y.npy", "-o", out], ["train: 4 images (", "but 3 labels (", "y3.npy"]),
            (["--npy", d + "/x.npy", d + "/y.npy", d + "/x.npy", d + "/y.npy", "--classes", "a,b,c", "-o", out], ["label 3", "3 classes"]),
            (["--npy", d + "/xf.npy", d + "/y.npy", d + "/x.npy", d + "/y.npy", "-o", out], ["xf.npy", "--scale-floats"]),
            (["--images", d + "/sizes", "-o", d + "/out.txt"], [".npz or .safetensors"]),
        ]
        for (arguments, fragments) in cases {
            let r = try Self.makeDataset(arguments)
            XCTAssertEqual(r.status, 1, "\(arguments): \(r.output)")
            let lines = r.stderr.split(separator: "\n")
            XCTAssertEqual(lines.count, 1, "\(arguments): \(r.output)")
            XCTAssertTrue(lines.first?.hasPrefix("make-dataset: error: ") == true, r.stderr)
            for fragment in fragments {
                XCTAssertTrue(r.stderr.contains(fragment), "'\(fragment)' not in: \(r.stderr)")
            }
            XCTAssertEqual(r.stdout, "", "\(arguments)")
        }
        let left = try FileManager.default.contentsOfDirectory(atPath: d).filter { $0.hasPrefix("out") || $0.hasPrefix(".out") }
        XCTAssertEqual(left, [], "a failed run left a file")
    }
}
