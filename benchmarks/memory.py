"""Resident memory over a long training run: it must stay flat (no tape or cache growth).

    python -m benchmarks.memory [--steps 100000]

Trains the name model at batch 32 and, every `--every` steps, evaluates the dev loss
*without* no_grad (the case that must not leak) and records the resident set size.
Exits non-zero if RSS grows by more than --tolerance-mib after the first checkpoint.
"""
import argparse
import os
import sys
import time

import numpy as np

import tinygrad_mm as tg
from models.dataset import make_splits
from models.mlp import MLPConfig, MLPLanguageModel


def rss_mib():
    """Current resident set size in MiB (Linux /proc; falls back to peak RSS elsewhere)."""
    try:
        with open(f"/proc/{os.getpid()}/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except OSError:
        import resource
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=100_000)
    ap.add_argument("--every", type=int, default=10_000)
    ap.add_argument("--tolerance-mib", type=float, default=8.0)
    args = ap.parse_args(argv)
    data = make_splits()
    model = MLPLanguageModel(MLPConfig())
    opt = tg.optim.SGD(model.parameters(), lr=0.1)
    rng = np.random.default_rng(0)
    readings, t0 = [], time.perf_counter()
    for step in range(1, args.steps + 1):
        ix = rng.integers(0, len(data.Xtr), 32)
        _, loss = model(data.Xtr[ix], data.Ytr[ix])
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step % args.every == 0:
            _, dev = model(data.Xdev[:2000], data.Ydev[:2000])  # deliberately not under no_grad
            readings.append((step, rss_mib(), len(tg.default_tape().entries)))
            print(f"step {step:>7}  loss {loss.item():.3f}  dev {dev.item():.3f}  rss {readings[-1][1]:7.1f} MiB  "
                  f"tape entries {readings[-1][2]}", flush=True)
    growth = readings[-1][1] - readings[0][1]
    print(f"{args.steps} steps in {time.perf_counter() - t0:.1f} s; RSS growth after step {readings[0][0]}: "
          f"{growth:+.1f} MiB (tolerance {args.tolerance_mib} MiB)")
    return 0 if growth <= args.tolerance_mib else 1


if __name__ == "__main__":
    sys.exit(main())
