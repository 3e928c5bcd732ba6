"""TrainConfig (everything that determines a run), the named recipes, and the memory estimate."""
from __future__ import annotations

import math
import os
from dataclasses import asdict, dataclass, fields, replace

from .dataset import DEFAULT_DATA_PATH, DEFAULT_MAX_LINE_LENGTH
from .mlp import MLPConfig

DEFAULT_LR = {"sgd": 0.1, "adam": 3e-3}

# Named presets; explicit options override them. "default" is the lecture's model and schedule.
# decay_frac places the lr decays at fractions of --steps, so they move when --steps changes.
RECIPES = {
    "default": {},
    # wider and longer context; weight decay because the 113k parameters overfit at lr 0.1
    # (without it dev loss climbs from 2.14 to 2.28 over 200k steps before the first decay)
    "wide": {"block_size": 8, "n_embd": 24, "n_hidden": 512, "steps": 200_000, "lr": 0.1,
             "decay_frac": [0.5, 0.75], "weight_decay": 1e-4},
}

# Options that define the model, data, split or optimization path: a resume must not change them.
# (The data file itself is identified by its content hash, not its path: see run.resolve_data.)
FIXED_ON_RESUME = ("recipe", "seed", "block_size", "n_embd", "n_hidden", "batch_size", "optimizer",
                   "lr", "decay_at", "decay_factor", "weight_decay", "lowercase", "nfc")


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
    lowercase: bool = False         # fold the data to lower case before building the vocabulary
    nfc: bool = False               # Unicode NFC: a letter + combining accent becomes one character
    max_line_length: int = DEFAULT_MAX_LINE_LENGTH  # longer lines draw a warning

    def resolved(self) -> "TrainConfig":
        """A copy with lr, decay_at and the data path made explicit (what a checkpoint stores),
        after checking every value (the API's equivalent of the CLI's parse-time checks)."""
        if self.optimizer not in DEFAULT_LR:
            raise RunError(f"unknown optimizer {self.optimizer!r}; expected one of {sorted(DEFAULT_LR)}")
        for name in ("steps", "batch_size", "block_size", "n_embd", "n_hidden", "max_line_length"):
            if getattr(self, name) < 1:
                raise RunError(f"{name} must be >= 1, got {getattr(self, name)}")
        for name in ("eval_every", "ckpt_every", "seed"):
            if getattr(self, name) < 0:
                raise RunError(f"{name} must be >= 0, got {getattr(self, name)}")
        lr = DEFAULT_LR[self.optimizer] if self.lr is None else float(self.lr)
        checks = {"lr": (lr, lr > 0), "decay_factor": (self.decay_factor, self.decay_factor > 0),
                  "weight_decay": (self.weight_decay, self.weight_decay >= 0)}
        for name, (v, ok) in checks.items():
            if not (ok and math.isfinite(v)):
                raise RunError(f"{name} must be a finite number {'>= 0' if name == 'weight_decay' else '> 0'}, "
                               f"got {v}")
        decay = [self.steps // 2] if self.decay_at is None else sorted(int(s) for s in self.decay_at)
        if any(s < 1 for s in decay):
            raise RunError(f"decay_at steps must be >= 1, got {decay}")
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


def from_recipe(name="default", **explicit) -> TrainConfig:
    """Defaults < recipe < explicit options; the recipe's decay fractions follow the steps."""
    if name not in RECIPES:
        raise RunError(f"unknown recipe {name!r}; expected one of {sorted(RECIPES)}")
    recipe = dict(RECIPES[name])
    fracs = recipe.pop("decay_frac", None)
    config = TrainConfig(**{**recipe, "recipe": name, **explicit})
    if fracs and "decay_at" not in explicit:
        config = replace(config, decay_at=[int(f * config.steps) for f in fracs])
    return config


def schedule_note(config: TrainConfig) -> str | None:
    """What happens to lr decays at or past the last step (None when there are none)."""
    late = [s for s in config.decay_at if s >= config.steps]
    if not late:
        return None
    held = config.lr * config.decay_factor ** (len(config.decay_at) - len(late))
    return (f"note: lr decay at step {', '.join(f'{s:,}' for s in late)} lies at or past the last step "
            f"({config.steps:,}), so it never happens: lr stays {held:g} to the end "
            f"(the decay steps are fixed on --resume; pass --steps beyond them to reach them)")


# -- memory -----------------------------------------------------------------------------------
# Bytes one training example costs in a step, per unit of each size (float32 = 4, int64 = 8):
# the gathered indices and targets (int64), the embedding rows (forward and gradient), the
# hidden pre-activation, tanh output and their gradients, and the logits with the softmax and
# its gradient. Measured with tracemalloc on one step at batch 65,536: peak 231 MiB for the
# default model (the formula: 238 MiB), 627 MiB for `wide` (634 MiB); the 1.5x margin covers
# the allocator's and the host pool's slack.
MEMORY_MARGIN = 1.5


def step_bytes(config: TrainConfig, vocab_size: int) -> int:
    """Estimated peak bytes of one training step (activations, gradients, parameters, optimizer)."""
    T, C, H, V, B = config.block_size, config.n_embd, config.n_hidden, vocab_size, config.batch_size
    per_example = 8 * (T + 2) + 4 * (2 * T * C + 4 * H + 3 * V)
    n_params = V * C + T * C * H + H + H * V + V
    per_param = 4 * (2 + (2 if config.optimizer == "adam" else 0))  # weight, grad (+ Adam's two moments)
    return int(MEMORY_MARGIN * (B * per_example + n_params * per_param))


def available_bytes() -> int | None:
    """MemAvailable from /proc/meminfo (Linux), else free pages from os.sysconf, else None."""
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def check_memory(config: TrainConfig, vocab_size: int, data_bytes: int = 0, available=None):
    """Raise RunError when a step of this configuration cannot fit in the available memory."""
    if config.device != "cpu":
        return  # device memory is not estimated here
    need = step_bytes(config, vocab_size)
    have = available_bytes() if available is None else available
    if have is not None and need > have:
        raise RunError(f"batch size {config.batch_size:,} needs about {need / 2**30:.1f} GiB per step "
                       f"(estimate), but only {have / 2**30:.1f} GiB of memory is available "
                       f"(beyond the {data_bytes / 2**30:.2f} GiB the data already uses); "
                       f"use a smaller --batch-size")
