"""One SGD training step of the name model, timed side by side in one process.

    python -m benchmarks.bench_step [--batches 32 1024 16384] [--json out.json]

tinygrad_mm (numpy), the hand-written numpy step (the floor an autograd library over numpy
can approach) and torch eager on CPU (when installed) start from the same weights and see
the same batches. Each timing is the median over repeats of many steps after a warm-up.
Also prints the peak memory (tracemalloc, which sees numpy's allocations) of one
batch-16384 step, and with --device cuda the cupy vs torch-CUDA variant.
"""
import argparse
import gc
import json
import platform
import statistics
import time
import tracemalloc

import numpy as np

import tinygrad_mm as tg
from benchmarks.reference_steps import NumpyStep, TorchStep, init_params
from models.mlp import MLPConfig, MLPLanguageModel
from models.train import train_step

LR = 0.1


class LibraryStep:
    """The same step written with tinygrad_mm: model forward, backward, SGD."""

    def __init__(self, params, device="cpu"):
        self.model = MLPLanguageModel(MLPConfig(), dtype=params["C"].dtype, device=device)
        m = self.model
        for t, k in ((m.embedding.weight, "C"), (m.hidden.weight, "W1"), (m.hidden.bias, "b1"),
                     (m.output.weight, "W2"), (m.output.bias, "b2")):
            t.data = tg.backend.to_device(params[k].copy(), device)
        self.opt = tg.optim.SGD(m.parameters(), lr=LR)
        self.device = device

    def __call__(self, X, Y, lr):
        self.opt.lr = lr
        return train_step(self.model, self.opt, X, Y)  # the step `python -m models train` runs


def make_batches(n, batch, seed=0):
    """n batches of (X (B, 3), Y (B,)) drawn from the bundled names, identical for every contender."""
    from models.dataset import make_splits
    data = make_splits()
    rng = np.random.default_rng(seed)
    ix = rng.integers(0, len(data.Xtr), (n, batch))
    return [(data.Xtr[i], data.Ytr[i]) for i in ix]


def time_steps(steps, repeats):
    """Median µs per step of each contender, {name: (step, its batches)}, over `repeats` rounds.

    Each round gives every contender in turn a short untimed warm-up and then one timed pass
    through the batches. Interleaving keeps a slow spell of the machine from landing on one
    contender; the warm-up lets the previous contender's thread pool (OpenBLAS, OpenMP) go idle
    and this one's caches and allocator fill again, so no contender pays for another.
    """
    runs = {name: [] for name in steps}
    for _ in range(repeats):
        for name, (step, bs) in steps.items():
            for X, Y in bs[: max(3, len(bs) // 4)]:
                step(X, Y, LR)
            gc.collect()
            t = time.perf_counter()
            for X, Y in bs:
                step(X, Y, LR)
            runs[name].append((time.perf_counter() - t) / len(bs) * 1e6)
    return {name: statistics.median(r) for name, r in runs.items()}


def steps_for(batch):
    return 400 if batch <= 64 else 40 if batch <= 2048 else 8


def peak_memory(step, batches):
    """Peak bytes allocated during one step (tracemalloc sees numpy's buffers)."""
    step(*batches[0], LR)
    tg.host_pool.host_pool.clear()  # so the step's pooled buffers are allocated, and counted, inside
    tracemalloc.start()
    step(*batches[1], LR)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak


def run(batches_sizes, repeats, device="cpu", contenders=None):
    """Time every contender at every batch size; returns a list of result rows."""
    params = init_params(0)
    rows = []
    for b in batches_sizes:
        batches = make_batches(steps_for(b), b)
        row = {"batch": b, "device": device}
        steps = {"tinygrad_mm": lambda: LibraryStep(params, device)}
        if device == "cpu":
            steps["numpy"] = lambda: NumpyStep(params)
        steps["torch"] = lambda: _torch_step(params, device)
        timed = {}
        for name, make in steps.items():
            if contenders and name not in contenders:
                continue
            step = make()
            if step is None:
                continue
            bs = batches
            if device == "cuda" and name == "tinygrad_mm":
                bs = [(tg.backend.to_device(X, "cuda"), tg.backend.to_device(Y, "cuda")) for X, Y in batches]
            timed[name] = (step, bs)
        row.update(time_steps(timed, repeats))
        if "numpy" in row:
            row["ratio_vs_numpy"] = row["tinygrad_mm"] / row["numpy"]
        if "torch" in row:
            row["ratio_vs_torch"] = row["tinygrad_mm"] / row["torch"]
        if b >= 16384 and device == "cpu":
            row["peak_bytes_tinygrad_mm"] = peak_memory(LibraryStep(params), batches)
            row["peak_bytes_numpy"] = peak_memory(NumpyStep(params), batches)
        rows.append(row)
    return rows


def _torch_step(params, device):
    try:
        import torch
    except ImportError:
        return None
    if device == "cpu":
        return TorchStep(params)
    from benchmarks.gpu import TorchCudaStep
    return TorchCudaStep(params) if torch.cuda.is_available() else None


def format_rows(rows):
    """The results as a text table."""
    head = f"{'device':<6} {'batch':>6} {'tinygrad_mm µs':>15} {'numpy µs':>10} {'torch µs':>10} " \
           f"{'÷ numpy':>8} {'÷ torch':>8}"
    lines = [head, "-" * len(head)]
    for r in rows:
        f = lambda k, fmt: format(r[k], fmt) if k in r else "—"
        lines.append(f"{r['device']:<6} {r['batch']:>6} {f('tinygrad_mm', '15.1f')} {f('numpy', '10.1f'):>10} "
                     f"{f('torch', '10.1f'):>10} {f('ratio_vs_numpy', '8.2f'):>8} {f('ratio_vs_torch', '8.2f'):>8}")
        if "peak_bytes_tinygrad_mm" in r:
            lines.append(f"       peak memory of one step: tinygrad_mm {r['peak_bytes_tinygrad_mm'] / 2**20:.1f} MiB, "
                         f"numpy {r['peak_bytes_numpy'] / 2**20:.1f} MiB")
    return "\n".join(lines)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batches", type=int, nargs="+", default=[32, 1024, 16384])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    ap.add_argument("--json", help="also write the results to this JSON file")
    args = ap.parse_args(argv)
    rows = run(args.batches, args.repeats, args.device)
    print(f"training step of the name model (float32, SGD), {platform.processor() or platform.machine()}, "
          f"numpy {np.__version__}")
    print(format_rows(rows))
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"step": rows, "numpy": np.__version__}, f, indent=2)
    return rows


if __name__ == "__main__":
    main()
