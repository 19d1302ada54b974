#!/usr/bin/env python3
"""Writes Fuzz/corpus/<target>/ (small valid inputs the fuzzer starts from) and
Fuzz/regression/<target>/ (issue 12's reproducers: each must be refused with a message, never a
crash). Run from the repository root; the files are committed, this script says how they were made."""
import gzip, json, os, struct, shutil

root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
fuzz = os.path.join(root, "Fuzz")


def put(kind, target, name, data):
    d = os.path.join(fuzz, kind, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data if isinstance(data, bytes) else data.encode())


def idx(dims, payload=b""):
    return bytes([0, 0, 8, len(dims)]) + b"".join(struct.pack(">I", d) for d in dims) + payload


def safetensors(header, data=b""):
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    return struct.pack("<Q", len(h)) + h + data


def checkpoint(meta_overrides=None, shape=(2,), offsets=None, data=b"\0" * 8):
    meta = {"format": "samtrain-checkpoint", "format_version": "1", "optimizer_step": "3", "step": "3"}
    meta.update(meta_overrides or {})
    return safetensors({"__metadata__": meta, "a": {"dtype": "F32", "shape": list(shape), "data_offsets": offsets or [0, len(data)]}}, data)


# IDX
images = idx([2, 3, 3], bytes(range(18)))
labels = idx([2], bytes([3, 7]))
put("corpus", "IDX", "images", images)
put("corpus", "IDX", "labels", labels)
put("corpus", "IDX", "images.gz", gzip.compress(images, mtime=0))
put("regression", "IDX", "dims-overflow", idx([100_000_000] * 3))
put("regression", "IDX", "dim-2^32-1", idx([1, 0xFFFFFFFF, 1]))
put("regression", "IDX", "dims-2^31", idx([0x80000000, 0x80000000, 0x80000000]))
put("regression", "IDX", "truncated-header", bytes([0, 0, 8, 3, 0, 0]))
put("regression", "IDX", "truncated-gzip", gzip.compress(images, mtime=0)[:20])

# CIFAR (one record: label byte(s), then 3,072 pixels)
pixels = bytes(i % 251 for i in range(3072))
put("corpus", "CIFAR", "cifar10-record", bytes([7]) + pixels)
put("corpus", "CIFAR", "cifar100-record", bytes([4, 42]) + pixels)
put("regression", "CIFAR", "cifar10-label-10", bytes([10]) + pixels)
put("regression", "CIFAR", "cifar100-coarse-label-20", bytes([20, 5]) + pixels)
put("regression", "CIFAR", "cifar100-fine-label-100", bytes([3, 100]) + pixels)
put("regression", "CIFAR", "cifar10-truncated", bytes([7]) + pixels[:100])

# safetensors checkpoints
put("corpus", "SafeTensors", "checkpoint", checkpoint())
put("corpus", "SafeTensors", "two-tensors", safetensors(
    {"__metadata__": {"format": "samtrain-checkpoint", "format_version": "1", "optimizer_step": "0"},
     "1.weight": {"dtype": "F32", "shape": [1, 2], "data_offsets": [0, 8]}, "1.bias": {"dtype": "F32", "shape": [1], "data_offsets": [8, 12]}},
    b"\0" * 12))
put("regression", "SafeTensors", "shape-overflow", checkpoint(shape=(2147483647, 2147483647, 2147483647)))
put("regression", "SafeTensors", "shape-2^63", checkpoint(shape=(9223372036854775808,)))
put("regression", "SafeTensors", "offsets-hostile", checkpoint(offsets=[-16, 10**30]))
put("regression", "SafeTensors", "optimizer-step-2^63-1", checkpoint({"optimizer_step": str(2**63 - 1)}))
put("regression", "SafeTensors", "optimizer-step-minus-5", checkpoint({"optimizer_step": "-5"}))
put("regression", "SafeTensors", "format-version-999", checkpoint({"format_version": "999"}))
put("regression", "SafeTensors", "header-length-huge", struct.pack("<Q", 2**63) + b"{}")

# conformance vectors
base = {
    "name": "tiny",
    "model": {"layers": [{"type": "linear", "in": 2, "out": 3}, {"type": "relu"}, {"type": "linear", "in": 3, "out": 2}]},
    "param_order": ["0.weight", "0.bias", "2.weight", "2.bias"],
    "params": {"0.weight": [[0.1, 0.2], [0.3, -0.1], [0.0, 0.5]], "0.bias": [0, 0, 0.1],
               "2.weight": [[0.1, 0.2, 0.3], [-0.3, 0.2, 0.1]], "2.bias": [0, 0]},
    "data": {"x": [[1, 2], [3, 4]], "y": [0, 1]},
    "optimizer": {"type": "sgd", "lr": 0.1, "momentum": 0.9},
    "sam": {"variant": "sam", "m": 1, "rho": 0.05},
    "num_steps": 1,
    "steps": [{"loss": 0.7}],
}
put("corpus", "Conformance", "tiny.json", json.dumps(base))
for name in ["sgd.json", "adamw.json"]:
    shared = os.path.join(os.path.dirname(root), "shared", "vectors", name)
    if os.path.exists(shared):
        shutil.copy(shared, os.path.join(fuzz, "corpus", "Conformance", name))


def variant(name, change):
    case = json.loads(json.dumps(base))
    change(case)
    put("regression", "Conformance", name + ".json", json.dumps(case))


def first_layer(layer):
    return lambda c: c["model"].update(layers=[layer, {"type": "relu"}, {"type": "linear", "in": 3, "out": 2}])


variant("out-minus-1", first_layer({"type": "linear", "in": 2, "out": -1}))
variant("in-1e12", first_layer({"type": "linear", "in": 1e12, "out": 3}))
variant("out-2^63", first_layer({"type": "linear", "in": 2, "out": 2**63}))
variant("num-steps-minus-1", lambda c: c.update(num_steps=-1))
variant("num-steps-1e19", lambda c: c.update(num_steps=1e19))
variant("short-row", lambda c: c.update(data={"x": [[1, 2], [3]], "y": [0, 1]}))
variant("label-2", lambda c: c.update(data={"x": [[1, 2], [3, 4]], "y": [0, 2]}))
variant("label-minus-1", lambda c: c.update(data={"x": [[1, 2], [3, 4]], "y": [0, -1]}))
variant("betas-one", lambda c: c.update(optimizer={"type": "adamw", "lr": 0.1, "betas": [0.9]}))
variant("m-0", lambda c: c["sam"].update(m=0))

# sweep files
for name in ["m-rho.json", "variants.json", "foret-label-noise-resnet32.json"]:
    put("corpus", "Sweep", name, open(os.path.join(root, "sweeps", name)).read())
put("regression", "Sweep", "integer-2^63.json", '{"axes": {"seed": [9223372036854775808]}}')
put("regression", "Sweep", "ranks-1e30.json", '{"ranks": 1e30, "axes": {"seed": [1]}}')
hundred = json.dumps(list(range(1, 101)))
put("regression", "Sweep", "grid-100x100x100.json", '{"axes": {"seed": %s, "epochs": %s, "cutout": %s}}' % (hundred, hundred, hundred))
put("regression", "Sweep", "bad-settings.json", '{"fixed": {"threads": 0, "optimizer": "bogus", "train_subset": -1, "momentum": -1, "keep": 0}, "axes": {"seed": [1]}}')

# CSV
for name in ["m-rho-quick-results.csv", "sam10/metrics.csv"]:
    put("corpus", "CSV", name.replace("/", "-"), open(os.path.join(root, "docs", "figures", name)).read())
put("regression", "CSV", "short-row.csv", "epoch,test_acc,train_loss\n1,0.5,0.3\n2\n")
put("regression", "CSV", "empty.csv", "")
put("regression", "CSV", "unbalanced-quote.csv", 'cell,m\n"a,4\n')
put("regression", "CSV", "not-utf8.csv", b"a,b\n\xff\xfe,1\n")
