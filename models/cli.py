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

import numpy as np

from tinygrad_mm.checkpoint import CheckpointError

from . import diagnose, options
from .bigram import bigram_counts, bigram_nll, count_bigram_dev_loss, train_neural_bigram
from .config import RECIPES, RunError, TrainConfig, from_recipe
from .dataset import DataError, Vocab, data_warnings, load_lines, split_words
from .rundir import atomic_write
from .run import CKPT_NAME, load_model, model_from_checkpoint, new_run, read_checkpoint, resume_run, train_words
from .sample import mark_names, sample_names
from .train import LR_FIND_DIVISOR, LR_FIND_NAME, fit, lr_find, split_losses

__all__ = ["main", "TrainConfig", "RECIPES", "build_parser", "config_from_args"]

EXIT_INTERRUPTED = 130  # the shell's convention for a run stopped by Ctrl-C
PROG = f"python -m {__package__ or 'models'}"  # tinygrad_mm_models when pip-installed


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=PROG, description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("train", help="train the MLP (checkpoints; Ctrl-C saves; --resume continues)")
    options.add_model_options(p)
    options.add_run_options(p, ckpt=False)
    options.add_train_options(p)
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("sample", help="sample names from a checkpoint (needs no data file)")
    options.add_run_options(p)
    options.add_sample_options(p)
    options.add_device(p)
    p.set_defaults(func=cmd_sample)

    p = sub.add_parser("eval", help="loss of a checkpoint on the train/dev/test splits")
    options.add_run_options(p)
    p.add_argument("--data", metavar="PATH", default=None,
                   help="where the training data is now, if it moved (checked by its content hash)")
    options.add_device(p)
    p.set_defaults(func=cmd_eval)

    p = sub.add_parser("lr-find", help="one step per lr over 10**linspace(-3, 0), from a fresh init")
    options.add_model_options(p, training=False)
    options.add_run_options(p, ckpt=False)
    options.add_lr_find_options(p)
    p.set_defaults(func=cmd_lr_find, check=options.check_lr_find)

    p = sub.add_parser("plot", help="PNGs: loss curve, lr finder, 2-D embedding (needs matplotlib)")
    options.add_run_options(p)
    p.add_argument("--chunk", type=options.positive_int,
                   help="steps averaged per point of the loss curve (default steps/200)")
    p.set_defaults(func=cmd_plot)

    p = sub.add_parser("bigram", help="makemore part 1 baselines: count bigram and neural bigram")
    options.add_bigram_options(p)
    p.set_defaults(func=cmd_bigram)

    diagnose.add_parser(sub)   # makemore part 3's activation/gradient/update diagnostics
    return parser


def _explicit(args) -> dict:
    """The TrainConfig fields given on the command line."""
    return {k: getattr(args, k) for k in TrainConfig.__dataclass_fields__ if hasattr(args, k)}


def config_from_args(args) -> TrainConfig:
    """Defaults < recipe < explicit options."""
    explicit = _explicit(args)
    return from_recipe(explicit.pop("recipe", "default"), **explicit)


def _ckpt(args):
    return args.ckpt or os.path.join(args.out_dir, CKPT_NAME)


def _warn(notes):
    for note in notes:
        print(note, file=sys.stderr)


def _describe(run):
    c, d = run.config, run.data
    sched = ", ".join(f"x{c.decay_factor:g} at {s:,}" for s in c.decay_at)
    print(f"data {c.data}: {len(d.train_words) + len(d.dev_words) + len(d.test_words):,} words, "
          f"examples train/dev/test {len(d.Xtr):,}/{len(d.Xdev):,}/{len(d.Xte):,}")
    print(f"vocabulary ({d.vocab.size} tokens, '.' marks start and end): {d.vocab.to_string()!r}")
    print(f"model (recipe {c.recipe}): block {c.block_size}, n_embd {c.n_embd}, n_hidden {c.n_hidden}, "
          f"{run.model.num_parameters():,} parameters, device {c.device}")
    wd = f", weight decay {c.weight_decay:g}" if c.weight_decay else ""
    print(f"{c.optimizer} lr {c.lr:g} ({sched or 'constant'}){wd}, batch {c.batch_size}, {c.steps:,} steps, "
          f"seed {c.seed}")
    _warn(run.notes)


def cmd_train(args) -> int:
    ckpt = os.path.join(args.out_dir, CKPT_NAME)
    if args.resume:
        explicit = _explicit(args)
        run = resume_run(args.out_dir, data=explicit.pop("data", None), **explicit)
        print(f"resuming {ckpt} at step {run.step:,}")
    else:
        if os.path.exists(ckpt) and not args.overwrite:
            raise RunError(f"{ckpt} exists: pass --resume to continue that run or --overwrite to start afresh")
        run = new_run(config_from_args(args))
    _describe(run)
    print(f"count-bigram baseline (add-1) dev loss: {count_bigram_dev_loss(run.data):.4f}")
    start, t0 = run.step, time.perf_counter()
    fit(run, args.out_dir, max_steps=args.max_steps, progress=args.progress, eager=args.eager)
    wall = time.perf_counter() - t0
    rate = (run.step - start) / max(wall, 1e-9)
    print(f"{run.step - start:,} steps in {wall:.1f} s ({rate:,.0f} steps/s); checkpoint {ckpt}")
    if run.interrupted:
        print(f"interrupted at step {run.step:,}; continue with: {PROG} train --resume "
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
    ck = read_checkpoint(_ckpt(args))
    _, model, vocab = model_from_checkpoint(ck, args.device)
    for line in mark_names(sample_names(model, vocab, args.num, args.temperature, args.seed), train_words(ck)):
        print(line)
    return 0


def cmd_eval(args) -> int:
    config, model, data, ck = load_model(_ckpt(args), args.device, args.data)
    print(f"{_ckpt(args)}: step {int(ck['step']):,} of {config.steps:,} (recipe {config.recipe})")
    for split, loss in split_losses(model, data).items():
        print(f"{split:5s} loss {loss:.4f}")
    return 0


def cmd_lr_find(args) -> int:
    path = os.path.join(args.out_dir, LR_FIND_NAME)
    os.makedirs(args.out_dir, exist_ok=True)  # before the sweep: a bad folder fails first
    if not os.access(args.out_dir, os.W_OK):
        raise RunError(f"the run folder {args.out_dir!r} is not writable")
    res = lr_find(config_from_args(args), args.lr_min, args.lr_max, args.num)
    _warn(res.pop("notes"))
    diverged_at = res.pop("diverged_at")
    atomic_write(path, lambda f: np.savez(f, **res))
    i = int(np.argmin(res["smoothed"]))
    if diverged_at is not None:
        print(f"the loss diverged at lr {diverged_at:.3g}: the sweep ends there")
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
    words, linenos = load_lines(args.data, getattr(args, "lowercase", False), getattr(args, "nfc", False))
    _warn(data_warnings(words, linenos))
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
    """Entry point; returns the exit code (0 ok, 1 plotting unavailable, 2 error -- a bad option,
    a diverged run, a mismatched checkpoint -- and 130 interrupted)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    problem = args.check(args) if hasattr(args, "check") else None
    if problem:
        _subparser(parser, args.command).error(problem)  # exits 2 with "error: ..."
    try:
        return args.func(args)
    except (RunError, DataError, CheckpointError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except OSError as e:  # the disk or the folder, e.g. full or read-only
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # outside the training loop (which saves and returns by itself)
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


def _subparser(parser, name):
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return sub.choices[name]


if __name__ == "__main__":
    sys.exit(main())
