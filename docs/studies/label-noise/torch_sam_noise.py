# Independent check of the 40 % label-noise cell at SAM rho 0.1 (docs/results.md): samtrain's cnn
# in PyTorch, SAM with one epsilon per 64-example half (as 2 ranks of 64 with the shard scope),
# symmetric label noise, SGD lr 0.05, momentum 0.9, weight decay 5e-4, batch 128.
# Usage: python3 torch_sam_noise.py NOISE RHO SEED STEPS [--save-init FILE | --load-init FILE]
# (prints the loss at w every 4 steps; FILE is a state_dict with samtrain's names, for --init).
import gzip, sys, numpy as np, torch, torch.nn as nn, torch.nn.functional as F
noise, rho, seed, steps = float(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
torch.manual_seed(seed); rng = np.random.default_rng(seed); torch.set_num_threads(1)
d = "/usr/share/datasets/fashion-mnist/"
x = np.frombuffer(gzip.open(d + "train-images-idx3-ubyte.gz").read()[16:], np.uint8).reshape(-1, 1, 28, 28)
y = np.frombuffer(gzip.open(d + "train-labels-idx1-ubyte.gz").read()[8:], np.uint8).astype(np.int64)
x = torch.tensor((x / 255.0 - 0.2860) / 0.3530, dtype=torch.float32)
flip = rng.random(len(y)) < noise
y = y.copy(); y[flip] = (y[flip] + rng.integers(1, 10, flip.sum())) % 10
y = torch.tensor(y)
def cbr(i, o): return [nn.Conv2d(i, o, 3, padding=1, bias=False), nn.BatchNorm2d(o), nn.ReLU()]
net = nn.Sequential(*cbr(1, 32), *cbr(32, 32), nn.MaxPool2d(2), *cbr(32, 64), *cbr(64, 64), nn.MaxPool2d(2),
                    nn.Flatten(), nn.Linear(3136, 256), nn.ReLU(), nn.Linear(256, 10))
opt = torch.optim.SGD(net.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4)
params = list(net.parameters())
if len(sys.argv) > 6 and sys.argv[5] == "--save-init":
    from safetensors.torch import save_file
    save_file({k: v.contiguous() for k, v in net.state_dict().items() if "num_batches" not in k}, sys.argv[6])
if len(sys.argv) > 6 and sys.argv[5] == "--load-init":
    from safetensors.torch import load_file
    state = load_file(sys.argv[6]); net.load_state_dict({k: state[k] for k in net.state_dict() if k in state}, strict=False)
order = torch.tensor(rng.permutation(len(y)))
for step in range(steps):
    idx = order[step * 128:(step + 1) * 128]
    grads = [torch.zeros_like(p) for p in params]; loss_sum = 0.0; correct = 0
    for half in (idx[:64], idx[64:]):
        xb, yb = x[half], y[half]
        loss = F.cross_entropy(net(xb), yb)
        g = torch.autograd.grad(loss, params)
        norm = torch.sqrt(sum((gi ** 2).sum() for gi in g))
        eps = [rho * gi / (norm + 1e-12) for gi in g]
        with torch.no_grad():
            for p, e in zip(params, eps): p.add_(e)
        out = net(xb); lp = F.cross_entropy(out, yb)
        g2 = torch.autograd.grad(lp, params)
        with torch.no_grad():
            for p, e in zip(params, eps): p.sub_(e)
        for a, b in zip(grads, g2): a += b / 2
        loss_sum += loss.item() / 2; correct += (out.argmax(1) == yb).sum().item()
    for p, gsum in zip(params, grads): p.grad = gsum
    opt.step()
    if (step + 1) % 4 == 0: print(f"{step + 1}:{loss_sum:.4f}", end=" ", flush=True)
print()
