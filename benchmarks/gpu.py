"""The GPU variant: cupy (tinygrad_mm on device="cuda") against torch CUDA, batch 32 and 65536.

    python -m benchmarks.gpu [--json out.json]

Runs only where cupy sees a GPU (and torch CUDA, for the comparison). Timings synchronize
the device after each pass; at batch 32 it also counts the kernel launches of one step
with CUDA's profiler API through cupyx.profiler when available.
"""
import argparse
import json
import sys

import numpy as np

import tinygrad_mm as tg
from benchmarks import bench_step
from benchmarks.reference_steps import PARAM_NAMES, init_params


class TorchCudaStep:
    """The reference torch step on the GPU, synchronized so timings are honest."""

    def __init__(self, params):
        import torch
        import torch.nn.functional as F
        self.torch, self.F = torch, F
        self.params = {k: torch.tensor(params[k], device="cuda", requires_grad=True) for k in PARAM_NAMES}

    def __call__(self, X, Y, lr):
        torch, F, p = self.torch, self.F, self.params
        Xt, Yt = torch.from_numpy(X).cuda(non_blocking=True), torch.from_numpy(Y).cuda(non_blocking=True)
        emb = p["C"][Xt]
        h = torch.tanh(F.linear(emb.view(emb.shape[0], -1), p["W1"], p["b1"]))
        loss = F.cross_entropy(F.linear(h, p["W2"], p["b2"]), Yt)
        loss.backward()
        with torch.no_grad():
            for t in p.values():
                t.add_(t.grad, alpha=-lr)
                t.grad = None
        return loss.item()  # .item() synchronizes, as the library step's does


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batches", type=int, nargs="+", default=[32, 65536])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--json")
    args = ap.parse_args(argv)
    if not tg.cuda_available():
        print(f"GPU benchmark skipped: {tg.backend.CUPY_UNAVAILABLE_REASON}")
        return []
    rows = bench_step.run(args.batches, args.repeats, device="cuda")
    print(bench_step.format_rows(rows))
    params = init_params(0)
    X, Y = bench_step.make_batches(2, 32)[0]
    step = bench_step.LibraryStep(params, "cuda")
    launches = count_launches(lambda: step(tg.backend.to_device(X, "cuda"), tg.backend.to_device(Y, "cuda"), 0.1))
    if launches is not None:
        print(f"kernel launches in one batch-32 step: {launches}")
        rows.append({"batch": 32, "kernel_launches": launches})
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"gpu": rows}, f, indent=2)
    return rows


def count_launches(fn):
    """Kernel launches of fn() counted by torch's profiler (CUPTI), or None when unavailable."""
    try:
        from torch.profiler import ProfilerActivity, profile
    except ImportError:
        return None
    fn()
    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        fn()
    return sum(1 for e in prof.events() if e.device_type.name == "CUDA")


if __name__ == "__main__":
    sys.exit(0 if main() is not None else 1)
