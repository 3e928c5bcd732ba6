"""makemore part 3's diagnostics as a tool: train a deep tanh MLP briefly, plot what the lecture plots by hand.

    python -m models diagnose [--layers 5] [--n-hidden 100] [--steps 1000] [--gain 1.667] [--no-batchnorm]
    python -m models.diagnose ...          (the same, standalone)

The network is the lecture's: Embedding -> Flatten -> (Linear without bias -> BatchNorm1d ->
Tanh) x layers -> Linear -> BatchNorm1d, with Kaiming init times `gain` (5/3 for tanh). After
training it writes four PNGs to --out-dir:
- activations.png: histogram of each Tanh layer's output, with the share saturated (|tanh| > 0.97:
  there 1 - tanh² < 0.06, so the gradient through that unit is nearly blocked);
- gradients.png: histogram of the gradient at each Tanh layer's output (from retain_grad);
- weight_gradients.png: histogram of each 2-D weight's gradient, and its grad:data std ratio;
- update_ratio.png: log10(std(lr * grad) / std(weight)) per 2-D weight over the steps, with the
  lecture's guide line at -3 (updates ~1/1000 of the values: much above, training thrashes;
  much below, it crawls).
Library API: `DiagnoseConfig`, `make_model(vocab_size, config)`, `train(config) -> Diagnostics`
(activations, gradients, update ratios, `saturation()`), `write_figures(diag, out_dir)`.
"""
from __future__ import annotations

import argparse
import os
import sys
from dataclasses import dataclass

import numpy as np

SATURATED = 0.97   # the lecture's threshold: |tanh| > 0.97 means 1 - tanh^2 < 0.06
GUIDE = -3.0       # the lecture's rule of thumb for log10(update : data)


@dataclass
class DiagnoseConfig:
    layers: int = 5            # hidden Linear -> BatchNorm1d -> Tanh blocks
    n_hidden: int = 100
    n_embd: int = 10
    block_size: int = 3
    steps: int = 1000
    batch_size: int = 32
    lr: float = 0.1
    gain: float = 5 / 3        # Kaiming's gain for tanh
    batchnorm: bool = True
    seed: int = 42

    def check(self):
        """A clear error naming the bad value, before any work."""
        for name in ("layers", "n_hidden", "n_embd", "block_size", "steps"):
            if getattr(self, name) < 1:
                raise ValueError(f"--{name.replace('_', '-')} must be at least 1, got {getattr(self, name)}")
        if self.batch_size < 2:
            raise ValueError(f"--batch-size must be at least 2 (BatchNorm needs a batch), got {self.batch_size}")
        if not (self.lr > 0 and np.isfinite(self.lr)) or not (self.gain > 0 and np.isfinite(self.gain)):
            raise ValueError(f"--lr and --gain must be positive numbers, got {self.lr} and {self.gain}")


def _nn():
    from tinygrad_mm import nn
    return nn


def make_model(vocab_size, c: DiagnoseConfig):
    """The lecture's deep MLP; returns a Module whose `layers` list holds the Linear/BatchNorm/Tanh blocks."""
    nn = _nn()
    rng = np.random.default_rng(c.seed)

    class Deep(nn.Module):
        def __init__(self):
            self.embedding = nn.Embedding(vocab_size, c.n_embd, dtype=np.float32)
            self.flatten = nn.Flatten()
            sizes = [c.n_embd * c.block_size] + [c.n_hidden] * c.layers + [vocab_size]
            layers = []
            for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
                last = i == len(sizes) - 2
                layers.append(nn.Linear(n_in, n_out, bias=not c.batchnorm))
                if c.batchnorm:
                    layers.append(nn.BatchNorm1d(n_out))
                if not last:
                    layers.append(nn.Tanh())
            self.layers = layers
            self.embedding.weight.array = rng.standard_normal(self.embedding.weight.shape).astype(np.float32)
            linears = [layer for layer in layers if isinstance(layer, nn.Linear)]
            for layer in linears:  # Kaiming: N(0, 1/fan_in), times the gain (but the output layer)
                w = rng.standard_normal(layer.weight.shape) / layer.in_features ** 0.5
                layer.weight.array = (w * (1.0 if layer is linears[-1] else c.gain)).astype(np.float32)
                if layer.bias is not None:
                    layer.bias.array = np.zeros(layer.bias.shape, np.float32)
            # the last BatchNorm's gain (or the output weights) x 0.1: less confident first predictions
            layers[-1].weight.array = layers[-1].weight.array * np.float32(0.1)

        def forward(self, idx):
            x = self.flatten(self.embedding(idx))
            outs = []
            for layer in self.layers:
                x = layer(x)
                outs.append(x)
            return x, outs

    return Deep()


class Diagnostics:
    """What train() measured: per Tanh layer, its last-step output and output gradient; per 2-D
    weight, log10 update:data ratio at every step and its last gradient; the losses."""

    def __init__(self, config):
        self.config = config
        self.activations, self.act_grads = [], []   # (layer name, array) per Tanh layer
        self.weight_grads = []                      # (parameter name, grad array, data array)
        self.ud = {}                                # parameter name -> [log10 ratio per step]
        self.losses = []

    def saturation(self):
        """Share of units with |tanh| > SATURATED, per Tanh layer."""
        return [(name, float((np.abs(a) > SATURATED).mean())) for name, a in self.activations]


def train(config: DiagnoseConfig, data=None, log=None) -> Diagnostics:
    """Train briefly with SGD, recording the part-3 statistics; returns Diagnostics."""
    import tinygrad_mm as tg
    from .dataset import make_splits
    config.check()
    data = data or make_splits(block_size=config.block_size, seed=config.seed)
    model = make_model(data.vocab.size, config)
    params = list(model.named_parameters())
    weights = [(n, p) for n, p in params if p.ndim == 2]
    diag = Diagnostics(config)
    diag.ud = {n: [] for n, _ in weights}
    rng = np.random.default_rng(config.seed)
    nn = _nn()
    for step in range(config.steps):
        ix = rng.integers(0, len(data.Xtr), config.batch_size)
        last = step == config.steps - 1
        with tg.Tape():
            logits, outs = model(data.Xtr[ix])
            if last:
                for t in outs:
                    t.retain_grad()   # the activations' gradients, as the lecture reads them
            loss = nn.functional.cross_entropy(logits, data.Ytr[ix])
            model.zero_grad()
            loss.backward()
        with tg.no_grad():
            for n, p in weights:
                g, w = p.grad.array.astype(np.float64), p.array.astype(np.float64)
                diag.ud[n].append(float(np.log10((config.lr * g).std() / w.std())))
            for _, p in params:
                p.data -= config.lr * p.grad
        diag.losses.append(loss.item())
        if log and (step % max(1, config.steps // 10) == 0 or last):
            log(f"step {step + 1:>6}/{config.steps}: loss {loss.item():.4f}")
    tanhs = [(i, t) for i, (layer, t) in enumerate(zip(model.layers, outs)) if isinstance(layer, nn.Tanh)]
    diag.activations = [(f"layer {i} (Tanh)", t.detach().numpy().copy()) for i, t in tanhs]
    diag.act_grads = [(f"layer {i} (Tanh)", t.grad.numpy().copy()) for i, t in tanhs]
    diag.weight_grads = [(n, p.grad.numpy().copy(), p.detach().numpy().copy()) for n, p in weights]
    return diag


def _histograms(ax, named, legend):
    for name, a in named:
        hy, edges = np.histogram(a.reshape(-1).astype(np.float64), bins=50, density=True)
        ax.plot((edges[:-1] + edges[1:]) / 2, hy, label=f"{name}: {legend(a)}")


def _save(plt, fig, ax, title, what, xlabel, ylabel, path):
    """Title (what is shown, then the run), axes, legend; write the PNG atomically, the title and
    axes in its metadata too (PNG text chunks "Title" and "Description")."""
    ax.set_title(f"{title}\n{what}", fontsize=11)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    tmp = path + ".tmp"
    fig.savefig(tmp, dpi=100, format="png",
                metadata={"Title": title, "Description": f"{what}; x: {xlabel}; y: {ylabel}"})
    plt.close(fig)
    os.replace(tmp, path)
    return path


def write_figures(diag: Diagnostics, out_dir) -> list:
    """The four PNGs (see the module docstring); returns their paths."""
    from .plots import _pyplot
    plt = _pyplot()
    os.makedirs(out_dir, exist_ok=True)
    c = diag.config
    what = f"{c.layers} x (Linear{' + BatchNorm1d' if c.batchnorm else ''} + Tanh), gain {c.gain:.3g}, " \
           f"after {c.steps} steps"
    paths = []
    fig, ax = plt.subplots(figsize=(10, 4.5))
    _histograms(ax, diag.activations, lambda a: f"mean {a.mean():+.2f}, std {a.std():.2f}, "
                f"saturated {100 * float((np.abs(a) > SATURATED).mean()):.1f}%")
    paths.append(_save(plt, fig, ax, f"activation distribution (|tanh| > {SATURATED} is saturated)", what,
                       "tanh output", "density", os.path.join(out_dir, "activations.png")))
    fig, ax = plt.subplots(figsize=(10, 4.5))
    _histograms(ax, diag.act_grads, lambda a: f"mean {a.mean():+.2e}, std {a.std():.2e}")
    paths.append(_save(plt, fig, ax, "gradient distribution at each Tanh output", what,
                       "d loss / d tanh output", "density", os.path.join(out_dir, "gradients.png")))
    fig, ax = plt.subplots(figsize=(10, 4.5))
    _histograms(ax, [(n, g) for n, g, _ in diag.weight_grads],
                lambda g: f"std {g.std():.2e}")
    for line, (_, g, w) in zip(ax.get_lines(), diag.weight_grads):
        line.set_label(line.get_label() + f", grad:data {g.std() / w.std():.2e}")
    paths.append(_save(plt, fig, ax, "weight gradient distribution", what, "d loss / d weight", "density",
                       os.path.join(out_dir, "weight_gradients.png")))
    fig, ax = plt.subplots(figsize=(10, 4.5))
    for n, ud in diag.ud.items():
        ax.plot(np.arange(1, len(ud) + 1), ud, label=n)
    ax.axhline(GUIDE, color="k", ls="--", label="guide: 1e-3")
    paths.append(_save(plt, fig, ax, "update:data ratio per weight, log10(std(lr*grad) / std(weight))", what,
                       "step", "log10 update:data", os.path.join(out_dir, "update_ratio.png")))
    return paths


# -- command line --------------------------------------------------------------------------------

def _options(p):
    d = DiagnoseConfig()
    p.add_argument("--layers", type=int, default=d.layers, help=f"hidden tanh layers (default {d.layers})")
    p.add_argument("--n-hidden", type=int, default=d.n_hidden, help=f"units per layer (default {d.n_hidden})")
    p.add_argument("--steps", type=int, default=d.steps, help=f"training steps (default {d.steps})")
    p.add_argument("--batch-size", type=int, default=d.batch_size, help=f"default {d.batch_size}")
    p.add_argument("--lr", type=float, default=d.lr, help=f"SGD learning rate (default {d.lr})")
    p.add_argument("--gain", type=float, default=d.gain, help="init gain on Kaiming's N(0, 1/fan_in) (default 5/3)")
    p.add_argument("--batchnorm", action=argparse.BooleanOptionalAction, default=True,
                   help="BatchNorm1d after each Linear (default on; --no-batchnorm to see init matter)")
    p.add_argument("--seed", type=int, default=d.seed, help=f"init, split and batch seed (default {d.seed})")
    p.add_argument("--out-dir", default="runs/diagnose", help="where the PNGs go (default runs/diagnose)")
    p.set_defaults(func=run)


def add_parser(subparsers):
    """Add the `diagnose` command to the CLI's subparsers; returns its parser."""
    p = subparsers.add_parser("diagnose", help="makemore part 3's plots: activations, gradients, "
                              "update:data ratio of a deep tanh MLP (needs matplotlib)",
                              description=__doc__.split("\n")[0])
    _options(p)
    return p


def run(args) -> int:
    """The command: train, write the PNGs, print saturation per layer; returns the exit code."""
    from .plots import PlotUnavailable, _pyplot
    config = DiagnoseConfig(layers=args.layers, n_hidden=args.n_hidden, steps=args.steps,
                            batch_size=args.batch_size, lr=args.lr, gain=args.gain, batchnorm=args.batchnorm,
                            seed=args.seed)
    try:
        config.check()
        _pyplot()  # fail before training when matplotlib is missing
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except PlotUnavailable as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    diag = train(config, log=print)
    for name, share in diag.saturation():
        print(f"{name}: {100 * share:.1f}% saturated (|tanh| > {SATURATED})")
    for path in write_figures(diag, args.out_dir):
        print(f"wrote {path}")
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m models.diagnose", description=__doc__.split("\n")[0])
    _options(parser)
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
