"""The command line's options: every value is checked as it is parsed (argparse `type=`), so a bad
one stops with `error: ...` and exit status 2 before any work is done."""
from __future__ import annotations

import argparse
import math

from .config import RECIPES, TrainConfig
from .dataset import DEFAULT_DATA_PATH
from .run import CKPT_NAME

MAX_SEED = 2**63 - 1


def _number(kind, test, what):
    def parse(text):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not {'an integer' if kind is int else 'a number'}")
        if kind is float and not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"{text!r} is not a finite number")
        if not test(value):
            raise argparse.ArgumentTypeError(f"must be {what}, got {text}")
        return value
    return parse


positive_int = _number(int, lambda v: v >= 1, "an integer >= 1")
count = _number(int, lambda v: v >= 0, "an integer >= 0")
seed_int = _number(int, lambda v: 0 <= v <= MAX_SEED, f"an integer from 0 to {MAX_SEED}")
positive_float = _number(float, lambda v: v > 0, "a finite number > 0")
nonneg_float = _number(float, lambda v: v >= 0, "a finite number >= 0")

S = argparse.SUPPRESS  # unset options stay absent, so recipes and checkpoints fill them
D = TrainConfig()


def add_data_options(p, default=S):
    p.add_argument("--data", metavar="PATH", default=default,
                   help="UTF-8 text file, one name per line (default: the bundled names.txt)")
    p.add_argument("--lowercase", action="store_true", default=S,
                   help="fold the data to lower case first (Anna and anna become one name)")
    p.add_argument("--nfc", action="store_true", default=S,
                   help="Unicode NFC-normalise the data first (e + a combining accent becomes one character)")


def add_model_options(p, training=True):
    """Model/data/optimizer options; lr-find gets only those it uses (training=False)."""
    p.add_argument("--recipe", choices=sorted(RECIPES), default=S,
                   help="named preset (default: default = the lecture's model); explicit options override it")
    add_data_options(p)
    p.add_argument("--max-line-length", type=positive_int, default=S, metavar="N",
                   help=f"warn about lines longer than this (default {D.max_line_length})")
    p.add_argument("--seed", type=seed_int, default=S, help=f"data split, init and minibatch seed (default {D.seed})")
    p.add_argument("--block-size", type=positive_int, default=S, help=f"context length (default {D.block_size})")
    p.add_argument("--n-embd", type=positive_int, default=S, help=f"embedding size per character (default {D.n_embd})")
    p.add_argument("--n-hidden", type=positive_int, default=S, help=f"tanh layer width (default {D.n_hidden})")
    if training:
        p.add_argument("--steps", type=positive_int, default=S, help=f"training steps (default {D.steps:,})")
    p.add_argument("--batch-size", type=positive_int, default=S, help=f"minibatch size (default {D.batch_size})")
    p.add_argument("--optimizer", choices=["sgd", "adam"], default=S, help="default sgd")
    if training:
        p.add_argument("--lr", type=positive_float, default=S,
                       help="initial learning rate (default 0.1 sgd, 3e-3 adam)")
        p.add_argument("--decay-at", type=positive_int, nargs="+", metavar="STEP", default=S,
                       help="steps at which lr is multiplied by --decay-factor (default: steps/2)")
        p.add_argument("--decay-factor", type=positive_float, default=S,
                       help=f"lr multiplier at each --decay-at step (default {D.decay_factor})")
    p.add_argument("--weight-decay", type=nonneg_float, default=S, help="L2 weight decay (default 0)")
    add_device(p, S)


def add_device(p, default="cpu"):
    p.add_argument("--device", choices=["cpu", "cuda"], default=default,
                   help="cuda needs cupy and a GPU (default cpu)")


def add_run_options(p, ckpt=True):
    p.add_argument("--out-dir", default="runs/default", help="run folder (default runs/default)")
    if ckpt:
        p.add_argument("--ckpt", metavar="FILE", help=f"checkpoint file (default OUT_DIR/{CKPT_NAME})")


def add_train_options(p):
    p.add_argument("--eval-every", type=count, default=S, metavar="STEPS",
                   help=f"dev-loss period in steps (default {D.eval_every}; 0: off)")
    p.add_argument("--ckpt-every", type=count, default=S, metavar="STEPS",
                   help=f"checkpoint period in steps (default {D.ckpt_every}; 0: only at the end and on Ctrl-C)")
    p.add_argument("--resume", action="store_true", help="continue the run in --out-dir exactly where it stopped")
    p.add_argument("--overwrite", action="store_true", help="start afresh even if --out-dir has a checkpoint")
    p.add_argument("--max-steps", type=positive_int, metavar="STEP",
                   help="stop (and checkpoint) at this step; --resume continues")
    p.add_argument("--progress", choices=["auto", "tqdm", "log", "none"], default="auto",
                   help="tqdm bar if installed (auto), a periodic log line, or nothing")
    p.add_argument("--num-samples", type=count, default=10, help="names to sample at the end (default 10)")
    p.add_argument("--eager", action="store_true",
                   help="run each step op by op instead of the compiled step (same losses, slower)")


def add_sample_options(p):
    p.add_argument("-n", "--num", type=positive_int, default=20, help="how many names (default 20)")
    p.add_argument("--temperature", type=positive_float, default=1.0,
                   help="softmax temperature: below 1 more typical names, above 1 more varied (default 1.0)")
    p.add_argument("--seed", type=seed_int, default=None, help="sampling seed (default: random)")


def add_lr_find_options(p):
    p.add_argument("--lr-min", type=positive_float, default=1e-3, help="first learning rate (default 1e-3)")
    p.add_argument("--lr-max", type=positive_float, default=1.0, help="last learning rate (default 1)")
    p.add_argument("--num", type=positive_int, default=1000, help="number of lrs = steps (default 1000)")


def check_lr_find(args):
    """The check argparse cannot do per value: the range must go up."""
    if args.lr_min >= args.lr_max:
        return f"--lr-min {args.lr_min:g} must be below --lr-max {args.lr_max:g}"
    return None


def add_bigram_options(p):
    add_data_options(p, default=DEFAULT_DATA_PATH)
    p.add_argument("--seed", type=seed_int, default=42, help="split seed for the dev baseline (default 42)")
    p.add_argument("--smoothing", type=nonneg_float, default=1.0, help="add-k smoothing of the counts (default 1)")
    p.add_argument("--steps", type=count, default=200, help="full-batch gradient steps (default 200)")
    p.add_argument("--lr", type=positive_float, default=50.0, help="learning rate (default 50, as in the lecture)")
    p.add_argument("--reg", type=nonneg_float, default=0.01, help="weight of mean(W**2) in the loss (default 0.01)")
    add_device(p)
