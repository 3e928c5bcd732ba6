"""PNG plots of a run (loss curve, lr finder, 2-D embedding); matplotlib is imported lazily.

Each *_figure function returns the matplotlib Figure (tests read its titles and lines);
each plot_* function draws it and writes the PNG atomically.
"""
from __future__ import annotations

import os

import numpy as np

from .config import RunError
from .dataset import BOUNDARY
from .rundir import atomic_write

INSTALL_HINT = "pip install 'tinygrad_mm[plot]'"


class PlotUnavailable(RuntimeError):
    """matplotlib is not installed."""


def _pyplot():
    """matplotlib.pyplot on the non-interactive Agg backend, or PlotUnavailable."""
    try:
        import matplotlib
    except ImportError:
        raise PlotUnavailable(f"plotting needs matplotlib, which is not installed: {INSTALL_HINT}") from None
    matplotlib.use("Agg")  # files only: no display needed
    import matplotlib.pyplot as plt
    return plt


def chunk_means(values, chunk):
    """Means over consecutive chunks of `chunk` values (a trailing partial chunk is dropped)."""
    values = np.asarray(values, dtype=np.float64)
    m = len(values) // chunk
    return values[:m * chunk].reshape(m, chunk).mean(axis=1)


def run_title(name, config=None, step=None, dev_history=()):
    """'NAME: recipe R, S of N steps, final dev loss D' from what a checkpoint holds."""
    parts = [name]
    if config:
        parts.append(f"recipe {config.get('recipe', '?')}")
        if step is not None:
            parts.append(f"{step:,} of {config.get('steps', 0):,} steps")
    parts.append(f"final dev loss {dev_history[-1][1]:.4f}" if len(dev_history) else "no dev loss evaluated")
    return parts[0] + ": " + ", ".join(parts[1:])


def loss_figure(losses, dev_history=(), chunk=None, title="", decay_at=(), decay_factor=0.1):
    """log10(training loss) averaged over chunks of steps, as in the lecture, with dev points and
    a dashed line at each lr decay the run has passed."""
    plt = _pyplot()
    losses = np.asarray(losses, dtype=np.float64)
    chunk = chunk or max(1, len(losses) // 200)
    y = chunk_means(np.log10(losses), chunk) if len(losses) >= chunk else np.log10(losses)
    fig, ax = plt.subplots(figsize=(8, 4.5))
    ax.plot((np.arange(len(y)) + 1) * chunk, y, label=f"train (mean of log10 loss per {chunk} steps)")
    if len(dev_history):
        dh = np.asarray(dev_history, dtype=np.float64)
        ax.plot(dh[:, 0], np.log10(dh[:, 1]), "o-", label="dev (whole split)")
    for i, s in enumerate(s for s in decay_at if s <= len(losses)):
        ax.axvline(s, color="gray", ls="--", lw=1, label=f"lr x{decay_factor:g}" if i == 0 else None)
    return _decorate(fig, ax, "step", "log10 loss", title)


def lr_find_figure(lrs, losses, smoothed, suggested, title=""):
    """Loss against log10(lr), one step per lr, with the smoothed curve and the suggestion."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(8, 4.5))
    x = np.log10(lrs)
    ax.plot(x, losses, alpha=0.4, label="loss")
    ax.plot(x, smoothed, label="smoothed")
    ax.axvline(np.log10(suggested), color="k", ls="--", label=f"suggested lr {suggested:.3g}")
    return _decorate(fig, ax, "log10 learning rate", "loss", title)


def embedding_figure(weight, itos, title="", dims=(0, 1)):
    """Scatter of two embedding dimensions, each point labelled with its character; the boundary
    token '.' gets its own colour and a large dark label, since a white dot vanishes."""
    plt = _pyplot()
    w = np.asarray(weight, dtype=np.float64)
    a, b = dims
    fig, ax = plt.subplots(figsize=(7, 7))
    letters = [i for i, ch in enumerate(itos) if ch != BOUNDARY]
    ax.scatter(w[letters, a], w[letters, b], s=200, label="characters")
    for i in letters:
        ax.text(w[i, a], w[i, b], itos[i], ha="center", va="center", color="white")
    for i in (i for i, ch in enumerate(itos) if ch == BOUNDARY):
        ax.scatter([w[i, a]], [w[i, b]], s=300, color="orange", label="'.' (start/end of a name)")
        ax.text(w[i, a], w[i, b], BOUNDARY, ha="center", va="baseline", color="black", fontsize=24,
                fontweight="bold")  # a baseline-aligned '.' sits at the point's centre
    shown = f"dimensions {a} and {b} of {w.shape[1]}" if w.shape[1] > 2 else "both dimensions"
    title = f"{title}\nembedding: {shown}" if title else f"embedding: {shown}"
    return _decorate(fig, ax, f"dim {a}", f"dim {b}", title)


def _decorate(fig, ax, xlabel, ylabel, title):
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    return fig


def save_figure(fig, path):
    """Write the figure as a PNG atomically and close it."""
    plt = _pyplot()
    try:
        atomic_write(path, lambda f: fig.savefig(f, format="png", dpi=100))
    finally:
        plt.close(fig)
    return path


def plot_loss(losses, path, dev_history=(), chunk=None, **kw):
    return save_figure(loss_figure(losses, dev_history, chunk, **kw), path)


def plot_lr_find(lrs, losses, smoothed, suggested, path, title=""):
    return save_figure(lr_find_figure(lrs, losses, smoothed, suggested, title), path)


def plot_embedding(weight, itos, path, title=""):
    return save_figure(embedding_figure(weight, itos, title), path)


def plot_run(out_dir, ckpt=None, lr_find=None, chunk=None) -> list[str]:
    """Write loss.png / embedding.png (from the checkpoint) and lr_find.png (from the sweep) if
    their inputs exist; return the paths written."""
    from .run import read_checkpoint
    _pyplot()  # fail early, before reading anything, when matplotlib is missing
    written = []
    name = os.path.basename(os.path.normpath(os.path.abspath(out_dir)))
    if ckpt and os.path.exists(ckpt):
        ck = read_checkpoint(ckpt)
        missing = [k for k in ("losses", "dev_history", "config", "model", "vocab") if k not in ck]
        if missing:
            raise RunError(f"{ckpt}: the checkpoint has no {' / '.join(missing)} (no loss history to plot); "
                           f"plot needs a checkpoint written by `python -m models train`")
        config = ck["config"]
        title = run_title(name, config, int(ck.get("step", len(ck["losses"]))), ck["dev_history"])
        if len(ck["losses"]):
            written.append(plot_loss(ck["losses"], os.path.join(out_dir, "loss.png"), ck["dev_history"], chunk,
                                     title=title, decay_at=config.get("decay_at") or (),
                                     decay_factor=config.get("decay_factor", 0.1)))
        written.append(plot_embedding(ck["model"]["embedding.weight"], list(ck["vocab"]),
                                      os.path.join(out_dir, "embedding.png"), title))
    if lr_find and os.path.exists(lr_find):
        with np.load(lr_find, allow_pickle=False) as z:
            lrs = z["lrs"]
            title = f"{name}: lr-find, {len(lrs):,} steps, lr {lrs[0]:.3g} to {lrs[-1]:.3g}"
            written.append(plot_lr_find(lrs, z["losses"], z["smoothed"], float(z["suggested"]),
                                        os.path.join(out_dir, "lr_find.png"), title))
    return written
