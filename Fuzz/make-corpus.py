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
# The epoch so far of a mid-epoch checkpoint (read on resume): damaged totals give none.
good_totals = "1.5,2,3,4,5,6,7,8,9"
def epoch(rank1, seconds="1"):
    return checkpoint({"world_size": "2", "epoch_seconds": seconds, "epoch_totals_rank0": good_totals, "epoch_totals_rank1": rank1})
put("corpus", "SafeTensors", "epoch-so-far", epoch(good_totals, "12.5"))
put("regression", "SafeTensors", "epoch-totals-a-word", epoch("1,2,3,4,x,6,7,8,9,10"))
put("regression", "SafeTensors", "epoch-totals-infinite", epoch("1e400,2,3,4,5,6,7,8,9", "1e400"))
put("regression", "SafeTensors", "epoch-totals-many-fields", epoch("," * 200000))
put("regression", "SafeTensors", "epoch-totals-one-rank-missing", checkpoint({"world_size": "2", "epoch_seconds": "1", "epoch_totals_rank0": good_totals}))
put("regression", "SafeTensors", "epoch-totals-rank-beyond", checkpoint({"world_size": "2", "epoch_seconds": "1", "epoch_totals_rank0": good_totals, "epoch_totals_rank7": good_totals}))
# The recorded settings `samtrain sharpness` reads: the model and the training split (a regression
# input is a valid checkpoint whose settings are refused).
def recorded(**settings):
    return checkpoint({"settings": json.dumps(settings)})
put("corpus", "SafeTensors", "settings-split", recorded(model="vit-t4", vit_depth="2", train_subset="1000", label_noise="0.4", seed="7"))
put("regression", "SafeTensors", "settings-noise-one", recorded(model="cnn", label_noise="1"))
put("regression", "SafeTensors", "settings-noise-nan", recorded(model="cnn", label_noise="nan", train_subset="-3", seed="-1"))
put("regression", "SafeTensors", "settings-subset-2^63", recorded(model="cnn", train_subset=str(2**63), seed=str(2**64)))
put("regression", "SafeTensors", "settings-not-strings", checkpoint({"settings": '{"train_subset": 5, "model": ["vit"]}'}))  # read as none: no model
put("regression", "SafeTensors", "settings-vit-huge", recorded(model="vit-t4", vit_depth=str(2**62), vit_heads="0"))

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
for name in ["m-rho.json", "variants.json", "foret-label-noise-resnet32.json", "label-noise.json", "m-sharpness.json", "vit-sam.json"]:
    put("corpus", "Sweep", name, open(os.path.join(root, "sweeps", name)).read())
put("regression", "Sweep", "integer-2^63.json", '{"axes": {"seed": [9223372036854775808]}}')
put("regression", "Sweep", "ranks-1e30.json", '{"ranks": 1e30, "axes": {"seed": [1]}}')
hundred = json.dumps(list(range(1, 101)))
put("regression", "Sweep", "grid-100x100x100.json", '{"axes": {"seed": %s, "epochs": %s, "cutout": %s}}' % (hundred, hundred, hundred))
# axes whose values are bundles of settings
put("regression", "Sweep", "bundle-empty.json", '{"axes": {"method": [{"sam": "none"}, {}]}}')
put("regression", "Sweep", "bundle-nested.json", '{"axes": {"method": [{"sam": {"sam": [{"rho": 1}]}}]}}')
put("regression", "Sweep", "bundle-label-not-text.json", '{"axes": {"method": [{"label": ["a"], "sam": "none"}]}}')
put("regression", "Sweep", "bundle-labels-one-directory.json", '{"axes": {"method": [{"label": "a b", "sam": "none"}, {"label": "a/b", "sam": "sam"}]}}')
put("regression", "Sweep", "bundle-key-on-two-axes.json", '{"axes": {"rho": [0.1], "method": [{"sam": "sam", "rho": 0.2}]}}')
put("regression", "Sweep", "bundle-1001-settings.json", '{"axes": {"method": [{%s}]}}' % ", ".join('"k%d": 1' % i for i in range(1001)))
put("regression", "Sweep", "bundle-cell-name-300-bytes.json", '{"axes": {"a": [{"label": "%s", "sam": "none"}], "b": [{"label": "%s", "rho": 1}], "c": [{"label": "%s", "m": 1}]}}' % ("x" * 100, "y" * 100, "z" * 90))
put("regression", "Sweep", "bundle-unknown-flag.json", '{"axes": {"method": [{"sam": "sam"}, {"sam": "sam", "rhoo": 0.2}]}}')
put("regression", "Sweep", "bad-settings.json", '{"fixed": {"threads": 0, "optimizer": "bogus", "train_subset": -1, "momentum": -1, "keep": 0}, "axes": {"seed": [1]}}')

# CSV
for name in ["m-rho-quick-results.csv", "sam10/metrics.csv"]:
    put("corpus", "CSV", name.replace("/", "-"), open(os.path.join(root, "docs", "figures", name)).read())
put("regression", "CSV", "short-row.csv", "epoch,test_acc,train_loss\n1,0.5,0.3\n2\n")
put("regression", "CSV", "empty.csv", "")
put("regression", "CSV", "unbalanced-quote.csv", 'cell,m\n"a,4\n')
put("regression", "CSV", "not-utf8.csv", b"a,b\n\xff\xfe,1\n")

# Arrays: a user's safetensors dataset (--dataset arrays) and a state_dict (--init)
def st(tensors, meta=None):
    header, data = ({"__metadata__": meta} if meta else {}), b""
    for name, dtype, shape, payload in tensors:
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [len(data), len(data) + len(payload)]}
        data += payload
    return safetensors(header, data)


good = [("train_images", "U8", [2, 4, 4, 1], bytes(range(32))), ("train_labels", "I64", [2], struct.pack("<2q", 0, 1)),
        ("test_images", "U8", [1, 4, 4], bytes(range(16))), ("test_labels", "U8", [1], b"\1")]
put("corpus", "Arrays", "dataset", st(good, {"classes": "a,b"}))
put("corpus", "Arrays", "dataset-mean-std", st(good + [("mean", "F32", [1], struct.pack("<f", 0.5)), ("std", "F16", [1], struct.pack("<e", 0.25))]))
put("corpus", "Arrays", "state-dict", st([("0.weight", "F32", [32, 1, 3, 3], b"\0" * 1152), ("1.running_mean", "BF16", [32], b"\0" * 64),
                                         ("1.num_batches_tracked", "I64", [], b"\0" * 8)]))
put("regression", "Arrays", "label-2^63", st(good[:1] + [("train_labels", "U64", [2], struct.pack("<2Q", 0, 2**64 - 1))] + good[2:]))
put("regression", "Arrays", "label-negative", st(good[:1] + [("train_labels", "I8", [2], b"\0\xff")] + good[2:]))
put("regression", "Arrays", "duplicate-name", safetensors({"a": {"dtype": "U8", "shape": [1], "data_offsets": [0, 1]}}, b"\0")[:-1].replace(b"}}", b'},"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}}', 1) + b"\0")
put("regression", "Arrays", "images-5d", st([("train_images", "U8", [1, 1, 1, 1, 2], b"\0\0")] + good[1:]))
put("regression", "Arrays", "images-zero-height", st([("train_images", "U8", [2, 0, 4, 1], b"")] + good[1:]))
put("regression", "Arrays", "images-float", st([("train_images", "F32", [2, 1, 1], b"\0" * 8)] + good[1:]))
put("regression", "Arrays", "classes-empty-names", st(good, {"classes": ""}))
put("regression", "Arrays", "f8-dtype", st([("0.weight", "F8_E4M3", [4], b"\0" * 4)]))
put("regression", "Arrays", "int-weight", st([("0.weight", "I32", [32, 1, 3, 3], b"\0" * 1152)]))

# .npz / .npy (written by NumPy itself; the regression inputs are hand-made archives and
# headers that must be refused). NumPy's zip members carry the time they were written: the
# timestamps are pinned so the files are the same on every run.
try:
    import io, warnings, zipfile, zlib
    import numpy as np
except ImportError:
    np = None
if np is not None:
    _zipinfo_init = zipfile.ZipInfo.__init__

    def _pinned(self, filename="NoName", date_time=(1980, 1, 1, 0, 0, 0)):
        _zipinfo_init(self, filename, (1980, 1, 1, 0, 0, 0))

    zipfile.ZipInfo.__init__ = _pinned

    def npz(function, **arrays):
        b = io.BytesIO()
        function(b, **arrays)
        return b.getvalue()

    def npy_file(a, version=None):
        b = io.BytesIO()
        np.lib.format.write_array(b, a, version=version)
        return b.getvalue()

    def npy_raw(header, data=b"", version=1):
        h = header.encode("latin1")
        h += b" " * (-(10 + len(h) + 1) % 64) + b"\n"
        return b"\x93NUMPY" + bytes([version, 0]) + struct.pack("<H", len(h)) + h + data

    def zip_of(members, compress=zipfile.ZIP_STORED):
        b = io.BytesIO()
        with zipfile.ZipFile(b, "w", compress) as z:
            for name, data in members:
                z.writestr(name, data)
        return b.getvalue()

    warnings.simplefilter("ignore")  # the duplicate-member input is meant to repeat a name
    dataset = dict(train_images=(np.arange(2 * 3 * 3) * 29 % 256).astype(np.uint8).reshape(2, 3, 3, 1),
                   train_labels=np.array([1, 0], dtype=np.int64), test_labels=np.array([2], dtype=np.int32),
                   mean=np.array([0.25], dtype=np.float32), class_names=np.array(["cat", "dög"]))
    put("corpus", "NPZ", "savez", npz(np.savez, **dataset))
    put("corpus", "NPZ", "savez_compressed", npz(np.savez_compressed, **dataset))
    put("corpus", "NPZ", "big-endian-and-more", npz(np.savez, be=np.array([1, 2], dtype=">i4"), half=np.array([0.5], dtype="<f2"),
                                                    flags=np.array([True, False]), raw=np.array([b"ab"]), scalar=np.float64(1.5),
                                                    u8=np.array([2**63], dtype=np.uint64), names=np.array(["x"], dtype=">U2")))
    put("corpus", "NPZ", "v1.npy", npy_file(np.arange(6, dtype=np.int16).reshape(2, 3), (1, 0)))
    put("corpus", "NPZ", "v2.npy", npy_file(np.array([1.0, -2.0]), (2, 0)))
    put("corpus", "NPZ", "v3.npy", npy_file(np.array(["ünï"]), (3, 0)))

    stored = npz(np.savez, train_images=np.arange(100, dtype=np.uint8))
    put("regression", "NPZ", "truncated-zip", stored[: len(stored) // 2])
    crc = bytearray(stored)
    crc[crc.index(bytes(range(40, 60)))] ^= 1
    put("regression", "NPZ", "bad-crc", bytes(crc))
    put("regression", "NPZ", "shape-overflow", zip_of([("train_images.npy", npy_raw(
        "{'descr': '<u8', 'fortran_order': False, 'shape': (4294967296, 4294967296), }"))]))
    put("regression", "NPZ", "shape-2^63", zip_of([("train_images.npy", npy_raw(
        "{'descr': '|u1', 'fortran_order': False, 'shape': (9223372036854775808,), }"))]))
    put("regression", "NPZ", "fortran-order", npz(np.savez, train_images=np.asfortranarray(np.zeros((2, 3), dtype=np.uint8))))
    put("regression", "NPZ", "object-array", npz(np.savez, train_images=np.array([{"a": 1}, None], dtype=object)))
    put("regression", "NPZ", "record-array", npz(np.savez, train_images=np.zeros(2, dtype=[("x", "<i4")])))
    put("regression", "NPZ", "complex", npz(np.savez, train_images=np.zeros(2, dtype=np.complex64)))
    put("regression", "NPZ", "truncated-data", zip_of([("train_images.npy", npy_raw(
        "{'descr': '|u1', 'fortran_order': False, 'shape': (60000, 28, 28), }", b"abc"))]))
    put("regression", "NPZ", "trailing-bytes", zip_of([("train_images.npy", npy_raw(
        "{'descr': '|u1', 'fortran_order': False, 'shape': (2,), }", b"abcd"))]))
    put("regression", "NPZ", "header-length-past-end", zip_of([("train_images.npy", b"\x93NUMPY\x02\x00\xff\xff\xff\x7f{}")]))
    put("regression", "NPZ", "deep-nesting.npy", npy_raw("{'descr': " + "(" * 5000))
    put("regression", "NPZ", "not-npy-member", zip_of([("train_images.npy", npy_file(np.zeros(2))), ("README.txt", b"hi")]))
    put("regression", "NPZ", "duplicate-member", zip_of([("a.npy", npy_file(np.zeros(2))), ("a.npy", npy_file(np.zeros(2)))]))
    bomb = bytearray(npz(np.savez_compressed, train_images=np.zeros(10, dtype=np.uint8)))
    struct.pack_into("<I", bomb, bomb.index(b"PK\x01\x02") + 24, 0xFFFFFFF0)
    put("regression", "NPZ", "zip-bomb-declared-size", bytes(bomb))
    encrypted = bytearray(stored)
    for sig, flag in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):
        encrypted[encrypted.index(sig) + flag] |= 1
    put("regression", "NPZ", "encrypted", bytes(encrypted))
    # ZIPFoundation 0.9.20 loops forever on the first (a deflate stream that runs to the end
    # of the file) and traps on the next two (an offset of 2^63; an in-memory archive whose
    # directory lies past its end).
    data = bytes([0x00, 0xFF, 0xFF, 0x00, 0x00]) + b"x" * 10
    name = b"train_images.npy"
    lh = struct.pack("<IHHHHHIIIHH", 0x04034B50, 20, 0, 8, 0, 0, 0, len(data), 100, len(name), 0) + name + data
    cd = struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 20, 20, 0, 8, 0, 0, 0, len(data), 100, len(name), 0, 0, 0, 0, 0, 0) + name
    put("regression", "NPZ", "deflate-to-eof", lh + cd + struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, 1, 1, len(cd), len(lh), 0))
    put("regression", "NPZ", "zip64-offset-2^63", b"\0" * 8
        + struct.pack("<IQHHIIQQQQ", 0x06064B50, 44, 45, 45, 0, 0, 1, 1, 46, 2**63)
        + struct.pack("<IIQI", 0x07064B50, 0, 8, 1)
        + struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, 0xFFFF, 0xFFFF, 0xFFFFFFFF, 0xFFFFFFFF, 0))
    past = bytearray(stored)
    struct.pack_into("<I", past, past.rindex(b"PK\x05\x06") + 16, 0x7FFF0000)
    put("regression", "NPZ", "directory-past-end", bytes(past))
    member = npy_file(np.zeros(2))
    lh = struct.pack("<IHHHHHIIIHH", 0x04034B50, 20, 0, 0, 0, 0, zlib.crc32(member), len(member), len(member), 5, 0) + b"a.npy" + member
    extra = struct.pack("<HHQ", 1, 8, 2**64 - 1)
    cd = struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 45, 45, 0, 0, 0, 0, zlib.crc32(member), len(member), len(member), 5,
                     len(extra), 0, 0, 0, 0, 0xFFFFFFFF) + b"a.npy" + extra
    put("regression", "NPZ", "zip64-local-offset-2^64-1", lh + cd + struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, 1, 1, len(cd), len(lh), 0))
