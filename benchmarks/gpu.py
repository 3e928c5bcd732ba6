"""The GPU variant: cupy (tinygrad_mm on device="cuda", eager and compiled) against torch CUDA.

    python -m benchmarks.gpu [--batches 32 65536] [--json out.json]

Runs only where cupy sees a GPU. Each contender runs in its own process (bench_step's
workers), timings synchronize the device after each pass; it also counts the kernel launches
of one batch-32 step with torch's profiler (CUPTI) when torch CUDA is present.
"""
import argparse
import sys

import tinygrad_mm as tg
from benchmarks import bench_step


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batches", type=int, nargs="+", default=[32, 65536])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--json")
    args = ap.parse_args(argv)
    if not tg.cuda_available():
        print("GPU benchmark skipped: cupy does not see a GPU here (tg.cuda_available() is False)")
        return []
    rows = bench_step.run(args.batches, args.repeats, device="cuda",
                          contenders=bench_step.GPU_CONTENDERS)
    print(bench_step.format_rows(rows))
    X, Y = bench_step.make_batches(2, 32)[0]
    for name in bench_step.GPU_CONTENDERS:
        step = bench_step.make_step(name, "cuda")
        launches = None if step is None else count_launches(lambda: step(X, Y, bench_step.LR))
        if launches is not None:
            print(f"kernel launches in one batch-32 step, {name}: {launches}")
            rows.append({"batch": 32, "contender": name, "kernel_launches": launches})
    if args.json:
        bench_step.write_json(args.json, {"gpu": rows})
    return rows


def count_launches(fn):
    """Kernel launches of fn() counted by torch's profiler (CUPTI), or None when unavailable."""
    try:
        import torch
        from torch.profiler import ProfilerActivity, profile
    except ImportError:
        return None
    if not torch.cuda.is_available():
        return None
    for _ in range(3):  # the compiled step captures on its first two calls
        fn()
    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        fn()
    return sum(1 for e in prof.events() if e.device_type.name == "CUDA")


if __name__ == "__main__":
    sys.exit(0 if main() is not None else 1)
