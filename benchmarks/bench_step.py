"""One SGD training step of the name model: each contender in its own process, interleaved rounds.

    python -m benchmarks.bench_step [--batches 32 1024 16384] [--repeats 5] [--json out.json]

Contenders: the hand-written numpy step (the floor an autograd library over numpy can
approach), the library's eager step, the same step under tg.compile, and torch eager (when
installed); opt-in, `minimal`: the smallest tape that trains the model (minimal_tape.py), the
floor of any eager tape. All start from the same weights and see the same batches. Each runs in its own
worker process -- two thread pools in one process spin against each other and made torch's
batch-32 figure an artifact (24 ms) -- started with OPENBLAS_NUM_THREADS=1; torch keeps its
own default intra-op threads. The parent asks the workers in turn for one timed pass per
round (after a short untimed warm-up), so a slow spell of the shared machine is spread over
every contender; the table shows the median over rounds (for a ratio, the median of the
rounds' ratios: the two passes of a round ran back to back), and the minor page faults per step
(getrusage ru_minflt: fresh pages the kernel had to map, ~4 KiB each).
"""
import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time

import numpy as np

LR = 0.1
CONTENDERS = ("numpy", "eager", "compiled", "torch")
EXTRA = ("minimal",)  # opt-in with --contenders: the smallest tape that trains the model
GPU_CONTENDERS = ("eager", "compiled", "graph", "torch")  # graph: compiled with cuda_graph=True


class LibraryStep:
    """The step written with tinygrad_mm, eager, or under tg.compile (`compiled=True`, or
    "graph" for CUDA graphs)."""

    def __init__(self, params, device="cpu", compiled=False):
        import tinygrad_mm as tg
        from models.mlp import MLPConfig, MLPLanguageModel
        from models.train import train_step  # the step `python -m models train` runs
        self.tg, self.device = tg, device
        self.model = MLPLanguageModel(MLPConfig(), dtype=params["C"].dtype, device=device)
        m = self.model
        for t, k in ((m.embedding.weight, "C"), (m.hidden.weight, "W1"), (m.hidden.bias, "b1"),
                     (m.output.weight, "W2"), (m.output.bias, "b2")):
            t.data = tg.as_tensor(params[k].copy(), device=device)
        self.opt = tg.optim.SGD(m.parameters(), lr=LR)
        self.step = tg.compile(train_step, cuda_graph=compiled == "graph") if compiled else train_step

    def __call__(self, X, Y, lr):
        self.opt.lr = lr
        if self.device != "cpu":
            X, Y = self.tg.as_tensor(X, device=self.device), self.tg.as_tensor(Y, device=self.device)
        return self.step(self.model, self.opt, X, Y).item()  # arrays as they are, as the CLI passes them


def make_batches(n, batch, seed=0):
    """n batches of (X (B, 3), Y (B,)) drawn from the bundled names, identical for every contender."""
    from models.dataset import make_splits
    data = make_splits()
    rng = np.random.default_rng(seed)
    ix = rng.integers(0, len(data.Xtr), (n, batch))
    return [(data.Xtr[i], data.Ytr[i]) for i in ix]


def steps_for(batch):
    return 400 if batch <= 64 else 40 if batch <= 2048 else 8


def make_step(name, device="cpu"):
    """A fresh contender from the shared initial weights, or None when it cannot run here."""
    from benchmarks.reference_steps import NumpyStep, TorchStep, init_params
    params = init_params(0)
    if name == "numpy":
        return NumpyStep(params) if device == "cpu" else None
    if name == "minimal":  # the floor of any eager tape (benchmarks/minimal_tape.py); opt-in
        from benchmarks.minimal_tape import MinimalStep
        return MinimalStep(params) if device == "cpu" else None
    if name in ("eager", "compiled", "graph"):
        return LibraryStep(params, device, compiled={"eager": False, "compiled": True, "graph": "graph"}[name])
    try:
        import torch
    except ImportError:
        return None
    if device == "cuda" and not torch.cuda.is_available():
        return None
    return TorchStep(params, device=device)


def worker(name, batch, device, steps=None):
    """Serve timing requests on stdin: one line "run" -> one JSON line {us, faults}."""
    step = make_step(name, device)
    print(json.dumps({"ready": step is not None}), flush=True)
    if step is None:
        return
    batches = make_batches(steps or steps_for(batch), batch)
    sync = _sync(device)
    for line in sys.stdin:
        if line.strip() != "run":
            break
        for X, Y in batches[: max(3, len(batches) // 4)]:  # warm caches, the allocator, the thread pool
            step(X, Y, LR)
        sync()
        f0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        t = time.perf_counter()
        for X, Y in batches:
            step(X, Y, LR)
        sync()
        us = (time.perf_counter() - t) / len(batches) * 1e6
        faults = (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - f0) / len(batches)
        print(json.dumps({"us": us, "faults": faults}), flush=True)


def _sync(device):
    if device != "cuda":
        return lambda: None
    import tinygrad_mm as tg
    return lambda: tg.zeros(1, device="cuda").item()  # a device round trip: all queued work is done


def _spawn(name, batch, device, steps):
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1")
    if name == "torch":
        env.pop("OPENBLAS_NUM_THREADS")  # torch at its default threads
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env["PYTHONPATH"] = root + os.pathsep + env.get("PYTHONPATH", "")
    p = subprocess.Popen([sys.executable, "-m", "benchmarks.bench_step", "--worker", name, "--batches", str(batch),
                          "--device", device, "--steps", str(steps)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env,
                         cwd=root)
    line = p.stdout.readline()
    if not line:
        raise RuntimeError(f"the {name} worker (batch {batch}) failed to start; its traceback is above")
    ready = json.loads(line)["ready"]
    return p if ready else _close(p)


def _close(p):
    p.stdin.close()
    p.wait()
    return None


def run(batch_sizes, repeats, device="cpu", contenders=CONTENDERS, steps=None):
    """Time every contender at every batch size (`steps` per timed pass, default steps_for);
    returns a list of result rows."""
    rows = []
    for b in batch_sizes:
        procs = {n: _spawn(n, b, device, steps or steps_for(b)) for n in contenders}
        procs = {n: p for n, p in procs.items() if p is not None}
        times, faults = {n: [] for n in procs}, {n: [] for n in procs}
        try:
            for _ in range(repeats):
                for n, p in procs.items():
                    p.stdin.write("run\n")
                    p.stdin.flush()
                    line = p.stdout.readline()
                    if not line:
                        raise RuntimeError(f"the {n} worker (batch {b}) died; its traceback is above")
                    r = json.loads(line)
                    times[n].append(r["us"])
                    faults[n].append(r["faults"])
        finally:
            for p in procs.values():
                _close(p)
        row = {"batch": b, "device": device}
        for n in procs:
            row[n] = statistics.median(times[n])
            row[f"faults_{n}"] = statistics.median(faults[n])
        for n in ("eager", "compiled", "graph", "minimal"):
            for ref in ("numpy", "torch"):
                if n in row and ref in row:  # per round, then the median: both saw the same spell of load
                    row[f"{n}_vs_{ref}"] = statistics.median(x / y for x, y in zip(times[n], times[ref]))
        rows.append(row)
    return rows


def format_rows(rows):
    """The results as a text table."""
    head = (f"{'device':<6} {'batch':>6} {'numpy µs':>9} {'eager µs':>9} {'compiled µs':>12} {'torch µs':>9} "
            f"{'eager÷np':>9} {'comp÷np':>8} {'comp÷torch':>11}   faults/step (np/eager/comp/torch)"
            + (f" {'graph µs':>9} {'graph÷torch':>11}" if any("graph" in r for r in rows) else "")
            + (f" {'minimal µs':>10} {'min÷np':>7}" if any("minimal" in r for r in rows) else ""))
    lines = [head, "-" * len(head)]
    for r in rows:
        f = lambda k, fmt: format(r[k], fmt) if k in r else "—"
        flt = "/".join(f(f"faults_{n}", ".0f") for n in CONTENDERS)
        lines.append(f"{r['device']:<6} {r['batch']:>6} {f('numpy', '9.1f'):>9} {f('eager', '9.1f'):>9} "
                     f"{f('compiled', '12.1f'):>12} {f('torch', '9.1f'):>9} {f('eager_vs_numpy', '9.2f'):>9} "
                     f"{f('compiled_vs_numpy', '8.2f'):>8} {f('compiled_vs_torch', '11.2f'):>11}   {flt}"
                     + (f" {f('graph', '9.1f'):>9} {f('graph_vs_torch', '11.2f'):>11}" if "graph" in r else "")
                     + (f" {f('minimal', '10.1f'):>10} {f('minimal_vs_numpy', '7.2f'):>7}" if "minimal" in r else ""))
    return "\n".join(lines)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batches", type=int, nargs="+", default=[32, 1024, 16384])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    ap.add_argument("--contenders", nargs="+", default=list(CONTENDERS), choices=CONTENDERS + EXTRA)
    ap.add_argument("--steps", type=int, help="steps per timed pass (default: 400 at batch <= 64, fewer above)")
    ap.add_argument("--json", help="also write the results to this JSON file")
    ap.add_argument("--worker", choices=GPU_CONTENDERS + ("numpy",) + EXTRA, help=argparse.SUPPRESS)  # internal: one contender's process
    args = ap.parse_args(argv)
    if args.worker:
        return worker(args.worker, args.batches[0], args.device, args.steps)
    rows = run(args.batches, args.repeats, args.device, args.contenders, args.steps)
    print(f"training step of the name model (float32, SGD), {platform.processor() or platform.machine()}, "
          f"numpy {np.__version__}; median of {args.repeats} interleaved rounds, one process per contender")
    print(format_rows(rows))
    if args.json:
        write_json(args.json, {"step": rows, "numpy": np.__version__})
    return rows


def write_json(path, obj):
    """Atomically: a temporary file in the same folder, then os.replace."""
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "w") as f:
        json.dump(obj, f, indent=2)
    os.replace(tmp, path)


if __name__ == "__main__":
    main()
