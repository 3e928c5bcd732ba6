"""Training, evaluation, checkpoint/resume and the lr finder for the name MLP (no argparse here).

Resuming is exact: a checkpoint holds the weights, optimizer and scheduler state, the
minibatch Generator's state, the step, the per-step losses and the config (which fixes the
data split), so an interrupted-then-resumed run reproduces the uninterrupted run bit for bit.
"""
from __future__ import annotations

import hashlib
import os
import signal
import time
from dataclasses import asdict, dataclass, field, fields, replace

import numpy as np

from tinygrad_mm import backend, checkpoint, creation, nn, optim
from tinygrad_mm.tape import no_grad

from .dataset import DEFAULT_DATA_PATH, NamesData, bigram_counts, bigram_nll, make_splits
from .mlp import MLPConfig, MLPLanguageModel, NeuralBigram

CKPT_NAME = "ckpt.npz"
LOSSES_NAME = "losses.npy"
LR_FIND_NAME = "lr_find.npz"
CKPT_KIND = "tinygrad_mm-names-mlp"

# Options that define the model, data split or optimization path: a resume must not change them.
FIXED_ON_RESUME = ("recipe", "data", "seed", "block_size", "n_embd", "n_hidden", "batch_size", "optimizer",
                   "lr", "decay_at", "decay_factor", "weight_decay")
DEFAULT_LR = {"sgd": 0.1, "adam": 3e-3}


class RunError(Exception):
    """A user-facing problem with a run (bad option, mismatched checkpoint, missing device)."""


@dataclass
class TrainConfig:
    """Everything that determines a training run; stored in the checkpoint."""
    data: str = DEFAULT_DATA_PATH
    seed: int = 42
    block_size: int = 3
    n_embd: int = 10
    n_hidden: int = 200
    steps: int = 200_000
    batch_size: int = 32
    optimizer: str = "sgd"          # "sgd" or "adam"
    lr: float | None = None         # None: 0.1 for sgd, 3e-3 for adam
    decay_at: list | None = None    # steps where lr *= decay_factor; None: [steps // 2] (the lecture)
    decay_factor: float = 0.1
    weight_decay: float = 0.0       # L2 added to the gradient (both optimizers)
    eval_every: int = 10_000        # dev-loss evaluation period (0: never)
    ckpt_every: int = 10_000        # checkpoint period (0: only at the end / on Ctrl-C)
    device: str = "cpu"
    recipe: str = "default"

    def resolved(self) -> "TrainConfig":
        """A copy with lr, decay_at and the data path made explicit (what a checkpoint stores)."""
        if self.optimizer not in DEFAULT_LR:
            raise RunError(f"unknown optimizer {self.optimizer!r}; expected one of {sorted(DEFAULT_LR)}")
        for name in ("steps", "batch_size", "block_size", "n_embd", "n_hidden"):
            if getattr(self, name) < 1:
                raise RunError(f"{name} must be >= 1, got {getattr(self, name)}")
        lr = DEFAULT_LR[self.optimizer] if self.lr is None else float(self.lr)
        decay = [self.steps // 2] if self.decay_at is None else sorted(int(s) for s in self.decay_at)
        return replace(self, lr=lr, decay_at=decay, data=os.path.abspath(self.data))

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d) -> "TrainConfig":
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})

    def mlp_config(self, vocab_size) -> MLPConfig:
        return MLPConfig(vocab_size=vocab_size, block_size=self.block_size, n_embd=self.n_embd,
                         n_hidden=self.n_hidden)


@dataclass
class Run:
    """A training run in progress: model, optimizer, scheduler, RNG, data and the loss log."""
    config: TrainConfig
    data: NamesData
    data_sha256: str
    model: MLPLanguageModel
    optimizer: optim.Optimizer
    scheduler: optim.StepDecay
    rng: creation.Generator         # draws the minibatch indices
    step: int = 0
    losses: list = field(default_factory=list)       # per-step training loss
    dev_history: list = field(default_factory=list)  # [step, dev loss]
    interrupted: bool = False


def check_device(device):
    """Raise RunError (with the backend's reason) when the device cannot be used."""
    try:
        backend.module_for(device)
    except (RuntimeError, ValueError) as e:
        raise RunError(str(e)) from None


def model_device(model) -> str:
    return model.parameters()[0].device


def file_sha256(path) -> str:
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def load_data(config: TrainConfig) -> NamesData:
    """The train/dev/test split the config defines; each split must hold at least one example."""
    data = make_splits(config.data, block_size=config.block_size, seed=config.seed)
    sizes = [len(data.train_words), len(data.dev_words), len(data.test_words)]
    if not all(sizes):
        raise RunError(f"{config.data!r} has {sum(sizes)} words: too few for an 80/10/10 split "
                       f"(train/dev/test got {sizes[0]}/{sizes[1]}/{sizes[2]}; each needs at least one)")
    return data


def build_model(config: TrainConfig, vocab_size, generator=None) -> MLPLanguageModel:
    return MLPLanguageModel(config.mlp_config(vocab_size), generator=generator, device=config.device)


def new_run(config: TrainConfig) -> Run:
    """A fresh run: data split, seeded init, optimizer and lr schedule."""
    config = config.resolved()
    check_device(config.device)
    data = load_data(config)
    g = creation.Generator(config.seed)  # one stream: model init first, then minibatch indices
    model = build_model(config, data.vocab.size, g)
    params = model.parameters()
    make = optim.SGD if config.optimizer == "sgd" else optim.Adam
    opt = make(params, lr=config.lr, weight_decay=config.weight_decay)
    values = [config.lr * config.decay_factor ** k for k in range(len(config.decay_at) + 1)]
    sched = optim.StepDecay(opt, config.decay_at, values)
    return Run(config, data, file_sha256(config.data), model, opt, sched, g)


def checkpoint_state(run: Run) -> dict:
    """The nested dict checkpoint.save writes."""
    return {"kind": CKPT_KIND, "config": run.config.to_dict(), "vocab": run.data.vocab.to_string(),
            "data_sha256": run.data_sha256, "step": run.step, "rng": run.rng.get_state(),
            "model": dict(run.model.state_dict()), "optimizer": run.optimizer.state_dict(),
            "scheduler": run.scheduler.state_dict(), "losses": np.asarray(run.losses, dtype=np.float64),
            "dev_history": [list(x) for x in run.dev_history]}


def save_run(run: Run, out_dir) -> str:
    """Write out_dir/ckpt.npz (atomically) and out_dir/losses.npy."""
    os.makedirs(out_dir, exist_ok=True)
    path = checkpoint.save(os.path.join(out_dir, CKPT_NAME), checkpoint_state(run))
    np.save(os.path.join(out_dir, LOSSES_NAME), np.asarray(run.losses, dtype=np.float64))
    return path


def ckpt_path(path_or_dir) -> str:
    """A checkpoint file path from either the file or the run folder."""
    p = os.fspath(path_or_dir)
    return os.path.join(p, CKPT_NAME) if os.path.isdir(p) else p


def read_checkpoint(path) -> dict:
    """checkpoint.load plus a check that it is a name-model checkpoint."""
    path = ckpt_path(path)
    if not os.path.exists(path):
        raise RunError(f"no checkpoint at {path!r} (train first, or pass --out-dir/--ckpt)")
    ck = checkpoint.load(path)
    if ck.get("kind") != CKPT_KIND:
        raise RunError(f"{path!r} is a tinygrad_mm checkpoint, but not of the name model")
    return ck


def _check_same_data(ck, data, sha, path):
    if data.vocab.to_string() != ck["vocab"] or sha != ck["data_sha256"]:
        raise RunError(f"the data file {path!r} changed since the checkpoint was written "
                       f"(vocabulary or contents differ); the split cannot be reproduced")


def load_model(path, device=None):
    """(config, model, data, checkpoint dict) of a saved run, for eval and sampling."""
    ck = read_checkpoint(path)
    config = TrainConfig.from_dict(ck["config"])
    if device is not None:
        config = replace(config, device=device)
    check_device(config.device)
    data = load_data(config)
    _check_same_data(ck, data, file_sha256(config.data), config.data)
    model = build_model(config, data.vocab.size)
    model.load_state_dict(ck["model"])
    return config, model, data, ck


def resume_run(path, **overrides) -> Run:
    """Rebuild a run from its checkpoint; only steps/eval_every/ckpt_every/device may change."""
    ck = read_checkpoint(path)
    saved = TrainConfig.from_dict(ck["config"])
    bad = [f"--{k.replace('_', '-')} {v!r} (checkpoint: {getattr(saved, k)!r})"
           for k, v in overrides.items() if k in FIXED_ON_RESUME and v != getattr(saved, k)]
    if bad:
        raise RunError("cannot change these options when resuming: " + "; ".join(bad))
    run = new_run(replace(saved, **{k: v for k, v in overrides.items() if k not in FIXED_ON_RESUME}))
    _check_same_data(ck, run.data, run.data_sha256, saved.data)
    run.model.load_state_dict(ck["model"])
    run.optimizer.load_state_dict(ck["optimizer"])
    run.scheduler.load_state_dict(ck["scheduler"])
    run.rng.set_state(ck["rng"])
    run.step = int(ck["step"])
    run.losses = [float(x) for x in ck["losses"]]
    run.dev_history = [list(x) for x in ck["dev_history"]]
    return run


def evaluate(model, X, Y, chunk=8192) -> float:
    """Mean cross-entropy over a whole split, in chunks, without recording a tape."""
    if len(X) == 0:
        raise ValueError("cannot evaluate an empty split")
    dev, total = model_device(model), 0.0
    with no_grad():
        for i in range(0, len(X), chunk):
            logits, _ = model(backend.to_device(X[i:i + chunk], dev))  # (b, V)
            yb = backend.to_device(Y[i:i + chunk], dev)
            total += nn.functional.cross_entropy(logits, yb, reduction="sum").item()
    return total / len(X)


def split_losses(model, data: NamesData) -> dict:
    return {"train": evaluate(model, data.Xtr, data.Ytr), "dev": evaluate(model, data.Xdev, data.Ydev),
            "test": evaluate(model, data.Xte, data.Yte)}


def count_bigram_dev_loss(data: NamesData, smoothing=1.0) -> float:
    """The makemore part-1 baseline: add-k smoothed counts from train words, NLL on dev words."""
    return bigram_nll(data.dev_words, data.vocab, bigram_counts(data.train_words, data.vocab), smoothing)


class _SigintFlag:
    """While active, the first Ctrl-C only sets .requested (the loop stops at a step boundary,
    so the checkpoint is consistent); a second one raises KeyboardInterrupt at once."""

    def __enter__(self):
        self.requested, self._prev = False, None
        try:
            self._prev = signal.signal(signal.SIGINT, self._handle)
        except ValueError:  # not the main thread: Ctrl-C keeps its default behaviour
            pass
        return self

    def _handle(self, signum, frame):
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True

    def __exit__(self, *exc):
        if self._prev is not None:
            signal.signal(signal.SIGINT, self._prev)


class Progress:
    """tqdm bar when available (progress="auto"/"tqdm"), else a periodic log line ("log"), or nothing."""

    def __init__(self, mode, start, total, log=print):
        self.mode, self.start, self.total, self.log = mode, start, total, log
        self.bar, self.t0 = None, time.perf_counter()
        self.every = max(1, total // 20)
        if mode in ("auto", "tqdm"):
            try:
                from tqdm.auto import tqdm
                self.bar = tqdm(total=total, initial=start, unit="step", dynamic_ncols=True, mininterval=0.5)
            except ImportError:
                if mode == "tqdm":
                    log("tqdm is not installed (pip install 'tinygrad_mm[progress]'); logging instead")
                self.mode = "log"

    def update(self, step, loss):
        if self.bar is not None:
            self.bar.update(1)
            if step % 100 == 0:
                self.bar.set_postfix(loss=f"{loss:.4f}", refresh=False)
        elif self.mode == "log" and (step % self.every == 0 or step == self.total):
            rate = (step - self.start) / max(time.perf_counter() - self.t0, 1e-9)
            eta = (self.total - step) / max(rate, 1e-9)
            self.log(f"step {step:>{len(str(self.total))}}/{self.total}  loss {loss:.4f}  "
                     f"{rate:,.0f} steps/s  ETA {time.strftime('%H:%M:%S', time.gmtime(eta))}")

    def write(self, msg):
        (self.bar.write if self.bar is not None else self.log)(msg)

    def close(self):
        if self.bar is not None:
            self.bar.close()


def fit(run: Run, out_dir=None, max_steps=None, callback=None, progress="none", log=print) -> Run:
    """Train until config.steps (or max_steps); checkpoint every ckpt_every steps, at the end and
    on Ctrl-C / a KeyboardInterrupt from callback(run, loss) -- then return with run.interrupted."""
    cfg = run.config
    stop = cfg.steps if max_steps is None else min(cfg.steps, max_steps)
    dev = model_device(run.model)
    Xtr, Ytr = backend.to_device(run.data.Xtr, dev), backend.to_device(run.data.Ytr, dev)
    n = len(run.data.Xtr)
    bar = Progress(progress, run.step, cfg.steps, log)
    run.interrupted = False
    run.model.train()
    with _SigintFlag() as sigint:
        try:
            while run.step < stop:
                ix = backend.to_device(run.rng.rng.integers(0, n, cfg.batch_size), dev)  # (B,)
                _, loss = run.model(Xtr[ix], Ytr[ix])
                run.optimizer.zero_grad()
                loss.backward()
                run.optimizer.step()
                run.scheduler.step()
                run.step += 1
                run.losses.append(loss.item())
                bar.update(run.step, run.losses[-1])
                if cfg.eval_every and run.step % cfg.eval_every == 0:
                    run.dev_history.append([run.step, evaluate(run.model, run.data.Xdev, run.data.Ydev)])
                    bar.write(f"step {run.step}: dev loss {run.dev_history[-1][1]:.4f}")
                if out_dir and cfg.ckpt_every and run.step % cfg.ckpt_every == 0:
                    save_run(run, out_dir)
                if callback is not None:
                    callback(run, loss)
                if sigint.requested:
                    raise KeyboardInterrupt
        except KeyboardInterrupt:
            run.interrupted = True  # every step is committed whole before a callback or flag check
        finally:
            bar.close()
        if out_dir:
            save_run(run, out_dir)
    return run


def smooth(y, window):
    """Centered moving average (shrinking window at the ends)."""
    y = np.asarray(y, dtype=np.float64)
    k = np.ones(min(window, len(y)))
    return np.convolve(y, k, mode="same") / np.convolve(np.ones_like(y), k, mode="same")


LR_FIND_DIVISOR = 3.0


def suggest_lr(lrs, losses, divisor=LR_FIND_DIVISOR):
    """The rule: smooth the loss (moving average over 5% of the sweep), take the lr at its
    minimum -- past it the loss climbs, i.e. training turns unstable -- and divide by `divisor`
    for a margin. On names.txt the minimum is near 0.15, so this suggests ~0.05; the lecture
    read the same curve by eye and chose 0.1."""
    s = smooth(losses, max(5, len(losses) // 20))
    return float(lrs[int(np.argmin(s))] / divisor), s


def lr_find(config: TrainConfig, lr_min=1e-3, lr_max=1.0, num=1000) -> dict:
    """The lecture's sweep: from a fresh init, step k uses lr 10**linspace(log lr_min, log lr_max)[k]."""
    run = new_run(config)
    lrs = 10 ** np.linspace(np.log10(lr_min), np.log10(lr_max), num)
    dev, n = model_device(run.model), len(run.data.Xtr)
    Xtr, Ytr = backend.to_device(run.data.Xtr, dev), backend.to_device(run.data.Ytr, dev)
    losses = []
    for lr in lrs:
        ix = backend.to_device(run.rng.rng.integers(0, n, run.config.batch_size), dev)
        _, loss = run.model(Xtr[ix], Ytr[ix])
        if not np.isfinite(loss.item()):
            break  # diverged: the rest of the sweep says nothing
        losses.append(loss.item())
        run.optimizer.zero_grad()
        loss.backward()
        run.optimizer.lr = float(lr)
        run.optimizer.step()
    lrs = lrs[:len(losses)]
    suggested, smoothed = suggest_lr(lrs, losses)
    return {"lrs": lrs, "losses": np.asarray(losses), "smoothed": smoothed, "suggested": suggested}


def train_neural_bigram(words, vocab, steps=200, lr=50.0, reg=0.01, seed=2147483647, device="cpu"):
    """makemore part 1: full-batch gradient descent on logits = W[prev], loss = NLL + reg * mean(W**2).
    Returns (model, final total loss, final data NLL)."""
    from .dataset import build_examples
    check_device(device)
    X, Y = build_examples(words, vocab, block_size=1)
    xs, ys = backend.to_device(X[:, 0], device), backend.to_device(Y, device)  # (N,), (N,)
    model = NeuralBigram(vocab.size, generator=creation.Generator(seed), device=device)
    opt = optim.SGD(model.parameters(), lr=lr)
    nll = total = None
    for _ in range(steps):
        _, nll = model(xs, ys)
        total = nll + reg * (model.table.weight ** 2).mean()
        opt.zero_grad()
        total.backward()
        opt.step()
    with no_grad():  # the loss of the final weights
        _, nll = model(xs, ys)
        total = nll + reg * (model.table.weight ** 2).mean()
    return model, total.item(), nll.item()
