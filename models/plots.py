"""PNG plots of a run (loss curve, lr finder, 2-D embedding); matplotlib is imported lazily."""
from __future__ import annotations

import os

import numpy as np

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


def plot_loss(losses, path, dev_history=(), chunk=None):
    """log10(training loss) averaged over chunks of steps, as in the lecture, with dev points."""
    plt = _pyplot()
    losses = np.asarray(losses, dtype=np.float64)
    chunk = chunk or max(1, len(losses) // 200)
    y = chunk_means(np.log10(losses), chunk) if len(losses) >= chunk else np.log10(losses)
    fig, ax = plt.subplots(figsize=(8, 4.5))
    ax.plot((np.arange(len(y)) + 1) * chunk, y, label=f"train (mean of log10 loss per {chunk} steps)")
    if len(dev_history):
        dh = np.asarray(dev_history, dtype=np.float64)
        ax.plot(dh[:, 0], np.log10(dh[:, 1]), "o-", label="dev (whole split)")
    return _finish(plt, fig, ax, "step", "log10 loss", path)


def _finish(plt, fig, ax, xlabel, ylabel, path):
    """Label, grid and legend the axes, write the PNG and close the figure."""
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def plot_lr_find(lrs, losses, smoothed, suggested, path):
    """Loss against log10(lr), one step per lr, with the smoothed curve and the suggestion."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(8, 4.5))
    x = np.log10(lrs)
    ax.plot(x, losses, alpha=0.4, label="loss")
    ax.plot(x, smoothed, label="smoothed")
    ax.axvline(np.log10(suggested), color="k", ls="--", label=f"suggested lr {suggested:.3g}")
    return _finish(plt, fig, ax, "log10 learning rate", "loss", path)


def plot_embedding(weight, itos, path):
    """Scatter of the first two embedding dimensions, each point labelled with its character."""
    plt = _pyplot()
    w = np.asarray(weight, dtype=np.float64)
    fig, ax = plt.subplots(figsize=(7, 7))
    ax.scatter(w[:, 0], w[:, 1], s=200)
    for i, ch in enumerate(itos):
        ax.text(w[i, 0], w[i, 1], ch, ha="center", va="center", color="white")
    ax.set_xlabel("dim 0")
    ax.set_ylabel("dim 1")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def plot_run(out_dir, ckpt=None, lr_find=None, chunk=None) -> list[str]:
    """Write loss.png / embedding.png (from the checkpoint) and lr_find.png (from the sweep) if
    their inputs exist; return the paths written."""
    from tinygrad_mm import checkpoint
    _pyplot()  # fail early, before reading anything, when matplotlib is missing
    written = []
    if ckpt and os.path.exists(ckpt):
        ck = checkpoint.load(ckpt)
        if len(ck["losses"]):
            written.append(plot_loss(ck["losses"], os.path.join(out_dir, "loss.png"), ck["dev_history"], chunk))
        written.append(plot_embedding(ck["model"]["embedding.weight"], list(ck["vocab"]),
                                      os.path.join(out_dir, "embedding.png")))
    if lr_find and os.path.exists(lr_find):
        with np.load(lr_find) as z:
            written.append(plot_lr_find(z["lrs"], z["losses"], z["smoothed"], float(z["suggested"]),
                                        os.path.join(out_dir, "lr_find.png")))
    return written
