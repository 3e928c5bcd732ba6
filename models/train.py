"""The training loop of the name MLP: one train_step, fit (checkpoints, Ctrl-C, divergence),
evaluation, and the learning-rate finder. No argparse here; the run's state lives in run.py."""
from __future__ import annotations

import math
import os

import numpy as np

import tinygrad_mm as tg
from tinygrad_mm import nn

from .config import RunError, TrainConfig
from .progress import Progress, SigintFlag
from .run import CKPT_NAME, Run, model_device, new_run, save_run
from .rundir import RunLock, clean_temp_files

LR_FIND_NAME = "lr_find.npz"
# A minibatch loss above this many times ln(vocab size) -- the loss of uniform guessing, where
# training starts -- means the run has blown up: on names.txt lr 1 peaks at 4.7 (1.4 x ln 27)
# and then trains fine, lr 2 reaches 37 (11 x) and ends worse than uniform, lr 5 reaches 134.
DIVERGED_FACTOR = 10.0


class Diverged(RunError):
    """The loss became non-finite or exploded; .step is the step that produced it."""

    def __init__(self, message, step, loss):
        super().__init__(message)
        self.step, self.loss = step, loss


def loss_limit(vocab_size) -> float:
    return DIVERGED_FACTOR * math.log(vocab_size)


def train_step(model, optimizer, Xb, Yb):
    """One minibatch step -- forward, zero the gradients, backward, update -- returning the loss
    tensor: the lecture's step, shared by training, lr-find and the benchmark, and what
    `tg.compile` captures once and replays for `train` (unless --eager)."""
    _, loss = model(Xb, Yb)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    return loss


def step_loss(step, model, optimizer, Xb, Yb) -> float:
    """Run `step` and return its loss as a number. When the weights are no longer finite,
    cross-entropy refuses the logits before anything is updated; then this returns nan, for
    the caller's divergence check to report."""
    try:
        return step(model, optimizer, Xb, Yb).item()
    except ValueError:
        with tg.no_grad():
            if all(math.isfinite((p * 0).sum().item()) for p in model.parameters()):  # inf * 0 = nan
                raise
        return math.nan


def evaluate(model, X, Y, chunk=8192) -> float:
    """Mean cross-entropy over a whole split, in chunks, without recording a tape."""
    if len(X) == 0:
        raise ValueError("cannot evaluate an empty split")
    dev, total = model_device(model), 0.0
    with tg.no_grad():
        for i in range(0, len(X), chunk):
            logits, _ = model(tg.as_tensor(X[i:i + chunk], device=dev))  # (b, V)
            yb = tg.as_tensor(Y[i:i + chunk], device=dev)
            total += nn.functional.cross_entropy(logits, yb, reduction="sum").item()
    return total / len(X)


def split_losses(model, data) -> dict:
    return {"train": evaluate(model, data.Xtr, data.Ytr), "dev": evaluate(model, data.Xdev, data.Ydev),
            "test": evaluate(model, data.Xte, data.Yte)}


def _on_device(data, device):
    """The training examples as raw arrays on the device. Minibatches are gathered from these
    with the raw index array: the data needs no gradient, and a Tensor gather (an Index op)
    costs 27 us more per step (236 vs 210 us, default model, batch 32, best of 8)."""
    return tg.as_tensor(data.Xtr, device=device).array, tg.as_tensor(data.Ytr, device=device).array


def _diverged(run: Run, loss, out_dir, saved_step) -> Diverged:
    lr = run.optimizer.lr
    if saved_step is not None:
        kept = f"the last good checkpoint (step {saved_step:,}) is kept in {out_dir}"
    elif out_dir and os.path.exists(os.path.join(out_dir, CKPT_NAME)):
        kept = f"the checkpoint already in {out_dir}, from an earlier run, is left as it was"
    else:
        kept = "no checkpoint was written"
    return Diverged(f"training diverged at step {run.step:,}: loss {loss:.4g} (non-finite or above "
                    f"{loss_limit(run.data.vocab.size):.1f} = {DIVERGED_FACTOR:g} x ln(vocab size)) at lr "
                    f"{lr:g}; try a lower learning rate, e.g. --lr {lr / 10:g} (python -m {__package__} "
                    f"lr-find suggests one); {kept}", run.step, loss)


def fit(run: Run, out_dir=None, max_steps=None, callback=None, progress="none", log=print, eager=False) -> Run:
    """Train until config.steps (or max_steps); checkpoint every ckpt_every steps, at the end and
    on Ctrl-C / a KeyboardInterrupt from callback(run, loss) -- then return with run.interrupted.
    With out_dir, the folder is locked against a second writer for the whole loop. A diverging
    loss raises Diverged, leaving the last periodic checkpoint as it was. The step is compiled
    (`tg.compile`: captured once, then replayed; bit-identical losses) unless eager=True."""
    step = train_step if eager else tg.compile(train_step)
    if out_dir is None:
        return _loop(run, None, max_steps, callback, progress, log, step)
    with RunLock(out_dir, log):
        for p in clean_temp_files(out_dir):
            log(f"note: removed {p}, left by an interrupted save")
        return _loop(run, out_dir, max_steps, callback, progress, log, step)


def _loop(run, out_dir, max_steps, callback, progress, log, step):
    cfg = run.config
    stop = cfg.steps if max_steps is None else min(cfg.steps, max_steps)
    dev = model_device(run.model)
    Xtr, Ytr = _on_device(run.data, dev)
    n, limit = len(run.data.Xtr), loss_limit(run.data.vocab.size)
    # the step of the checkpoint on disk that belongs to this run (a resumed one's), if any
    saved = run.step if run.step and out_dir and os.path.exists(os.path.join(out_dir, CKPT_NAME)) else None
    bar = Progress(progress, run.step, cfg.steps, log)
    run.interrupted = False
    run.model.train()
    with SigintFlag() as sigint:
        try:
            while run.step < stop:
                ix = tg.randint(0, n, (cfg.batch_size,), generator=run.rng, device=dev).array  # (B,)
                loss = step_loss(step, run.model, run.optimizer, Xtr[ix], Ytr[ix])
                run.step += 1
                if not loss <= limit:  # also catches nan
                    raise _diverged(run, loss, out_dir, saved)
                run.scheduler.step()
                run.losses.append(loss)
                bar.update(run.step, loss)
                if cfg.eval_every and run.step % cfg.eval_every == 0:
                    run.dev_history.append([run.step, evaluate(run.model, run.data.Xdev, run.data.Ydev)])
                    bar.write(f"step {run.step}: dev loss {run.dev_history[-1][1]:.4f}")
                if out_dir and cfg.ckpt_every and run.step % cfg.ckpt_every == 0:
                    save_run(run, out_dir)
                    saved = run.step
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
    """The lecture's sweep: from a fresh init, step k uses lr 10**linspace(log lr_min, log lr_max)[k].
    The sweep ends early where the loss diverges (as train's check defines it); 'diverged_at'
    is then that lr, else None."""
    if not 0 < lr_min < lr_max or not math.isfinite(lr_max) or num < 1:
        raise RunError(f"lr-find needs 0 < lr_min < lr_max (finite) and num >= 1, got {lr_min}, {lr_max}, {num}")
    run = new_run(config)
    lrs = 10 ** np.linspace(np.log10(lr_min), np.log10(lr_max), num)
    dev, n = model_device(run.model), len(run.data.Xtr)
    Xtr, Ytr = _on_device(run.data, dev)
    limit, losses, diverged_at = loss_limit(run.data.vocab.size), [], None
    for lr in lrs:
        ix = tg.randint(0, n, (run.config.batch_size,), generator=run.rng, device=dev).array
        run.optimizer.lr = float(lr)
        loss = step_loss(train_step, run.model, run.optimizer, Xtr[ix], Ytr[ix])
        if not loss <= limit:
            diverged_at = float(lr)
            break  # diverged: the rest of the sweep says nothing
        losses.append(loss)
    if not losses:
        raise RunError(f"the loss diverged at the very first lr ({lrs[0]:g}): lower --lr-min")
    lrs = lrs[:len(losses)]
    suggested, smoothed = suggest_lr(lrs, losses)
    return {"lrs": lrs, "losses": np.asarray(losses), "smoothed": smoothed, "suggested": suggested,
            "diverged_at": diverged_at, "notes": run.notes}
