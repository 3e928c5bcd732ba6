"""makemore-style command line for the name MLP: train, sample, eval, lr-find, plot, bigram.

    python -m models train [--recipe wide] [--optimizer adam] [--resume] [--device cuda] ...
    python -m models sample -n 20 --temperature 0.8 --seed 1
    python -m models eval | lr-find | plot | bigram
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from dataclasses import replace

import numpy as np

from tinygrad_mm.checkpoint import CheckpointError

from .dataset import DEFAULT_DATA_PATH, DataError, Vocab, bigram_counts, bigram_nll, load_words, split_words
from .sample import mark_names, sample_names
from .train import (CKPT_NAME, LR_FIND_DIVISOR, LR_FIND_NAME, RunError, TrainConfig, count_bigram_dev_loss,
                    fit, load_model, lr_find, new_run, resume_run, split_losses, train_neural_bigram)

__all__ = ["main", "TrainConfig", "RECIPES", "build_parser"]

# Named presets; explicit options override them. "default" is the lecture's model and schedule.
# decay_frac places the lr decays at fractions of --steps, so they move when --steps changes.
RECIPES = {
    "default": {},
    # wider and longer context; weight decay because the 113k parameters overfit at lr 0.1
    # (without it dev loss climbs from 2.14 to 2.28 over 200k steps before the first decay)
    "wide": {"block_size": 8, "n_embd": 24, "n_hidden": 512, "steps": 200_000, "lr": 0.1,
             "decay_frac": [0.5, 0.75], "weight_decay": 1e-4},
}
EXIT_INTERRUPTED = 130  # the shell's convention for a run stopped by Ctrl-C


def _add_config_options(p):
    """Model/data/optimizer options; unset ones stay absent so recipes and checkpoints fill them."""
    S, d = argparse.SUPPRESS, TrainConfig()
    p.add_argument("--recipe", choices=sorted(RECIPES), default=S,
                   help="named preset (default: default = the lecture's model); explicit options override it")
    p.add_argument("--data", metavar="PATH", default=S,
                   help="UTF-8 text file, one name per line (default: the bundled names.txt)")
    p.add_argument("--seed", type=int, default=S, help=f"data split, init and minibatch seed (default {d.seed})")
    p.add_argument("--block-size", type=int, default=S, help=f"context length (default {d.block_size})")
    p.add_argument("--n-embd", type=int, default=S, help=f"embedding size per character (default {d.n_embd})")
    p.add_argument("--n-hidden", type=int, default=S, help=f"tanh layer width (default {d.n_hidden})")
    p.add_argument("--steps", type=int, default=S, help=f"training steps (default {d.steps:,})")
    p.add_argument("--batch-size", type=int, default=S, help=f"minibatch size (default {d.batch_size})")
    p.add_argument("--optimizer", choices=["sgd", "adam"], default=S, help="default sgd")
    p.add_argument("--lr", type=float, default=S, help="initial learning rate (default 0.1 sgd, 3e-3 adam)")
    p.add_argument("--decay-at", type=int, nargs="+", metavar="STEP", default=S,
                   help="steps at which lr is multiplied by --decay-factor (default: steps/2)")
    p.add_argument("--decay-factor", type=float, default=S, help=f"default {d.decay_factor}")
    p.add_argument("--weight-decay", type=float, default=S, help="L2 weight decay (default 0)")
    p.add_argument("--device", choices=["cpu", "cuda"], default=S, help="cuda needs cupy and a GPU (default cpu)")


def _run_options(p, ckpt=True):
    p.add_argument("--out-dir", default="runs/default", help="run folder (default runs/default)")
    if ckpt:
        p.add_argument("--ckpt", help=f"checkpoint file (default OUT_DIR/{CKPT_NAME})")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m models", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("train", help="train the MLP (checkpoints; Ctrl-C saves; --resume continues)")
    _add_config_options(p)
    _run_options(p, ckpt=False)
    S = argparse.SUPPRESS
    p.add_argument("--eval-every", type=int, default=S, help="dev-loss period in steps (default 10000; 0: off)")
    p.add_argument("--ckpt-every", type=int, default=S, help="checkpoint period in steps (default 10000)")
    p.add_argument("--resume", action="store_true", help="continue the run in --out-dir exactly where it stopped")
    p.add_argument("--overwrite", action="store_true", help="start afresh even if --out-dir has a checkpoint")
    p.add_argument("--max-steps", type=int, help="stop (and checkpoint) at this step; --resume continues")
    p.add_argument("--progress", choices=["auto", "tqdm", "log", "none"], default="auto",
                   help="tqdm bar if installed (auto), a periodic log line, or nothing")
    p.add_argument("--num-samples", type=int, default=10, help="names to sample at the end (default 10)")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("sample", help="sample names from a checkpoint")
    _run_options(p)
    p.add_argument("-n", "--num", type=int, default=20, help="how many names (default 20)")
    p.add_argument("--temperature", type=float, default=1.0, help="softmax temperature (default 1.0)")
    p.add_argument("--seed", type=int, default=None, help="sampling seed (default: random)")
    p.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    p.set_defaults(func=cmd_sample)

    p = sub.add_parser("eval", help="loss of a checkpoint on the train/dev/test splits")
    _run_options(p)
    p.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    p.set_defaults(func=cmd_eval)

    p = sub.add_parser("lr-find", help="one step per lr over 10**linspace(-3, 0), from a fresh init")
    _add_config_options(p)
    _run_options(p, ckpt=False)
    p.add_argument("--lr-min", type=float, default=1e-3)
    p.add_argument("--lr-max", type=float, default=1.0)
    p.add_argument("--num", type=int, default=1000, help="number of lrs = steps (default 1000)")
    p.set_defaults(func=cmd_lr_find)

    p = sub.add_parser("plot", help="PNGs: loss curve, lr finder, 2-D embedding (needs matplotlib)")
    _run_options(p)
    p.add_argument("--chunk", type=int, help="steps averaged per point of the loss curve (default steps/200)")
    p.set_defaults(func=cmd_plot)

    p = sub.add_parser("bigram", help="makemore part 1 baselines: count bigram and neural bigram")
    p.add_argument("--data", metavar="PATH", default=DEFAULT_DATA_PATH)
    p.add_argument("--seed", type=int, default=42, help="split seed for the dev baseline (default 42)")
    p.add_argument("--smoothing", type=float, default=1.0, help="add-k smoothing of the counts (default 1)")
    p.add_argument("--steps", type=int, default=200, help="full-batch gradient steps (default 200)")
    p.add_argument("--lr", type=float, default=50.0, help="default 50, as in the lecture")
    p.add_argument("--reg", type=float, default=0.01, help="weight of mean(W**2) in the loss (default 0.01)")
    p.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    p.set_defaults(func=cmd_bigram)
    return parser


def _explicit(args) -> dict:
    """The TrainConfig fields given on the command line."""
    return {k: getattr(args, k) for k in TrainConfig.__dataclass_fields__ if hasattr(args, k)}


def config_from_args(args) -> TrainConfig:
    """Defaults < recipe < explicit options."""
    explicit = _explicit(args)
    name = explicit.get("recipe", "default")
    recipe = dict(RECIPES[name])
    fracs = recipe.pop("decay_frac", None)
    config = TrainConfig(**{**recipe, "recipe": name, **explicit})
    if fracs and "decay_at" not in explicit:
        config = replace(config, decay_at=[int(f * config.steps) for f in fracs])
    return config


def _ckpt(args):
    return args.ckpt or os.path.join(args.out_dir, CKPT_NAME)


def _describe(run):
    c, d = run.config, run.data
    sched = ", ".join(f"x{c.decay_factor:g} at {s:,}" for s in c.decay_at)
    print(f"data {c.data}: {len(d.train_words) + len(d.dev_words) + len(d.test_words):,} words, "
          f"vocab {d.vocab.size}, examples train/dev/test {len(d.Xtr):,}/{len(d.Xdev):,}/{len(d.Xte):,}")
    print(f"model (recipe {c.recipe}): block {c.block_size}, n_embd {c.n_embd}, n_hidden {c.n_hidden}, "
          f"{run.model.num_parameters():,} parameters, device {c.device}")
    wd = f", weight decay {c.weight_decay:g}" if c.weight_decay else ""
    print(f"{c.optimizer} lr {c.lr:g} ({sched or 'constant'}){wd}, batch {c.batch_size}, {c.steps:,} steps, "
          f"seed {c.seed}")


def cmd_train(args) -> int:
    ckpt = os.path.join(args.out_dir, CKPT_NAME)
    if args.resume:
        run = resume_run(args.out_dir, **_explicit(args))
        print(f"resuming {ckpt} at step {run.step:,}")
    else:
        if os.path.exists(ckpt) and not args.overwrite:
            raise RunError(f"{ckpt} exists: pass --resume to continue that run or --overwrite to start afresh")
        run = new_run(config_from_args(args))
    _describe(run)
    print(f"count-bigram baseline (add-1) dev loss: {count_bigram_dev_loss(run.data):.4f}")
    start, t0 = run.step, time.perf_counter()
    fit(run, args.out_dir, max_steps=args.max_steps, progress=args.progress)
    wall = time.perf_counter() - t0
    rate = (run.step - start) / max(wall, 1e-9)
    print(f"{run.step - start:,} steps in {wall:.1f} s ({rate:,.0f} steps/s); checkpoint {ckpt}")
    if run.interrupted:
        print(f"interrupted at step {run.step:,}; continue with: python -m models train --resume "
              f"--out-dir {args.out_dir}")
        return EXIT_INTERRUPTED
    if run.step < run.config.steps:
        print(f"stopped at step {run.step:,} of {run.config.steps:,} (--max-steps); --resume continues")
    losses = split_losses(run.model, run.data)
    print("final loss: " + "  ".join(f"{k} {v:.4f}" for k, v in losses.items()))
    if args.num_samples:
        names = sample_names(run.model, run.data.vocab, args.num_samples, seed=run.config.seed)
        print("samples: " + ", ".join(mark_names(names, run.data.train_words)))
    return 0


def cmd_sample(args) -> int:
    _, model, data, _ = load_model(_ckpt(args), args.device)
    for line in mark_names(sample_names(model, data.vocab, args.num, args.temperature, args.seed),
                           data.train_words):
        print(line)
    return 0


def cmd_eval(args) -> int:
    config, model, data, ck = load_model(_ckpt(args), args.device)
    print(f"{_ckpt(args)}: step {int(ck['step']):,} of {config.steps:,} (recipe {config.recipe})")
    for split, loss in split_losses(model, data).items():
        print(f"{split:5s} loss {loss:.4f}")
    return 0


def cmd_lr_find(args) -> int:
    res = lr_find(config_from_args(args), args.lr_min, args.lr_max, args.num)
    os.makedirs(args.out_dir, exist_ok=True)
    path = os.path.join(args.out_dir, LR_FIND_NAME)
    np.savez(path, **res)
    i = int(np.argmin(res["smoothed"]))
    print(f"{len(res['losses'])} steps; smoothed loss is lowest ({res['smoothed'][i]:.3f}) at lr "
          f"{res['lrs'][i]:.3g}")
    print(f"suggested lr: {res['suggested']:.3g} (that lr / {LR_FIND_DIVISOR:g}); saved {path}")
    return 0


def cmd_plot(args) -> int:
    from .plots import PlotUnavailable, plot_run
    try:
        written = plot_run(args.out_dir, _ckpt(args), os.path.join(args.out_dir, LR_FIND_NAME), args.chunk)
    except PlotUnavailable as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    if not written:
        raise RunError(f"nothing to plot: no {_ckpt(args)} and no {os.path.join(args.out_dir, LR_FIND_NAME)}")
    for p in written:
        print(f"wrote {p}")
    return 0


def cmd_bigram(args) -> int:
    words = load_words(args.data)
    vocab = Vocab.from_words(words)
    k = args.smoothing
    print(f"count bigram (add-{k:g}): NLL over all {len(words):,} names "
          f"{bigram_nll(words, vocab, bigram_counts(words, vocab), k):.4f}")
    tr, dev, _ = split_words(words, args.seed)
    if tr and dev:
        print(f"count bigram (add-{k:g}) fit on train split: dev NLL "
              f"{bigram_nll(dev, vocab, bigram_counts(tr, vocab), k):.4f}")
    t0 = time.perf_counter()
    _, total, nll = train_neural_bigram(words, vocab, args.steps, args.lr, args.reg, device=args.device)
    print(f"neural bigram ({args.steps} full-batch steps, lr {args.lr:g}, reg {args.reg:g}, "
          f"{time.perf_counter() - t0:.1f} s): loss {total:.4f} (NLL {nll:.4f} + regularization)")
    return 0


def main(argv=None) -> int:
    """Entry point; returns the exit code (0 ok, 1 plotting unavailable, 2 error, 130 interrupted)."""
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (RunError, DataError, CheckpointError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # outside the training loop (which saves and returns by itself)
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
