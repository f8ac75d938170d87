#!/usr/bin/python3
"""PyTorch peer of the ptmst benchmark (bench/main.ts runs it; not part of the library).

Written from the project's algorithm specification (SPEC.md: sections 1, 2, 3, 5 and 6), not from any other
code: the same distillation iteration (TESLA and full unroll), expert epoch, evaluation run and retrieval as
the TypeScript side, on the same inputs (the safetensors files bench/inputs.ts writes from fixed seeds).
Each call is one repetition in its own process, like the TypeScript children: read the inputs, warm up,
time the work once, print `@@result {json}` with the time and the peak RSS (ru_maxrss).

    /usr/bin/python3 bench/peer.py info  --threads 2            versions, BLAS, threads (JSON)
    /usr/bin/python3 bench/peer.py run   CASE_JSON --threads 2  one timed repetition of a case
    /usr/bin/python3 bench/peer.py check CASE_JSON --threads 2  our gradients against this peer's (float64, float32)

Needs Debian's python3-torch (and numpy) with libopenblas0-pthread; the `safetensors` package is not
needed: the format is read here with numpy, json and struct.
"""
import argparse
import contextlib
import io
import json
import math
import os
import resource
import struct
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

RESULT_MARK = "@@result "
TOWERS = ("img", "txt")
PARAM_NAMES = ("W1", "b1", "W2", "b2", "gamma", "beta")
LAYER_NORM_EPS = 1e-5

# ---------------------------------------------------------------------------------------------------------
# safetensors: 8-byte little-endian header length, JSON header, raw little-endian data


_DTYPES = {"F32": np.dtype("<f4"), "F64": np.dtype("<f8"), "I32": np.dtype("<i4"), "U8": np.dtype("u1")}


def read_safetensors(path):
    """All tensors of a safetensors file as numpy arrays (copies), and its string metadata."""
    with open(path, "rb") as f:
        buf = f.read()
    if len(buf) < 8:
        raise ValueError(f"{path}: truncated, no header")
    (n,) = struct.unpack("<Q", buf[:8])
    if 8 + n > len(buf):
        raise ValueError(f"{path}: header length {n} exceeds the file")
    header = json.loads(buf[8 : 8 + n].decode("utf-8"))
    meta = header.pop("__metadata__", {}) or {}
    data = memoryview(buf)[8 + n :]
    out = {}
    for name, e in header.items():
        dt = _DTYPES[e["dtype"]]
        begin, end = e["data_offsets"]
        count = math.prod(e["shape"])
        if end - begin != count * dt.itemsize or end > len(data):
            raise ValueError(f"{path}: tensor {name}: data_offsets do not match its shape")
        out[name] = np.frombuffer(data[begin:end], dtype=dt).reshape(e["shape"]).copy()
    return out, meta


# ---------------------------------------------------------------------------------------------------------
# the model (SPEC section 1) and the loss (SPEC section 2)


def head(p, x, mask):
    """ProjectionHead: pre = x W1 + b1; h = Dropout(GELU(pre) W2 + b2); LayerNorm(h + pre); L2-normalised.

    W is [d_in, d_out]; `mask` is an inverted-dropout mask (0 or 1/(1 - rate)) or None."""
    pre = x @ p["W1"] + p["b1"]
    h = F.gelu(pre) @ p["W2"] + p["b2"]  # erf form (approximate='none')
    if mask is not None:
        h = h * mask
    z = F.layer_norm(h + pre, (pre.shape[1],), p["gamma"], p["beta"], LAYER_NORM_EPS)
    return z / z.norm(dim=1, keepdim=True)


def infonce(L, S):
    """1/2 [ -mean_i sum_j S_ij log softmax_row(L)_ij + the same on L^T, S^T ]."""
    B = L.shape[0]
    row = -(S * F.log_softmax(L, dim=1)).sum() / B
    col = -(S.t() * F.log_softmax(L.t(), dim=1)).sum() / B
    return 0.5 * (row + col)


def batch_loss(theta, xb, yb, sb, mask_img, mask_txt, temperature):
    u = head(theta["img"], xb, mask_img)
    v = head(theta["txt"], yb, mask_txt)
    return infonce(u @ v.t() / temperature, sb)


def params_of(theta):
    return [theta[t][n] for t in TOWERS for n in PARAM_NAMES]


def flat(ts):
    return torch.cat([t.reshape(-1) for t in ts])


def heads_from(f, dtype, requires_grad=False):
    return {
        t: {n: torch.from_numpy(f[f"theta0.{t}.{n}"]).to(dtype).requires_grad_(requires_grad) for n in PARAM_NAMES}
        for t in TOWERS
    }


def dropout_mask(rows, cols, rate, dtype):
    return (torch.rand(rows, cols) >= rate).to(dtype) / (1 - rate)


# ---------------------------------------------------------------------------------------------------------
# one distillation iteration (SPEC section 5, steps 2-4)


class IterationInputs:
    """The state, teacher and unrolled steps of an iteration input file, in the given dtype."""

    def __init__(self, c, dtype):
        f, meta = read_safetensors(c["file"])
        t = lambda name: torch.from_numpy(f[name]).to(dtype)
        self.dtype = dtype
        self.temperature = c["temperature"]
        self.similarity = c["similarity"]
        self.rank = int(meta.get("rank", c["rank"]))
        self.rank_alpha = float(meta.get("rankAlpha", c["rankAlpha"]))
        self.theta0 = heads_from(f, dtype)
        self.target = {tw: t(f"target.{tw}") for tw in TOWERS}
        self.start = {tw: flat([self.theta0[tw][n] for n in PARAM_NAMES]) for tw in TOWERS}
        self.x, self.y = t("x"), t("y")
        self.lr = {"img": t("lrImg").reshape(()), "txt": t("lrTxt").reshape(())}
        self.s_keys = ["sFull"] if self.similarity == "full" else ["sDiag", "sL", "sR"]
        self.s = {k: t(k) for k in self.s_keys}
        self.batches = torch.from_numpy(f["batches"]).long()
        self.mask_img, self.mask_txt = t("maskImg"), t("maskTxt")

    def s_block(self, s, b):
        """S[b, b] from the S tensors `s` (full, or diag(a) + (alpha/r) L R^T), differentiable in them."""
        if self.similarity == "full":
            return s["sFull"][b][:, b]
        low = s["sL"][b] @ s["sR"][b].t()
        return torch.diag(s["sDiag"][b]) + (self.rank_alpha / self.rank) * low

    def loss_at(self, theta, i, x, y, s, b=None):
        b = self.batches[i] if b is None else b
        return batch_loss(theta, x[b], y[b], self.s_block(s, b), self.mask_img[i], self.mask_txt[i], self.temperature)


def tower_split(g):
    return {"img": flat(g[: len(PARAM_NAMES)]), "txt": flat(g[len(PARAM_NAMES) :])}


def tesla_iteration(it):
    """Constant-memory TESLA (SPEC 5.4): unroll with detached gradients, then per step the data gradient of
    2[(a(theta* - theta_0) + a^2 G) . g_i] / |theta_0 - theta*|^2 with theta_i fixed, scattered back by index;
    the learning rates get the exact gradient of the matching loss with G fixed."""
    T = it.batches.shape[0]
    theta = {t: {n: v.clone() for n, v in it.theta0[t].items()} for t in TOWERS}
    thetas = []
    G = {t: torch.zeros_like(it.start[t]) for t in TOWERS}
    for i in range(T):
        th = {t: {n: v.detach().requires_grad_(True) for n, v in theta[t].items()} for t in TOWERS}
        thetas.append(th)
        g = torch.autograd.grad(it.loss_at(th, i, it.x, it.y, it.s), params_of(th))
        with torch.no_grad():
            for t, gt in tower_split(g).items():
                G[t] += gt
            k = 0
            theta = {}
            for t in TOWERS:
                theta[t] = {}
                for n in PARAM_NAMES:
                    theta[t][n] = th[t][n].detach() - it.lr[t] * g[k]
                    k += 1
    losses, cot, grads = {}, {}, {}
    for t in TOWERS:
        d = ((it.start[t] - it.target[t]) ** 2).sum()
        resid = it.start[t] - it.lr[t] * G[t] - it.target[t]
        losses[t] = ((resid**2).sum() / d).item()
        cot[t] = 2 * (it.lr[t] * (it.target[t] - it.start[t]) + it.lr[t] ** 2 * G[t]) / d
        grads["lrImg" if t == "img" else "lrTxt"] = (-2 * (resid * G[t]).sum() / d).reshape(1)
    gx, gy = torch.zeros_like(it.x), torch.zeros_like(it.y)
    gs = {k: torch.zeros_like(v) for k, v in it.s.items()}
    for i in range(T):
        b = it.batches[i]
        xb = it.x[b].clone().requires_grad_(True)
        yb = it.y[b].clone().requires_grad_(True)
        if it.similarity == "full":
            sb = {"sFull": it.s["sFull"][b][:, b].clone().requires_grad_(True)}
            block = sb["sFull"]
        else:
            sb = {k: it.s[k][b].clone().requires_grad_(True) for k in it.s_keys}
            block = torch.diag(sb["sDiag"]) + (it.rank_alpha / it.rank) * (sb["sL"] @ sb["sR"].t())
        th = thetas[i]
        loss = batch_loss(th, xb, yb, block, it.mask_img[i], it.mask_txt[i], it.temperature)
        g = tower_split(torch.autograd.grad(loss, params_of(th), create_graph=True))
        dot = (cot["img"] * g["img"]).sum() + (cot["txt"] * g["txt"]).sum()
        leaves = [xb, yb] + [sb[k] for k in sb]
        d = torch.autograd.grad(dot, leaves)
        gx.index_add_(0, b, d[0])
        gy.index_add_(0, b, d[1])
        if it.similarity == "full":
            gs["sFull"].index_put_((b[:, None], b[None, :]), d[2], accumulate=True)
        else:
            for k, dk in zip(it.s_keys, d[2:]):
                gs[k].index_add_(0, b, dk)
    grads.update({"x": gx, "y": gy, **gs})
    return losses, grads


def full_iteration(it):
    """MTT-VL: backpropagation through the whole unroll, theta_i depending on the data and the learning rates."""
    T = it.batches.shape[0]
    x = it.x.clone().requires_grad_(True)
    y = it.y.clone().requires_grad_(True)
    lr = {t: v.clone().requires_grad_(True) for t, v in it.lr.items()}
    s = {k: v.clone().requires_grad_(True) for k, v in it.s.items()}
    theta = {t: {n: v.clone().requires_grad_(True) for n, v in it.theta0[t].items()} for t in TOWERS}
    for i in range(T):
        g = torch.autograd.grad(it.loss_at(theta, i, x, y, s), params_of(theta), create_graph=True)
        k = 0
        nxt = {}
        for t in TOWERS:
            nxt[t] = {}
            for n in PARAM_NAMES:
                nxt[t][n] = theta[t][n] - lr[t] * g[k]
                k += 1
        theta = nxt
    per = {}
    for t in TOWERS:
        d = ((it.start[t] - it.target[t]) ** 2).sum()
        per[t] = ((flat([theta[t][n] for n in PARAM_NAMES]) - it.target[t]) ** 2).sum() / d
    leaves = [x, y, lr["img"], lr["txt"]] + [s[k] for k in it.s_keys]
    d = torch.autograd.grad(per["img"] + per["txt"], leaves)
    grads = {"x": d[0], "y": d[1], "lrImg": d[2].reshape(1), "lrTxt": d[3].reshape(1)}
    grads.update(dict(zip(it.s_keys, d[4:])))
    return {t: v.item() for t, v in per.items()}, grads


def iteration(it, mode):
    return tesla_iteration(it) if mode == "tesla" else full_iteration(it)


# ---------------------------------------------------------------------------------------------------------
# expert epoch (SPEC section 3), evaluation run and retrieval (SPEC section 6)


def train_epoch(theta, step, n, batch, dropout, temperature, data):
    """One epoch: a fresh permutation, ceil(n / batch) batches, fresh dropout masks, the loss against the
    batch's block of S, one `step(grads)`. A non-finite loss stops it (checked once, at the end)."""
    dtype = theta["img"]["W1"].dtype
    width = theta["img"]["W1"].shape[1]
    perm = torch.randperm(n)
    total = torch.zeros((), dtype=dtype)
    for k in range(math.ceil(n / batch)):
        idx = perm[k * batch : (k + 1) * batch]
        xb, yb, sb = data(idx)
        mi = dropout_mask(len(idx), width, dropout, dtype)
        mt = dropout_mask(len(idx), width, dropout, dtype)
        loss = batch_loss(theta, xb, yb, sb, mi, mt, temperature)
        step(torch.autograd.grad(loss, params_of(theta)))
        total += loss.detach()
    if not torch.isfinite(total):
        raise FloatingPointError("the training loss became NaN or infinite")


def expert_case(c):
    """Plain SGD (lr 0.1, no momentum, no weight decay), batch 128, InfoNCE with S = I, dropout 0.1."""
    f, _ = read_safetensors(c["file"])
    img, txt = torch.from_numpy(f["img"]), torch.from_numpy(f["txt"])
    c2i = torch.from_numpy(f["captionToImage"]).long()
    eye = torch.eye(c["batch"])

    def data(idx):
        return img[c2i[idx]], txt[idx], eye if len(idx) == c["batch"] else torch.eye(len(idx))

    def epoch(pairs):
        theta = heads_from(f, torch.float32, requires_grad=True)
        params = params_of(theta)

        def step(grads):
            with torch.no_grad():
                for p, g in zip(params, grads):
                    p.sub_(c["lr"] * g)

        train_epoch(theta, step, pairs, c["batch"], c["dropout"], c["temperature"], data)

    return lambda: epoch(c["warmPairs"]), lambda: epoch(len(c2i))


def test_split(f):
    img, txt = torch.from_numpy(f["test.img"]), torch.from_numpy(f["test.txt"])
    c2i = torch.from_numpy(f["test.captionToImage"]).long()
    per = len(c2i) // img.shape[0]
    i2c = torch.arange(len(c2i)).reshape(img.shape[0], per)  # caption c shows image floor(c / per)
    return img, txt, c2i, i2c


@torch.no_grad()
def retrieval(theta, split):
    """IR@K (each caption, its one image) and TR@K (each image, the best rank of its captions), K = 1, 5, 10."""
    img, txt, c2i, i2c = split
    scores = head(theta["img"], img, None) @ head(theta["txt"], txt, None).t()  # images x captions
    if not torch.isfinite(scores).all():
        raise FloatingPointError("retrieval scores are NaN or infinite")
    own = scores[c2i, torch.arange(scores.shape[1])]
    ir_rank = (scores > own[None, :]).sum(0)
    best = scores.gather(1, i2c)
    tr_rank = (scores[:, None, :] > best[:, :, None]).sum(2).min(1).values
    r = {}
    for k in (1, 5, 10):
        r[f"ir{k}"] = (ir_rank < k).double().mean().item() * 100
        r[f"tr{k}"] = (tr_rank < k).double().mean().item() * 100
    return r


def eval_case(c):
    """One student: SGD momentum 0.9, weight decay 5e-4, per-tower lr, x0.1 from `decayEpoch`, retrieval on
    the validation and test splits (here the same split) every `evalEvery` epochs and after the last."""
    f, _ = read_safetensors(c["file"])
    x, y, s = torch.from_numpy(f["x"]), torch.from_numpy(f["y"]), torch.from_numpy(f["s"])
    split = test_split(f)

    def data(idx):
        return x[idx], y[idx], s[idx][:, idx]

    def student(epochs, every):
        theta = heads_from(f, torch.float32, requires_grad=True)
        groups = [{"params": [theta[t][n] for n in PARAM_NAMES], "lr": c["lr"]} for t in TOWERS]
        opt = torch.optim.SGD(groups, lr=c["lr"], momentum=c["momentum"], weight_decay=c["weightDecay"])
        params = params_of(theta)

        def step(grads):
            for p, g in zip(params, grads):
                p.grad = g
            opt.step()

        for epoch in range(epochs):
            if epoch % every == 0:
                retrieval(theta, split)  # validation split
                retrieval(theta, split)  # test split
            for g in opt.param_groups:
                g["lr"] = c["lr"] * (0.1 if epoch >= c["decayEpoch"] else 1)
            train_epoch(theta, step, c["n"], c["batch"], c["dropout"], c["temperature"], data)
        retrieval(theta, split)
        retrieval(theta, split)

    return lambda: student(1, 1), lambda: student(c["epochs"], c["evalEvery"])


def retrieval_case(c):
    f, _ = read_safetensors(c["file"])
    split = test_split(f)
    theta = heads_from(f, torch.float32)
    return lambda: retrieval(theta, split), lambda: retrieval(theta, split)


def sgemm_case(c):
    n = c["n"]
    if c["library"] == "numpy":
        r = np.random.default_rng(0)
        a = r.random((n, n), dtype=np.float32) * 2 - 1
        b = r.random((n, n), dtype=np.float32) * 2 - 1
        call = lambda: a @ b
    else:
        g = torch.Generator().manual_seed(0)
        a = torch.rand(n, n, generator=g) * 2 - 1
        b = torch.rand(n, n, generator=g) * 2 - 1
        call = lambda: torch.mm(a, b)
    return call, call


def iteration_case(c):
    """`warmIterations` iterations, then `timedIterations` timed (the harness reports their mean)."""
    it = IterationInputs(c, torch.float32)

    def repeat(n):
        return lambda: [iteration(it, c["mode"]) for _ in range(n)]

    return repeat(c["warmIterations"]), repeat(c["timedIterations"])


CASES = {"iteration": iteration_case, "expert": expert_case, "eval": eval_case, "retrieval": retrieval_case, "sgemm": sgemm_case}

# ---------------------------------------------------------------------------------------------------------
# commands


def max_rss_kib():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux


def blas_libraries():
    """The BLAS/LAPACK shared objects mapped into this process (after a product has loaded them)."""
    found = set()
    with open("/proc/self/maps") as maps:
        for line in maps:
            path = line.split()[-1] if len(line.split()) >= 6 else ""
            if any(k in os.path.basename(path).lower() for k in ("blas", "lapack", "mkl")):
                found.add(os.path.realpath(path))
    return sorted(found)


def runtime():
    return f"torch {torch.__version__}, {torch.get_num_threads()} thread(s), OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY', 'unset')}"


def cmd_info():
    (torch.rand(64, 64) @ torch.rand(64, 64)).sum()
    np.ones((64, 64), np.float32) @ np.ones((64, 64), np.float32)
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        np.show_config()
    return {
        "python": sys.version.split()[0],
        "executable": sys.executable,
        "torch": torch.__version__,
        "numpy": np.__version__,
        "threads": torch.get_num_threads(),
        "blasLibraries": blas_libraries(),
        "torchConfig": torch.__config__.show(),
        "parallelInfo": torch.__config__.parallel_info(),
        "numpyConfig": buf.getvalue(),
    }


def cmd_run(c):
    warm, run = CASES[c["kind"]](c)
    base = max_rss_kib()
    t = time.perf_counter()
    warm()
    warmup = time.perf_counter() - t
    t = time.perf_counter()
    run()
    seconds = time.perf_counter() - t
    return {"seconds": seconds, "warmupSeconds": warmup, "peakRssKiB": max_rss_kib(), "baseRssKiB": base, "runtime": runtime()}


def cmd_check(c):
    """Max relative error (max |ours - peer| / max |peer|) of each of our gradients and losses, against this
    peer computing in float64 and in float32."""
    ours, _ = read_safetensors(c["out"])
    ic = c["iteration"]
    out = {"mode": ic["mode"], "similarity": ic["similarity"], "errors": {}}
    for name, dtype in (("f64", torch.float64), ("f32", torch.float32)):
        losses, grads = iteration(IterationInputs(ic, dtype), ic["mode"])
        for k, g in grads.items():
            mine = ours[f"grad.{k}"].astype(np.float64).reshape(-1)
            ref = g.detach().to(torch.float64).numpy().reshape(-1)
            scale = np.abs(ref).max()
            err = float(np.abs(mine - ref).max() / scale) if scale > 0 else float(np.abs(mine).max())
            out["errors"].setdefault(k, {})[name] = err
        for t, key in (("img", "lossImg"), ("txt", "lossTxt")):
            mine = float(ours[key][0])
            out["errors"].setdefault(key, {})[name] = abs(mine - losses[t]) / abs(losses[t])
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("command", choices=("info", "run", "check"))
    ap.add_argument("case", nargs="?", help="the case as JSON (run, check)")
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    if a.command == "info":
        res = cmd_info()
    else:
        if a.case is None:
            ap.error(f"{a.command} needs the case JSON")
        c = json.loads(a.case)
        res = cmd_run(c) if a.command == "run" else cmd_check(c)
    sys.stdout.write(RESULT_MARK + json.dumps(res) + "\n")


if __name__ == "__main__":
    main()
