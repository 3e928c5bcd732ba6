"""Per-op overhead on tiny tensors: forward + backward through the tape vs the same numpy calls.

    python -m benchmarks.bench_ops [--json out.json]

With 4x4 arrays the arithmetic is negligible, so `overhead = tape µs - numpy µs` is the
engine's cost per op (recording, the reverse sweep, gradient bookkeeping). Watch this
table for regressions op by op.
"""
import argparse
import json
import timeit

import numpy as np

import tinygrad_mm as tg
from tinygrad_mm.nn import functional as F


def _numpy_cases(a, b, w, idx, y):
    """Hand-written forward + backward of each op in numpy: the floor."""
    g = np.ones_like(a)
    rows = np.arange(len(y))

    def add():
        out = a + b
        return g + 0, g + 0, out

    def matmul():
        out = a @ w
        return g @ w.T, a.T @ g, out

    def tanh():
        out = np.tanh(a)
        return g * (1 - out * out)

    def gather():
        out = w[idx]
        gw = np.zeros_like(w)
        np.add.at(gw, idx, np.ones_like(out))
        return gw

    def cross_entropy():
        m = a.max(1, keepdims=True)
        e = np.exp(a - m)
        s = e.sum(1, keepdims=True)
        loss = (np.log(s[:, 0]) - (a[rows, y] - m[:, 0])).mean()
        d = e / s
        d[rows, y] -= 1
        d /= len(y)
        return loss, d
    return {"add": add, "matmul": matmul, "tanh": tanh, "gather": gather, "cross_entropy": cross_entropy}


def _tape_cases(a, b, w, idx, y):
    ta, tb, tw = (tg.Tensor(x, requires_grad=True) for x in (a, b, w))
    g = np.ones_like(a)

    def run(f, grad=None):
        def step():
            ta.grad = tb.grad = tw.grad = None
            f().backward(grad)
        return step
    return {
        "add": run(lambda: ta + tb, g),
        "matmul": run(lambda: ta @ tw, g),
        "tanh": run(lambda: ta.tanh(), g),
        "gather": run(lambda: tw[idx], np.ones((len(idx), w.shape[1]), np.float32)),
        "cross_entropy": run(lambda: F.cross_entropy(ta, y)),
    }


def run(number=20000):
    """µs per forward+backward for each op, tape vs numpy, and the difference."""
    rng = np.random.default_rng(0)
    a, b, w = (rng.standard_normal((4, 4)).astype(np.float32) for _ in range(3))
    idx = np.array([0, 1, 1, 3])
    y = np.array([0, 3, 3, 1])
    ours, floor = _tape_cases(a, b, w, idx, y), _numpy_cases(a, b, w, idx, y)
    rows = []
    for name in ours:
        t = min(timeit.repeat(ours[name], number=number, repeat=3)) / number * 1e6
        n = min(timeit.repeat(floor[name], number=number, repeat=3)) / number * 1e6
        rows.append({"op": name, "tape_us": t, "numpy_us": n, "overhead_us": t - n})
    return rows


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--number", type=int, default=20000)
    ap.add_argument("--json")
    args = ap.parse_args(argv)
    rows = run(args.number)
    print(f"{'op':<14} {'tape µs':>9} {'numpy µs':>9} {'overhead µs':>12}")
    for r in rows:
        print(f"{r['op']:<14} {r['tape_us']:>9.2f} {r['numpy_us']:>9.2f} {r['overhead_us']:>12.2f}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"ops": rows}, f, indent=2)
    return rows


if __name__ == "__main__":
    main()
